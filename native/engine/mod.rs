//! The embedding pipeline: tokenize -> length-sorted micro-batches -> backend forward (pooled)
//! -> L2 normalise -> one contiguous buffer in input order.
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use crate::backend::ort::start::CacheUse;
use crate::backend::{Backend, Forward};
use crate::batching::{assemble_typed, plan};
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::info::{CacheState, Info, ThreadPool};
use crate::load::{load, Loaded};
use crate::model::Model;
use crate::pooling::{l2_normalize, Pooling};
use crate::rerank::Pairs;
use crate::settings::{Precision, Settings, Source, ENV_MAX_LENGTH};
use crate::stats::{Stats, StatsSnapshot};
use crate::task::{Chosen, EmbedOptions, TaskRule};
use crate::tokenize::TextTokenizer;
use crate::vector_cache::VectorCache;

mod call;
mod fallback;
mod health;
mod parts;
mod report;
mod rerank;

use parts::{CallState, Fallback};
use std::sync::atomic::Ordering::Relaxed;

pub use crate::settings::Options;

/// Token budget of one CPU forward pass: small enough that attention's [rows, heads, seq, seq]
/// scores and the FFN's activations stay in the caches (benchmark/README.md has the figures).
const CPU_BATCH_TOKENS: usize = 1024;
/// A GPU needs far more rows in flight to fill its cores.
const GPU_BATCH_TOKENS: usize = 16384;

pub struct Engine {
    tokenizer: TextTokenizer,
    /// A reranker's pairs: it scores (query, document) pairs and does not embed.
    pairs: Option<Pairs>,
    backend: Box<dyn Backend>,
    tasks: TaskRule,
    info: Info,
    stats: Stats,
    /// The length of the vectors returned (`dimensions` when set).
    dim: usize,
    /// The length of the vectors the model pools, before any Matryoshka cut.
    model_dim: usize,
    batch_tokens: usize,
    /// Vectors already computed, when the vector cache is on.
    vectors: Option<VectorCache>,
    /// Where the model's events go besides stderr: the sink of the thread that loaded it.
    logger: Option<crate::events::Sink>,
    /// With `cpuFallback` on a GPU: how to open the CPU backend.
    fallback: Option<Fallback>,
    /// The CPU backend the model fell back to, and why.
    cpu: once_cell::sync::OnceCell<Box<dyn Backend>>,
    fell_back: once_cell::sync::OnceCell<String>,
    loaded_at: Instant,
}

impl Engine {
    /// Loads with `options` completed from the `SEMANTIC_SEARCH_*` environment variables.
    pub fn load(path: &Path, options: &Options) -> Result<Self> {
        Engine::open(path, &Settings::from_process(options)?)
    }

    pub fn open(path: &Path, settings: &Settings) -> Result<Self> {
        Engine::open_model(Model::open(path)?, settings)
    }

    /// A reranker (`Model::open_reranker`), with `options` completed from the environment.
    pub fn load_reranker(path: &Path, options: &Options) -> Result<Self> {
        let settings = Settings::from_process(options)?;
        Engine::open_model(Model::open_reranker(path)?, &settings)
    }

    fn open_model(model: Model, settings: &Settings) -> Result<Self> {
        crate::memory::keep_large_blocks_mapped();
        crate::events::install();
        let (started, resident_before) = (Instant::now(), crate::memory::resident_bytes());
        let max_length = model.max_length(settings.max_length).map_err(|e| {
            match settings.sources.max_length {
                Source::Env => Error::Env {
                    var: ENV_MAX_LENGTH.into(),
                    what: format!("is too long: {e}"),
                },
                _ => e,
            }
        })?;
        let loaded = load(&model, settings, max_length)?;
        let engine = Engine::assemble(model, loaded, settings, max_length)?;
        engine.report_loaded(started, resident_before);
        Ok(engine)
    }

    /// Any backend over the snapshot's tokenizer and prompts: how tests reach the pipeline's
    /// own paths (out-of-memory retries) with a backend of their making.
    pub fn with_backend(path: &Path, backend: Box<dyn Backend>, options: &Options) -> Result<Self> {
        let settings = Settings::resolve(options, |_| None)?;
        let model = Model::open(path)?;
        let max_length = model.max_length(settings.max_length)?;
        let loaded = Loaded {
            backend,
            weights: model.dir.path.clone(),
            precision: None,
            runtime: None,
            cuda_unavailable: None,
            mlx_unavailable: None,
            cache: CacheUse::Off("a backend of the caller's".into()),
        };
        Engine::assemble(model, loaded, &settings, max_length)
    }

