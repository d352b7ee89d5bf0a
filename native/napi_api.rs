//! The JavaScript API: the `Model` class, and `init`, `embed`, `embedSync`, `isGpu`, `info`,
//! `stats` on a default model. Thin: read arguments, call the engine off the JS thread, turn
//! every failure (panics included) into an `Error` whose `code` names its kind.
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use napi::bindgen_prelude::*;
use napi::{JsValue, ScopedTask};
use napi_derive::napi;

use crate::engine::{Engine, Info, Options};
use crate::error::Error as EngineError;
use crate::settings::Sources;
use crate::stats::StatsSnapshot;

type EngineResult<T> = std::result::Result<T, EngineError>;

/// Where a model lives: swapped whole by `init`, emptied by `close`; a running call keeps its own
/// `Arc`, so it finishes on the model it started with.
struct Slot {
    engine: RwLock<Option<Arc<Engine>>>,
    /// What to say when the slot is empty.
    empty: fn() -> EngineError,
}

impl Slot {
    fn get(&self) -> EngineResult<Arc<Engine>> {
        let engine = self.engine.read().map_err(|_| poisoned())?;
        engine.clone().ok_or_else(self.empty)
    }

    fn put(&self, engine: Arc<Engine>) -> EngineResult<()> {
        *self.engine.write().map_err(|_| poisoned())? = Some(engine);
        Ok(())
    }

    fn take(&self) -> EngineResult<Option<Arc<Engine>>> {
        Ok(self.engine.write().map_err(|_| poisoned())?.take())
    }
}

fn poisoned() -> EngineError {
    EngineError::Internal("model lock poisoned".into())
}

/// The model of the module-level functions.
static DEFAULT: Slot = Slot {
    engine: RwLock::new(None),
    empty: || {
        EngineError::NotLoaded(
            "the model is not loaded: call and await init(modelDir) first".into(),
        )
    },
};

fn closed() -> EngineError {
    EngineError::Closed(
        "this model was closed: load it again with Model.load(modelDir) to embed with it".into(),
    )
}

#[napi(object)]
#[derive(Default)]
pub struct InitOptions {
    /// Where the model runs (default `$SEMANTIC_SEARCH_BACKEND`, else `auto`).
    #[napi(ts_type = "'auto' | 'cpu' | 'cuda' | 'mlx'")]
    pub backend: Option<String>,
    /// Truncation in tokens (default `$SEMANTIC_SEARCH_MAX_LENGTH`, else the snapshot's
    /// max_seq_length, else the trained maximum).
    pub max_length: Option<u32>,
    /// Token budget (rows × padded length) of one forward pass (default
    /// `$SEMANTIC_SEARCH_BATCH_TOKENS`, else 1024 on the CPU, 16384 on a GPU). On the CPU this
    /// is also the memory limit: activations of one micro-batch at a time.
    pub batch_tokens: Option<u32>,
    /// ONNX Runtime intra-op threads in a pool of this model's own (default
    /// `$SEMANTIC_SEARCH_THREADS`; unset: the process's shared pool, a thread per physical core).
    pub threads: Option<u32>,
    /// Which `.onnx` file of the snapshot to run (relative to it or to its `onnx/` folder).
    pub onnx_file: Option<String>,
    /// Which weights run: `model.safetensors` when present (`auto`), or the ONNX file.
    #[napi(ts_type = "'auto' | 'safetensors' | 'onnx'")]
    pub weights: Option<String>,
    /// Path of the `libonnxruntime` shared library to load.
    pub ort_library: Option<String>,
    /// Precision of the graph built from model.safetensors (default `$SEMANTIC_SEARCH_DTYPE`):
    /// `float32` (default on the CPU and MLX); `float16` (default on CUDA; also MLX, and the CPU
    /// for checking); `int8` (dynamic quantisation, ONNX Runtime on the CPU); `bfloat16` (MLX only).
    #[napi(ts_type = "'float32' | 'int8' | 'float16' | 'bfloat16'")]
    pub dtype: Option<String>,
    /// Cap of GPU memory, in bytes or as `'4GB'` / `'512MiB'` (default
    /// `$SEMANTIC_SEARCH_GPU_MEMORY_LIMIT`): CUDA's arena, or MLX's memory and cache limits.
    #[napi(ts_type = "number | string")]
    pub gpu_memory_limit: Option<Either<f64, String>>,
    /// Overrides the attention direction the snapshot implies (see the README's model table).
    #[napi(ts_type = "'causal' | 'bidirectional'")]
    pub attention: Option<String>,
    /// With `dtype: 'int8'`: `'s8'` weights (fast with VNNI), `'s8a7'` (s8 weights, 7-bit
    /// activations: x86 without VNNI, whose u8 x s8 kernels saturate at 8 bits) or `'u8'`
    /// weights (exact at 8 bits without VNNI, slower); default `'auto'`: by the CPU.
    #[napi(ts_type = "'auto' | 's8' | 's8a7' | 'u8'")]
    pub int8_scheme: Option<String>,
    /// Put before every query instead of the snapshot's `prompts.query`.
    pub query_prefix: Option<String>,
    /// Put before every document instead of the snapshot's `prompts.document` (or `passage`).
    pub document_prefix: Option<String>,
    /// The task of calls that name none, for models with tasks (`info().tasks`); by default
    /// queries use `retrieval.query` and documents `retrieval.passage` when the model has them.
    pub task: Option<String>,
    /// Cut every vector to its first `dimensions` values, then normalise (Matryoshka); a model
    /// that lists `matryoshka_dimensions` accepts only those.
    pub dimensions: Option<u32>,
    /// Keep ONNX Runtime's optimised graph of a model built from safetensors on disk, and start
    /// from it next time (default true; the folder is `$SEMANTIC_SEARCH_CACHE`, else
    /// `~/.cache/semantic-search-native`; `SEMANTIC_SEARCH_CACHE=off` also turns it off).
    pub cache: Option<bool>,
    /// The graph cache's folder (default `$SEMANTIC_SEARCH_CACHE`, else
    /// `~/.cache/semantic-search-native`).
    pub cache_dir: Option<String>,
}

