//! What a loaded model is and where it runs: `info()` in JavaScript, defined once here.
use napi_derive::napi;

use crate::arch::AttentionDirection;
use crate::backend::ort::start::CacheUse;
use crate::choices::{Precision, Sources};
use crate::pooling::Pooling;

/// Whose thread pool a model's ONNX Runtime session runs on.
#[napi(string_enum = "lowercase")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadPool {
    /// The process's pool, which every model without `threads` uses.
    Shared,
    /// This model's pool of `threads`.
    Own,
}

/// What the graph cache did: started from an entry, wrote one and then started from it, or was
/// not used (see `cacheNote`).
#[napi(string_enum = "lowercase")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheState {
    Hit,
    Written,
    Off,
}

#[napi(object, js_name = "ModelInfo")]
#[derive(Debug, Clone)]
pub struct Info {
    #[napi(ts_type = "'cpu' | 'cuda' | 'mlx'")]
    pub backend: String,
    pub device: String,
    /// The snapshot's `model_type`; any type runs from an ONNX file.
    #[napi(
        ts_type = "'bert' | 'roberta' | 'xlm-roberta' | 'modernbert' | 'gemma3_text' | 'nomic_bert' | 'qwen2' | 'qwen3' | (string & {})"
    )]
    pub arch: String,
    /// The length of the vectors returned (`dimensions` when set).
    pub dim: u32,
    /// The tasks the model knows (config.json's `lora_adaptations` and `task_instructions`).
    pub tasks: Vec<String>,
    /// The snapshot's named prompts (`config_sentence_transformers.json`), for `prompt`.
    pub prompts: Vec<String>,
    /// The task queries and documents run when a call names none.
    pub query_task: Option<String>,
    pub document_task: Option<String>,
    pub max_length: u32,
    #[napi(ts_type = "`${Pooling}`")]
    pub pooling: Pooling,
    /// A reranker's head (`BertForSequenceClassification: pooler dense + tanh on [CLS], …`);
    /// absent for an embedding model.
    pub head: Option<String>,
    #[napi(ts_type = "`${AttentionDirection}`")]
    pub attention: AttentionDirection,
    pub query_prefix: String,
    pub document_prefix: String,
    pub weights: String,
    /// The ONNX Runtime in use (absent when MLX runs the model).
    pub ort_version: Option<String>,
    pub ort_library: Option<String>,
    pub threads: u32,
    #[napi(ts_type = "`${ThreadPool}`")]
    pub thread_pool: ThreadPool,
    /// How many micro-batches of one call run at once, each on one thread: `threads` for a CPU
    /// graph built from `model.safetensors` (a single micro-batch, such as one query, still
    /// has every thread); 1 otherwise.
    pub lanes: u32,
    pub batch_tokens: u32,
    /// Calls that run at once (`maxConcurrentCalls`) and that may wait (`maxQueuedCalls`);
    /// absent: no limit.
    pub max_concurrent_calls: Option<u32>,
    pub max_queued_calls: Option<u32>,
    /// The GPU memory cap in bytes, when one was set.
    pub gpu_memory_limit: Option<f64>,
    /// Why the CUDA provider is not used, when `backend: 'auto'` could have used it.
    pub cuda_unavailable: Option<String>,
    /// Why MLX is not used, when `backend: 'auto'` on Apple Silicon could have used it.
    pub mlx_unavailable: Option<String>,
    /// The precision that runs; absent for an ONNX file, which runs as it is.
    #[napi(ts_type = "`${Dtype}`")]
    pub dtype: Option<Precision>,
    /// With int8: the scheme and the CPU features it was chosen for, e.g.
    /// `s8 (8-bit u8 activations per row x s8 weights per column; ...; CPU x86_64:avx2,...)`.
    pub int8_scheme: Option<String>,
    /// Where each setting came from: the options, a `SEMANTIC_SEARCH_*` variable, or the default.
    pub sources: Sources,
    #[napi(ts_type = "`${CacheState}`")]
    pub cache: CacheState,
    /// The cache entry's folder.
    pub cache_entry: Option<String>,
    /// Why the cache was not used.
    pub cache_note: Option<String>,
    /// The vector cache's file, when the option is on.
    pub vector_cache: Option<String>,
    /// Why the vector cache is off, was skipped for a call, or started a new file, the last time
    /// it was.
    pub vector_cache_note: Option<String>,
    /// Whether a failing GPU hands its calls to the CPU (`cpuFallback`).
    pub cpu_fallback: bool,
    /// Set once the model fell back to the CPU: what failed; `backend` and `device` then say
    /// `'cpu'`.
    pub cpu_fallback_reason: Option<String>,
}

impl Info {
    /// `cache`, `cacheEntry` and `cacheNote` from what the graph cache did.
    pub fn set_cache(&mut self, cache: &CacheUse) {
        (self.cache, self.cache_entry, self.cache_note) = match cache {
            CacheUse::Hit(entry) => (CacheState::Hit, Some(entry.display().to_string()), None),
            CacheUse::Written(entry) => {
                (CacheState::Written, Some(entry.display().to_string()), None)
            }
            CacheUse::Off(why) => (CacheState::Off, None, Some(why.clone())),
        };
    }
}