    fn assemble(
        model: Model,
        loaded: Loaded,
        settings: &Settings,
        max_length: usize,
    ) -> Result<Self> {
        let dir = &model.dir;
        let started = Instant::now();
        let (pairs, tokenizer) = match &model.head {
            Some(head) => {
                let (pairs, tokenizer) =
                    Pairs::load(&dir.tokenizer_file, head.scoring(), max_length)?;
                (Some(pairs), tokenizer)
            }
            None => {
                let eos = (dir.pooling == Pooling::LastToken)
                    .then(|| model.arch.eos())
                    .flatten();
                (
                    None,
                    TextTokenizer::load(&dir.tokenizer_file, max_length, eos)?,
                )
            }
        };
        log::debug!(seconds = started.elapsed().as_secs_f64(); "tokenizer_loaded");
        let backend = loaded.backend;
        let tasks = TaskRule::new(dir, settings, backend.takes_task())?;
        let none = EmbedOptions::default();
        let (query, document) = (tasks.choose(true, &none)?, tasks.choose(false, &none)?);
        if !dir.dense.is_empty() && backend.pools_outside() {
            return Err(Error::unsupported(
                &dir.path.join("modules.json"),
                "lists Dense modules, which apply after pooling, but the ONNX file outputs token states, not sentence_embedding: the vectors would lack them. Use its model.safetensors (weights: 'safetensors'), or an ONNX file that outputs sentence_embedding",
            ));
        }
        let dense_dim = match model.head {
            Some(_) => Some(1),
            None => dir.dense.last().map(|d| d.out_features),
        };
        let model_dim = backend
            .dim()
            .or(dense_dim)
            .or(model.arch.hidden())
            .ok_or_else(|| {
                Error::Internal("neither the backend nor config.json gives the vector size".into())
            })?;
        if model.head.is_some() && settings.dimensions.is_some() {
            return Err(Error::Input(
                "dimensions does not apply to a reranker: it scores pairs, one number each".into(),
            ));
        }
        let dim = dir.dimensions(settings.dimensions, model_dim)?;
        let default_tokens = if backend.is_gpu() {
            GPU_BATCH_TOKENS
        } else {
            CPU_BATCH_TOKENS
        };
        let batch_tokens = settings.batch_tokens.unwrap_or(default_tokens);
        let runtime = loaded.runtime;
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let mut info = Info {
            backend: backend.kind().into(),
            device: backend.device(),
            arch: model.arch.model_type().into(),
            dim: count(dim),
            tasks: tasks.names().to_vec(),
            prompts: tasks.prompt_names(),
            query_task: query.task,
            document_task: document.task,
            max_length: count(max_length),
            pooling: model.pooling(),
            head: model.head.as_ref().map(|h| h.describe()),
            attention: model.attention(settings),
            query_prefix: query.prefix,
            document_prefix: document.prefix,
            weights: loaded.weights.display().to_string(),
            ort_version: runtime.map(|r| r.version.clone()),
            ort_library: runtime.map(|r| r.library.display().to_string()),
            threads: count(
                settings
                    .threads
                    .or(runtime.map(|r| r.shared_threads))
                    .unwrap_or_else(crate::cpu::physical_cores),
            ),
            thread_pool: match settings.threads {
                Some(_) => ThreadPool::Own,
                None => ThreadPool::Shared,
            },
            lanes: count(backend.lanes()),
            batch_tokens: count(batch_tokens),
            max_concurrent_calls: settings.max_concurrent_calls.map(count),
            max_queued_calls: settings.max_queued_calls.map(count),
            gpu_memory_limit: settings.gpu_memory_limit.map(|b| b as f64),
            cuda_unavailable: loaded.cuda_unavailable,
            mlx_unavailable: loaded.mlx_unavailable,
            dtype: loaded.precision,
            int8_scheme: (loaded.precision == Some(Precision::Int8))
                .then(|| settings.int8_scheme.describe()),
            sources: settings.sources,
            cache: CacheState::Off,
            cache_entry: None,
            cache_note: None,
            vector_cache: None,
            vector_cache_note: None,
            cpu_fallback: settings.cpu_fallback,
            cpu_fallback_reason: None,
        };
        info.set_cache(&loaded.cache);
        let vectors = match (&settings.vector_cache, &model.head) {
            (Some(config), None) => Some(crate::vector_cache::open_for(
                config.clone(),
                &info,
                &loaded.weights,
                &dir.path,
                model_dim,
            )),
            _ => None,
        };
        info.vector_cache = vectors.as_ref().map(|v| v.path().display().to_string());
        let fallback = (settings.cpu_fallback && backend.is_gpu())
            .then(|| Fallback::new(model, settings, max_length));
        Ok(Engine {
            tokenizer,
            pairs,
            backend,
            tasks,
            info,
            stats: Stats::default(),
            dim,
            model_dim,
            batch_tokens,
            vectors,
            logger: crate::events::current(),
            fallback,
            cpu: Default::default(),
            fell_back: Default::default(),
            loaded_at: Instant::now(),
        })
    }