#[napi(object)]
pub struct ConfigSources {
    #[napi(ts_type = "'option' | 'env' | 'default'")]
    pub backend: String,
    #[napi(ts_type = "'option' | 'env' | 'default'")]
    pub dtype: String,
    #[napi(ts_type = "'option' | 'env' | 'default'")]
    pub threads: String,
    #[napi(ts_type = "'option' | 'env' | 'default'")]
    pub max_length: String,
    #[napi(ts_type = "'option' | 'env' | 'default'")]
    pub batch_tokens: String,
    #[napi(ts_type = "'option' | 'env' | 'default'")]
    pub gpu_memory_limit: String,
}

#[napi(object)]
pub struct ModelInfo {
    #[napi(ts_type = "'cpu' | 'cuda' | 'mlx'")]
    pub backend: String,
    pub device: String,
    /// The snapshot's `model_type`; any type runs from an ONNX file.
    #[napi(ts_type = "'bert' | 'nomic_bert' | 'qwen2' | 'qwen3' | (string & {})")]
    pub arch: String,
    /// The length of the vectors returned (`dimensions` when set).
    pub dim: u32,
    /// The tasks the model knows (config.json's `lora_adaptations` and `task_instructions`).
    pub tasks: Vec<String>,
    /// The task queries and documents run when a call names none.
    pub query_task: Option<String>,
    pub document_task: Option<String>,
    pub max_length: u32,
    #[napi(ts_type = "'cls' | 'mean' | 'lasttoken'")]
    pub pooling: String,
    #[napi(ts_type = "'bidirectional' | 'causal'")]
    pub attention: String,
    pub query_prefix: String,
    pub document_prefix: String,
    pub weights: String,
    /// The ONNX Runtime in use (absent when MLX runs the model).
    pub ort_version: Option<String>,
    pub ort_library: Option<String>,
    pub threads: u32,
    /// `shared`: the process's pool, which every model without `threads` uses; `own`: this
    /// model's pool of `threads`.
    #[napi(ts_type = "'shared' | 'own'")]
    pub thread_pool: String,
    /// How many micro-batches of one call run at once, each on one thread: `threads` for a CPU
    /// graph built from `model.safetensors` (a single micro-batch, such as one query, still
    /// has every thread); 1 otherwise.
    pub lanes: u32,
    pub batch_tokens: u32,
    /// The GPU memory cap in bytes, when one was set.
    pub gpu_memory_limit: Option<f64>,
    /// Why the CUDA provider is not used, when `backend: 'auto'` could have used it.
    pub cuda_unavailable: Option<String>,
    /// Why MLX is not used, when `backend: 'auto'` on Apple Silicon could have used it.
    pub mlx_unavailable: Option<String>,
    /// The precision that runs; absent for an ONNX file, which runs as it is.
    #[napi(ts_type = "'float32' | 'float16' | 'bfloat16' | 'int8'")]
    pub dtype: Option<String>,
    /// With int8: the scheme and the CPU features it was chosen for, e.g.
    /// `s8 (8-bit u8 activations per row x s8 weights per column; ...; CPU x86_64:avx2,...)`.
    pub int8_scheme: Option<String>,
    /// Where each setting came from: the options, a `SEMANTIC_SEARCH_*` variable, or the default.
    pub sources: ConfigSources,
    /// What the graph cache did: `hit` (started from it), `written` (built it, then started
    /// from it) or `off` (see `cacheNote`).
    #[napi(ts_type = "'hit' | 'written' | 'off'")]
    pub cache: String,
    /// The cache entry's folder.
    pub cache_entry: Option<String>,
    /// Why the cache was not used.
    pub cache_note: Option<String>,
}

impl From<&Sources> for ConfigSources {
    fn from(s: &Sources) -> Self {
        ConfigSources {
            backend: s.backend.name().into(),
            dtype: s.dtype.name().into(),
            threads: s.threads.name().into(),
            max_length: s.max_length.name().into(),
            batch_tokens: s.batch_tokens.name().into(),
            gpu_memory_limit: s.gpu_memory_limit.name().into(),
        }
    }
}

impl From<&Info> for ModelInfo {
    fn from(i: &Info) -> Self {
        ModelInfo {
            backend: i.backend.clone(),
            device: i.device.clone(),
            arch: i.arch.clone(),
            dim: i.dim as u32,
            tasks: i.tasks.clone(),
            query_task: i.query_task.clone(),
            document_task: i.document_task.clone(),
            max_length: i.max_length as u32,
            pooling: i.pooling.clone(),
            attention: i.attention.clone(),
            query_prefix: i.query_prefix.clone(),
            document_prefix: i.document_prefix.clone(),
            weights: i.weights.clone(),
            ort_version: i.ort_version.clone(),
            ort_library: i.ort_library.clone(),
            threads: i.threads as u32,
            thread_pool: if i.own_thread_pool { "own" } else { "shared" }.into(),
            lanes: i.lanes as u32,
            batch_tokens: i.batch_tokens as u32,
            gpu_memory_limit: i.gpu_memory_limit.map(|b| b as f64),
            cuda_unavailable: i.cuda_unavailable.clone(),
            mlx_unavailable: i.mlx_unavailable.clone(),
            dtype: i.dtype.clone(),
            int8_scheme: i.int8_scheme.clone(),
            sources: ConfigSources::from(&i.sources),
            cache: i.cache.clone(),
            cache_entry: i.cache_entry.clone(),
            cache_note: i.cache_note.clone(),
        }
    }
}

/// What one model has done since it was loaded.
#[napi(object)]
pub struct ModelStats {
    /// `embed`/`embedSync` calls, failed ones included.
    pub calls: i64,
    pub texts: i64,
    /// Tokens the tokenizer produced (special tokens and prompts included, after truncation).
    pub tokens: i64,
    /// Rows × padded length over every forward pass: what the backend computed.
    pub padded_tokens: i64,
    pub forward_passes: i64,
    /// Micro-batches that ran out of memory and were split in two.
    pub oom_retries: i64,
    pub tokenize_seconds: f64,
    /// Summed over forward passes: with lanes (`info().lanes`) it can exceed the calls' time.
    pub backend_seconds: f64,
    /// The message of the last failed call.
    pub last_error: Option<String>,
}

impl From<StatsSnapshot> for ModelStats {
    fn from(s: StatsSnapshot) -> Self {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        ModelStats {
            calls: n(s.calls),
            texts: n(s.texts),
            tokens: n(s.tokens),
            padded_tokens: n(s.padded_tokens),
            forward_passes: n(s.forward_passes),
            oom_retries: n(s.oom_retries),
            tokenize_seconds: s.tokenize_seconds,
            backend_seconds: s.backend_seconds,
            last_error: s.last_error,
        }
    }
}