    /// The length of the vectors `embed` returns.
    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn info(&self) -> Info {
        let mut info = self.info.clone();
        if let Some(why) = self.fell_back.get() {
            (info.backend, info.device) = ("cpu".into(), self.backend().device());
            info.cpu_fallback_reason = Some(why.clone());
        }
        info.vector_cache_note = self.vectors.as_ref().and_then(VectorCache::note);
        info
    }

    pub fn stats(&self) -> StatsSnapshot {
        let mut stats = self.stats.snapshot();
        stats.cache_bytes = self.vectors.as_ref().map_or(0.0, |v| v.bytes() as f64);
        stats
    }

    pub fn is_gpu(&self) -> bool {
        self.backend().is_gpu()
    }

    /// Unit-length vectors of `texts`, `dim` floats each, in input order.
    pub fn embed(&self, texts: &[String], is_query: bool) -> Result<Vec<f32>> {
        self.embed_with(texts, is_query, &EmbedOptions::default())
    }

    /// The same, with the call's task or named prompt (`info().tasks`, `info().prompts`).
    pub fn embed_with(
        &self,
        texts: &[String],
        is_query: bool,
        call: &EmbedOptions,
    ) -> Result<Vec<f32>> {
        self.embed_cancellable(texts, is_query, call, &Cancel::never())
    }

    /// The same, stopped with `Error::Aborted` before the next micro-batch once `cancel` is set.
    pub fn embed_cancellable(
        &self,
        texts: &[String],
        is_query: bool,
        call: &EmbedOptions,
        cancel: &Cancel,
    ) -> Result<Vec<f32>> {
        self.call("embed", texts.len(), cancel, |state| {
            let chosen = self.tasks.choose(is_query, call)?;
            self.embed_counted(texts, &chosen, state)
        })
    }

    fn embed_counted(
        &self,
        texts: &[String],
        chosen: &Chosen,
        state: &CallState,
    ) -> Result<Vec<f32>> {
        if self.pairs.is_some() {
            return Err(Error::Input(format!(
                "this model is a reranker ({}): it scores (query, document) pairs with rerank(query, documents) and does not embed; embed with an embedding model",
                self.info.head.as_deref().unwrap_or_default()
            )));
        }
        let mut vectors = match &self.vectors {
            None => self.compute(texts, chosen, self.dim, texts.len(), state)?,
            Some(cache) => {
                let lookup = cache.lookup(texts, &chosen.prefix, chosen.id);
                let misses = lookup.misses();
                self.stats.cache(texts.len() - misses.len(), misses.len());
                let missed: Vec<String> = misses.iter().map(|&i| texts[i].clone()).collect();
                let computed = self.compute(&missed, chosen, self.model_dim, texts.len(), state)?;
                cache.keep(&lookup, &computed);
                lookup.assemble(&computed, self.model_dim, self.dim)
            }
        };
        l2_normalize(&mut vectors, self.dim);
        Ok(vectors)
    }