impl From<InitOptions> for Options {
    fn from(o: InitOptions) -> Self {
        Options {
            backend: o.backend,
            max_length: o.max_length.map(|n| n as usize),
            batch_tokens: o.batch_tokens.map(|n| n as usize),
            threads: o.threads.map(|n| n as usize),
            onnx_file: o.onnx_file,
            weights: o.weights,
            ort_library: o.ort_library.map(PathBuf::from),
            dtype: o.dtype,
            gpu_memory_limit: o.gpu_memory_limit.map(|limit| match limit {
                Either::A(bytes) => bytes.to_string(),
                Either::B(text) => text,
            }),
            attention: o.attention,
            int8_scheme: o.int8_scheme,
            query_prefix: o.query_prefix,
            document_prefix: o.document_prefix,
            task: o.task,
            dimensions: o.dimensions.map(|n| n as usize),
            cache: o.cache,
            cache_dir: o.cache_dir.map(PathBuf::from),
        }
    }
}

/// A JavaScript `Error` with `code` set to the kind of failure.
fn js_error(env: &Env, e: EngineError) -> Error {
    let coded = Error::new(e.code(), e.to_string());
    Error::from(JsError::from(coded).into_unknown(*env))
}

/// Runs engine code so that neither an error nor a panic escapes unconverted.
fn guarded<T>(f: impl FnOnce() -> EngineResult<T>) -> EngineResult<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        Err(EngineError::Internal(what))
    })
}

fn load_engine(job: &mut LoadJob) -> EngineResult<Arc<Engine>> {
    let (dir, options) = std::mem::replace(job, Err(ran_twice()))?;
    guarded(|| Engine::load(&dir, &options)).map(Arc::new)
}

fn ran_twice() -> EngineError {
    EngineError::Internal("a task ran twice".into())
}

/// `modelDir` and `options` read here rather than by napi's conversion, so that a value of the
/// wrong type is an `ERR_INPUT` that names it.
fn load_job(env: &Env, model_dir: Unknown, options: Option<Unknown>) -> LoadJob {
    Ok((read_model_dir(model_dir)?, read_options(env, options)?))
}

fn read_model_dir(value: Unknown) -> EngineResult<PathBuf> {
    let refused = |what: &str| {
        EngineError::Input(format!(
            "modelDir must be a string (the folder of a Hugging Face model snapshot), got {what}"
        ))
    };
    match value.get_type() {
        Ok(ValueType::String) => unsafe { value.cast::<String>() }
            .map(PathBuf::from)
            .map_err(|e| refused(&e.reason)),
        Ok(other) => Err(refused(type_name(other))),
        Err(e) => Err(refused(&e.reason)),
    }
}

fn read_options(env: &Env, value: Option<Unknown>) -> EngineResult<Options> {
    let Some(value) = value else {
        return Ok(Options::default());
    };
    if value.get_type().ok() != Some(ValueType::Object) {
        return Err(EngineError::Input(format!(
            "options must be an object, got {}",
            value.get_type().map_or("an unreadable value", type_name)
        )));
    }
    unsafe { InitOptions::from_napi_value(env.raw(), value.raw()) }
        .map(Options::from)
        .map_err(|e| EngineError::Input(format!("options: {}", e.reason)))
}

/// The snapshot folder and options of a load, or why they were refused.
type LoadJob = EngineResult<(PathBuf, Options)>;

pub struct InitTask {
    job: LoadJob,
}

impl Task for InitTask {
    type Output = EngineResult<Arc<Engine>>;
    type JsValue = ModelInfo;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(load_engine(&mut self.job))
    }

    fn resolve(&mut self, env: Env, engine: Self::Output) -> Result<Self::JsValue> {
        let engine = engine.map_err(|e| js_error(&env, e))?;
        let info = ModelInfo::from(engine.info());
        DEFAULT.put(engine).map_err(|e| js_error(&env, e))?;
        Ok(info)
    }
}

/// Loads the model in `modelDir` (a Hugging Face snapshot) as the default model of `embed`,
/// `info`, `isGpu` and `stats`; a second call replaces it.
#[napi(
    ts_args_type = "modelDir: string, options?: InitOptions | undefined | null",
    ts_return_type = "Promise<ModelInfo>"
)]
pub fn init(env: Env, model_dir: Unknown, options: Option<Unknown>) -> AsyncTask<InitTask> {
    AsyncTask::new(InitTask {
        job: load_job(&env, model_dir, options),
    })
}

pub struct LoadTask {
    job: LoadJob,
}

impl Task for LoadTask {
    type Output = EngineResult<Arc<Engine>>;
    type JsValue = Model;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(load_engine(&mut self.job))
    }

    fn resolve(&mut self, env: Env, engine: Self::Output) -> Result<Self::JsValue> {
        engine.map(Model::new).map_err(|e| js_error(&env, e))
    }
}

pub struct EmbedTask {
    /// The checked arguments, or why they were refused: `embed` always returns a promise,
    /// and a refusal rejects it rather than throwing at the call.
    job: EngineResult<(Arc<Engine>, Vec<String>)>,
    is_query: bool,
    task: Option<String>,
}

/// Options of one `embed` call.
#[napi(object)]
pub struct EmbedOptions {
    /// The task of this call (one of `info().tasks`) instead of the default one.
    pub task: Option<String>,
}

impl<'task> ScopedTask<'task> for EmbedTask {
    type Output = EngineResult<(Vec<f32>, usize)>;
    type JsValue = Vec<Float32ArraySlice<'task>>;

    fn compute(&mut self) -> Result<Self::Output> {
        let job = std::mem::replace(&mut self.job, Err(ran_twice()));
        Ok(job.and_then(|(engine, texts)| {
            guarded(|| engine.embed_task(&texts, self.is_query, self.task.as_deref()))
                .map(|v| (v, engine.info().dim))
        }))
    }

    fn resolve(&mut self, env: &'task Env, output: Self::Output) -> Result<Self::JsValue> {
        let (vectors, dim) = output.map_err(|e| js_error(env, e))?;
        typed_array_views(env, vectors, dim)
    }
}

fn embed_task(
    slot: &Slot,
    texts: Unknown,
    is_query: Option<bool>,
    options: Option<EmbedOptions>,
) -> AsyncTask<EmbedTask> {
    let job = read_texts(texts).and_then(|texts| Ok((slot.get()?, texts)));
    AsyncTask::new(EmbedTask {
        job,
        is_query: is_query.unwrap_or(false),
        task: options.and_then(|o| o.task),
    })
}

fn embed_now<'env>(
    env: &'env Env,
    slot: &Slot,
    texts: Unknown,
    is_query: Option<bool>,
    options: Option<EmbedOptions>,
) -> Result<Vec<Float32ArraySlice<'env>>> {
    let texts = read_texts(texts).map_err(|e| js_error(env, e))?;
    let engine = slot.get().map_err(|e| js_error(env, e))?;
    let task = options.and_then(|o| o.task);
    let vectors = guarded(|| engine.embed_task(&texts, is_query.unwrap_or(false), task.as_deref()))
        .map_err(|e| js_error(env, e))?;
    typed_array_views(env, vectors, engine.info().dim)
}

/// One vector per text, in input order, from the default model; runs off the JS thread.
#[napi(
    ts_args_type = "texts: string[], isQuery?: boolean, options?: EmbedOptions",
    ts_return_type = "Promise<Float32Array[]>"
)]
pub fn embed(
    texts: Unknown,
    is_query: Option<bool>,
    options: Option<EmbedOptions>,
) -> AsyncTask<EmbedTask> {
    embed_task(&DEFAULT, texts, is_query, options)
}

/// The same as `embed`, blocking the JS thread: for scripts.
#[napi(
    ts_args_type = "texts: string[], isQuery?: boolean, options?: EmbedOptions",
    ts_return_type = "Float32Array[]"
)]
pub fn embed_sync<'env>(
    env: &'env Env,
    texts: Unknown,
    is_query: Option<bool>,
    options: Option<EmbedOptions>,
) -> Result<Vec<Float32ArraySlice<'env>>> {
    embed_now(env, &DEFAULT, texts, is_query, options)
}

/// True only when the default model really runs on a GPU.
#[napi]
pub fn is_gpu() -> bool {
    DEFAULT.get().is_ok_and(|e| e.is_gpu())
}