    /// `width` floats of each text (the model's, or cut to `dimensions`), not normalised; the
    /// call counts as `asked` texts.
    fn compute(
        &self,
        texts: &[String],
        chosen: &Chosen,
        width: usize,
        asked: usize,
        state: &CallState,
    ) -> Result<Vec<f32>> {
        let started = Instant::now();
        let encoded = self.tokenizer.encode_counted(texts, &chosen.prefix)?;
        let ids = encoded.ids;
        let tokens = ids.iter().map(Vec::len).sum();
        state.tokens.fetch_add(tokens, Relaxed);
        self.stats.call(asked, tokens, started.elapsed());
        self.stats.truncated(encoded.truncated);
        self.run(&ids, &[], chosen.id, width, state)
    }

    /// How many tokens each text becomes with the call's prompt, special tokens included, before
    /// truncation: what a chunker needs to split where the model would cut. No forward pass.
    pub fn count_tokens(
        &self,
        texts: &[String],
        is_query: bool,
        call: &EmbedOptions,
    ) -> Result<Vec<u32>> {
        if self.pairs.is_some() {
            return Err(Error::Input(
                "countTokens counts an embedding model's tokens; a reranker reads (query, document) pairs".into(),
            ));
        }
        let chosen = self.tasks.choose(is_query, call)?;
        self.tokenizer.count(texts, &chosen.prefix)
    }

    /// The first `width` pooled floats of each row of `ids` (with its token types, when given),
    /// in order, run in length-sorted micro-batches.
    fn run(
        &self,
        ids: &[Vec<u32>],
        types: &[Vec<u8>],
        task: Option<i64>,
        width: usize,
        state: &CallState,
    ) -> Result<Vec<f32>> {
        let lengths: Vec<usize> = ids.iter().map(Vec::len).collect();
        let mut out = vec![0f32; ids.len() * width];
        let batches = plan(&lengths, self.batch_tokens);
        let job = Job {
            ids,
            types,
            task,
            width,
            state,
            vectors: Mutex::new(&mut out),
        };
        self.forward_all(batches, &|rows, forward| self.forward(&job, rows, forward))?;
        Ok(out)
    }

    /// Runs `rows` as one micro-batch into their places in `vectors`; out of memory halves the
    /// micro-batch and tries again, so a call returns every vector or a real error.
    fn forward(&self, job: &Job, rows: Vec<usize>, forward: &Forward) -> Result<()> {
        job.state.cancel.check()?;
        job.state.batches.fetch_add(1, Relaxed);
        let (dim, model_dim) = (job.width, self.model_dim);
        let mut batch = match job.types.is_empty() {
            true => crate::batching::assemble(job.ids, rows),
            false => assemble_typed(job.ids, job.types, rows),
        };
        batch.task = job.task;
        let mut pooled = vec![0f32; batch.size() * model_dim];
        let started = Instant::now();
        let result = forward(&batch, &mut pooled);
        self.stats
            .forward(batch.size() * batch.seq, started.elapsed());
        match result {
            Ok(()) => {
                let mut vectors = job.vectors.lock().map_err(|_| poisoned())?;
                // a Matryoshka cut keeps each vector's first `dim` values
                for (&row, vector) in batch.rows.iter().zip(pooled.chunks_exact(model_dim)) {
                    vectors[row * dim..(row + 1) * dim].copy_from_slice(&vector[..dim]);
                }
                Ok(())
            }
            Err(Error::OutOfMemory(e)) if batch.size() > 1 => {
                self.stats.oom_retry();
                log::warn!(rows = batch.size(), tokens = batch.seq, reason:% = e; "oom_split");
                let mut first = batch.rows;
                let second = first.split_off(first.len() / 2);
                self.forward(job, first, forward)?;
                self.forward(job, second, forward)
            }
            Err(Error::OutOfMemory(e)) => Err(Error::OutOfMemory(format!(
                "{e} (even a single text of {} tokens did not fit: lower maxLength)",
                batch.seq
            ))),
            Err(e) => Err(e),
        }
    }
}

/// One call's token ids and the buffer its vectors go to, shared by micro-batches running at once.
struct Job<'a> {
    ids: &'a [Vec<u32>],
    /// Each row's token types; empty: all 0.
    types: &'a [Vec<u8>],
    task: Option<i64>,
    /// Floats kept of each pooled vector.
    width: usize,
    state: &'a CallState<'a>,
    vectors: Mutex<&'a mut Vec<f32>>,
}

fn poisoned() -> Error {
    Error::Internal("a lock was poisoned by a panic".into())
}