/// What the default model is and where it runs.
#[napi]
pub fn info(env: Env) -> Result<ModelInfo> {
    DEFAULT
        .get()
        .map(|e| ModelInfo::from(e.info()))
        .map_err(|e| js_error(&env, e))
}

/// What the default model has done since `init`.
#[napi]
pub fn stats(env: Env) -> Result<ModelStats> {
    DEFAULT
        .get()
        .map(|e| ModelStats::from(e.stats()))
        .map_err(|e| js_error(&env, e))
}

/// One loaded model; any number of them live side by side and run at once.
#[napi]
pub struct Model {
    slot: Arc<Slot>,
}

impl Model {
    fn new(engine: Arc<Engine>) -> Model {
        Model {
            slot: Arc::new(Slot {
                engine: RwLock::new(Some(engine)),
                empty: closed,
            }),
        }
    }
}

#[napi]
impl Model {
    /// Loads the model in `modelDir` (a Hugging Face snapshot).
    #[napi(
        ts_args_type = "modelDir: string, options?: InitOptions | undefined | null",
        ts_return_type = "Promise<Model>"
    )]
    pub fn load(env: Env, model_dir: Unknown, options: Option<Unknown>) -> AsyncTask<LoadTask> {
        AsyncTask::new(LoadTask {
            job: load_job(&env, model_dir, options),
        })
    }

    /// One vector per text, in input order; runs off the JS thread.
    #[napi(
        ts_args_type = "texts: string[], isQuery?: boolean, options?: EmbedOptions",
        ts_return_type = "Promise<Float32Array[]>"
    )]
    pub fn embed(
        &self,
        texts: Unknown,
        is_query: Option<bool>,
        options: Option<EmbedOptions>,
    ) -> AsyncTask<EmbedTask> {
        embed_task(&self.slot, texts, is_query, options)
    }

    /// The same as `embed`, blocking the JS thread: for scripts.
    #[napi(
        ts_args_type = "texts: string[], isQuery?: boolean, options?: EmbedOptions",
        ts_return_type = "Float32Array[]"
    )]
    pub fn embed_sync<'env>(
        &self,
        env: &'env Env,
        texts: Unknown,
        is_query: Option<bool>,
        options: Option<EmbedOptions>,
    ) -> Result<Vec<Float32ArraySlice<'env>>> {
        embed_now(env, &self.slot, texts, is_query, options)
    }

    /// What this model is and where it runs.
    #[napi]
    pub fn info(&self, env: Env) -> Result<ModelInfo> {
        self.slot
            .get()
            .map(|e| ModelInfo::from(e.info()))
            .map_err(|e| js_error(&env, e))
    }

    /// True only when this model really runs on a GPU.
    #[napi]
    pub fn is_gpu(&self) -> bool {
        self.slot.get().is_ok_and(|e| e.is_gpu())
    }

    /// What this model has done since it was loaded.
    #[napi]
    pub fn stats(&self, env: Env) -> Result<ModelStats> {
        self.slot
            .get()
            .map(|e| ModelStats::from(e.stats()))
            .map_err(|e| js_error(&env, e))
    }

    /// Frees the model: calls already running finish first, later calls reject with
    /// `ERR_MODEL_CLOSED`. Resolves once the memory is released; closing twice is harmless.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close(&self) -> AsyncTask<CloseTask> {
        AsyncTask::new(CloseTask {
            engine: self.slot.take(),
        })
    }
}

pub struct CloseTask {
    engine: EngineResult<Option<Arc<Engine>>>,
}

impl Task for CloseTask {
    type Output = EngineResult<()>;
    type JsValue = ();

    fn compute(&mut self) -> Result<Self::Output> {
        let engine = std::mem::replace(&mut self.engine, Ok(None));
        Ok(engine.map(|engine| {
            if let Some(engine) = engine {
                release_when_idle(engine);
            }
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> Result<Self::JsValue> {
        output.map_err(|e| js_error(&env, e))
    }
}

/// Drops the engine once no call holds it any more (calls in flight keep their own `Arc`),
/// then hands the freed heap back to the system.
fn release_when_idle(mut engine: Arc<Engine>) {
    loop {
        match Arc::try_unwrap(engine) {
            Ok(last) => break drop(last),
            Err(shared) => {
                engine = shared;
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
    }
    crate::memory::release_free_memory();
}

#[napi(object)]
pub struct RuntimeInfo {
    pub library: String,
    pub version: String,
    pub providers: Vec<String>,
    /// `None` when the CUDA provider starts here; else why it cannot.
    pub cuda_unavailable: Option<String>,
}

/// The ONNX Runtime library this process uses (loading it if needed) and what it can run on.
#[napi]
pub fn runtime_info(env: Env, ort_library: Option<String>) -> Result<RuntimeInfo> {
    use crate::backend::ort::{cuda, runtime};
    guarded(|| {
        let rt = runtime::runtime(ort_library.as_deref().map(std::path::Path::new))?;
        Ok(RuntimeInfo {
            library: rt.library.display().to_string(),
            version: rt.version.clone(),
            providers: cuda::available_providers(),
            cuda_unavailable: cuda::unusable_reason(rt),
        })
    })
    .map_err(|e| js_error(&env, e))
}

/// Writes the graph built from `modelDir`'s model.safetensors as an ONNX file (outputs
/// `sentence_embedding` and `last_hidden_state`), for runtimes that need a file: standard fp32,
/// or the precision `options.dtype` names (`'int8'` needs ONNX Runtime to run it).
#[napi]
pub fn export_onnx(
    env: Env,
    model_dir: String,
    file: String,
    options: Option<InitOptions>,
) -> Result<()> {
    let options: Options = options.unwrap_or_default().into();
    guarded(|| {
        crate::export::export_onnx(
            std::path::Path::new(&model_dir),
            std::path::Path::new(&file),
            &options,
        )
    })
    .map_err(|e| js_error(&env, e))
}

fn read_texts(texts: Unknown) -> EngineResult<Vec<String>> {
    let refused = |e: Error| EngineError::Input(format!("embed(texts): {}", e.reason));
    if !texts.is_array().map_err(refused)? {
        return Err(EngineError::Input(format!(
            "embed(texts): texts must be an array of strings, got {}",
            type_name(texts.get_type().map_err(refused)?)
        )));
    }
    let array: Array = unsafe { texts.cast() }.map_err(refused)?;
    (0..array.len())
        .map(|i| {
            let unreadable = |e: Error| {
                EngineError::Input(format!(
                    "embed(texts): texts[{i}] could not be read ({})",
                    e.reason
                ))
            };
            let item: Unknown = array.get(i).map_err(unreadable)?.ok_or_else(|| {
                EngineError::Input("embed(texts): the array changed while read".into())
            })?;
            match item.get_type().map_err(refused)? {
                ValueType::String => unsafe { item.cast::<String>() }.map_err(refused),
                other => Err(EngineError::Input(format!(
                    "embed(texts): texts[{i}] is {}, expected a string",
                    type_name(other)
                ))),
            }
        })
        .collect()
}

fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Undefined => "undefined",
        ValueType::Null => "null",
        ValueType::Boolean => "a boolean",
        ValueType::Number => "a number",
        ValueType::String => "a string",
        ValueType::Symbol => "a symbol",
        ValueType::Object => "an object",
        ValueType::Function => "a function",
        ValueType::BigInt => "a bigint",
        _ => "an unsupported value",
    }
}

/// Hands the engine's one contiguous buffer to JavaScript without a copy: one `ArrayBuffer`
/// owning the vectors, and a `Float32Array` view of `dim` floats per text.
fn typed_array_views(
    env: &Env,
    mut vectors: Vec<f32>,
    dim: usize,
) -> Result<Vec<Float32ArraySlice<'_>>> {
    if vectors.is_empty() {
        return Ok(Vec::new());
    }
    let count = vectors.len() / dim;
    let bytes = vectors.len() * std::mem::size_of::<f32>();
    let data = vectors.as_mut_ptr().cast::<u8>();
    // The buffer owns the Vec (moved into the finalize hint); its heap block does not move.
    let buffer = unsafe { ArrayBuffer::from_external(env, data, bytes, vectors, |_, v| drop(v)) }?;
    (0..count)
        .map(|i| {
            Float32ArraySlice::from_arraybuffer(&buffer, i * dim * std::mem::size_of::<f32>(), dim)
        })
        .collect()
}
