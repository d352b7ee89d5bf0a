//! The JavaScript API: the `Model` class, and `init`, `embed`, `embedSync`, `isGpu`, `info`,
//! `stats` as thin functions over one default `Model`. Thin: read arguments, call the engine
//! off the JS thread, turn every failure (panics included) into an `Error` whose `code` names
//! its kind. Options, `ModelInfo` and `ModelStats` are the engine's own types.
mod cancel;
mod read;
mod reranker;
mod vectors;

pub use cancel::CancelToken;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use napi::bindgen_prelude::*;
use napi::ScopedTask;
use napi_derive::napi;
use once_cell::sync::Lazy;

use crate::cancel::Cancel;
use crate::engine::Engine;
use crate::error::Error as EngineError;
use crate::events::Sink;
use crate::health::Health;
use crate::info::Info;
use crate::settings::Options;
use crate::stats::StatsSnapshot;
use crate::task::EmbedOptions;
use read::{guarded, js_error, typed_array_views, EngineResult};

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

    // What a model class answers of its engine, the same for an embedder and a reranker.

    fn info(&self, env: &Env) -> Result<Info> {
        self.get().map(|e| e.info()).map_err(|e| js_error(env, e))
    }

    fn is_gpu(&self) -> bool {
        self.get().is_ok_and(|e| e.is_gpu())
    }

    fn stats(&self, env: &Env) -> Result<StatsSnapshot> {
        self.get().map(|e| e.stats()).map_err(|e| js_error(env, e))
    }

    fn health(&self, env: &Env) -> Result<Health> {
        self.get().map(|e| e.health()).map_err(|e| js_error(env, e))
    }

    fn close(&self) -> AsyncTask<CloseTask> {
        AsyncTask::new(CloseTask {
            engine: self.take(),
        })
    }
}

fn poisoned() -> EngineError {
    EngineError::Internal("model lock poisoned".into())
}

fn ran_twice() -> EngineError {
    EngineError::Internal("a task ran twice".into())
}

/// The model of the module-level functions.
static DEFAULT: Lazy<Model> = Lazy::new(|| Model {
    slot: Arc::new(Slot {
        engine: RwLock::new(None),
        empty: || {
            EngineError::NotLoaded(
                "the model is not loaded: call and await init(modelDir) first".into(),
            )
        },
    }),
});

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
                empty: || {
                    EngineError::Closed(
                        "this model was closed: load it again with Model.load(modelDir) to embed with it".into(),
                    )
                },
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
        LoadTask::new(&env, model_dir, options, false)
    }

    /// One vector per text, in input order; runs off the JS thread. The TypeScript layer
    /// passes `cancel` for a call's `signal` or `timeout`.
    #[napi(
        ts_args_type = "texts: string[], isQuery?: boolean, options?: EmbedOptions, cancel?: CancelToken",
        ts_return_type = "Promise<Float32Array[]>"
    )]
    pub fn embed(
        &self,
        texts: Unknown,
        is_query: Option<bool>,
        options: Option<EmbedOptions>,
        cancel: Option<&CancelToken>,
    ) -> AsyncTask<EmbedTask> {
        let job = read::texts(texts).and_then(|texts| Ok((self.slot.get()?, texts)));
        AsyncTask::new(EmbedTask {
            job,
            is_query: is_query.unwrap_or(false),
            call: options.unwrap_or_default(),
            cancel: cancel.map_or_else(Cancel::never, CancelToken::flag),
        })
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
        let texts = read::texts(texts).map_err(|e| js_error(env, e))?;
        let engine = self.slot.get().map_err(|e| js_error(env, e))?;
        let call = options.unwrap_or_default();
        let is_query = is_query.unwrap_or(false);
        let vectors =
            guarded(|| engine.embed_with(&texts, is_query, &call)).map_err(|e| js_error(env, e))?;
        typed_array_views(env, vectors, engine.dim())
    }

    /// How many tokens each text becomes, prompt and special tokens included, before
    /// truncation at `maxLength`, without a forward pass: where a chunker should split.
    #[napi(ts_args_type = "texts: string[], isQuery?: boolean, options?: EmbedOptions")]
    pub fn count_tokens(
        &self,
        env: Env,
        texts: Unknown,
        is_query: Option<bool>,
        options: Option<EmbedOptions>,
    ) -> Result<Uint32Array> {
        let counted = read::texts(texts).and_then(|texts| {
            let engine = self.slot.get()?;
            let call = options.unwrap_or_default();
            guarded(|| engine.count_tokens(&texts, is_query.unwrap_or(false), &call))
        });
        counted.map(Uint32Array::new).map_err(|e| js_error(&env, e))
    }

    /// What this model is and where it runs.
    #[napi]
    pub fn info(&self, env: Env) -> Result<Info> {
        self.slot.info(&env)
    }

    /// True only when this model really runs on a GPU.
    #[napi]
    pub fn is_gpu(&self) -> bool {
        self.slot.is_gpu()
    }

    /// What this model has done since it was loaded.
    #[napi]
    pub fn stats(&self, env: Env) -> Result<StatsSnapshot> {
        self.slot.stats(&env)
    }

    /// Whether this model is serving, where, and how fast: for a service's health check.
    #[napi]
    pub fn health(&self, env: Env) -> Result<Health> {
        self.slot.health(&env)
    }

    /// Frees the model: calls already running finish first, later calls reject with
    /// `ERR_MODEL_CLOSED`. Resolves once the memory is released; closing twice is harmless.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close(&self) -> AsyncTask<CloseTask> {
        self.slot.close()
    }
}

/// Loads the model in `modelDir` (a Hugging Face snapshot) as the default model of `embed`,
/// `info`, `isGpu` and `stats`; a second call replaces it.
#[napi(
    ts_args_type = "modelDir: string, options?: InitOptions | undefined | null",
    ts_return_type = "Promise<ModelInfo>"
)]
pub fn init(env: Env, model_dir: Unknown, options: Option<Unknown>) -> AsyncTask<LoadTask> {
    LoadTask::new(&env, model_dir, options, true)
}

/// One vector per text, in input order, from the default model; runs off the JS thread.
#[napi(
    ts_args_type = "texts: string[], isQuery?: boolean, options?: EmbedOptions, cancel?: CancelToken",
    ts_return_type = "Promise<Float32Array[]>"
)]
pub fn embed(
    texts: Unknown,
    is_query: Option<bool>,
    options: Option<EmbedOptions>,
    cancel: Option<&CancelToken>,
) -> AsyncTask<EmbedTask> {
    DEFAULT.embed(texts, is_query, options, cancel)
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
    DEFAULT.embed_sync(env, texts, is_query, options)
}

/// True only when the default model really runs on a GPU.
#[napi]
pub fn is_gpu() -> bool {
    DEFAULT.is_gpu()
}

#[napi(ts_args_type = "texts: string[], isQuery?: boolean, options?: EmbedOptions")]
pub fn count_tokens(
    env: Env,
    texts: Unknown,
    is_query: Option<bool>,
    options: Option<EmbedOptions>,
) -> Result<Uint32Array> {
    DEFAULT.count_tokens(env, texts, is_query, options)
}

/// What the default model is and where it runs.
#[napi]
pub fn info(env: Env) -> Result<Info> {
    DEFAULT.info(env)
}

/// What the default model has done since `init`.
#[napi]
pub fn stats(env: Env) -> Result<StatsSnapshot> {
    DEFAULT.stats(env)
}

/// Whether the default model is serving, where, and how fast.
#[napi]
pub fn health(env: Env) -> Result<Health> {
    DEFAULT.health(env)
}

/// Loads a model off the JS thread: a `Model` (`Model.load`), or the default model (`init`,
/// which resolves to its info).
pub struct LoadTask {
    /// The snapshot folder, options and logger, or why they were refused.
    job: EngineResult<(PathBuf, (Options, Option<Sink>))>,
    into_default: bool,
}

impl LoadTask {
    fn new(
        env: &Env,
        model_dir: Unknown,
        options: Option<Unknown>,
        into_default: bool,
    ) -> AsyncTask<LoadTask> {
        let job =
            read::model_dir(model_dir).and_then(|dir| Ok((dir, read::load_options(env, options)?)));
        AsyncTask::new(LoadTask { job, into_default })
    }
}

impl Task for LoadTask {
    type Output = EngineResult<Arc<Engine>>;
    type JsValue = Either<Model, Info>;

    fn compute(&mut self) -> Result<Self::Output> {
        let job = std::mem::replace(&mut self.job, Err(ran_twice()));
        Ok(job.and_then(|(dir, (options, logger))| {
            let load = || Engine::load(&dir, &options);
            guarded(|| crate::events::scoped(logger.as_ref(), load)).map(Arc::new)
        }))
    }

    fn resolve(&mut self, env: Env, engine: Self::Output) -> Result<Self::JsValue> {
        let engine = engine.map_err(|e| js_error(&env, e))?;
        if !self.into_default {
            return Ok(Either::A(Model::new(engine)));
        }
        let info = engine.info();
        DEFAULT.slot.put(engine).map_err(|e| js_error(&env, e))?;
        Ok(Either::B(info))
    }
}

pub struct EmbedTask {
    /// The checked arguments, or why they were refused: `embed` always returns a promise,
    /// and a refusal rejects it rather than throwing at the call.
    job: EngineResult<(Arc<Engine>, Vec<String>)>,
    is_query: bool,
    call: EmbedOptions,
    cancel: Cancel,
}

impl<'task> ScopedTask<'task> for EmbedTask {
    type Output = EngineResult<(Vec<f32>, usize)>;
    type JsValue = Vec<Float32ArraySlice<'task>>;

    fn compute(&mut self) -> Result<Self::Output> {
        let job = std::mem::replace(&mut self.job, Err(ran_twice()));
        Ok(job.and_then(|(engine, texts)| {
            guarded(|| engine.embed_cancellable(&texts, self.is_query, &self.call, &self.cancel))
                .map(|v| (v, engine.dim()))
        }))
    }

    fn resolve(&mut self, env: &'task Env, output: Self::Output) -> Result<Self::JsValue> {
        let (vectors, dim) = output.map_err(|e| js_error(env, e))?;
        typed_array_views(env, vectors, dim)
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
        Ok(engine.map(|engine| engine.map_or((), release_when_idle)))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> Result<Self::JsValue> {
        output.map_err(|e| js_error(&env, e))
    }
}

/// Drops the engine once no call holds it any more (calls in flight keep their own `Arc`, and
/// each ends by dropping it), then hands the freed heap back to the system. Runs on a worker
/// thread of libuv's pool, never on the JS thread.
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
    /// The CUDA devices the NVIDIA driver reports (0 without a driver): `device: 'cuda:N'`
    /// takes N below it.
    pub cuda_devices: u32,
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
            cuda_devices: cuda::device_count().unwrap_or(0),
        })
    })
    .map_err(|e| js_error(&env, e))
}

/// Writes the graph built from `modelDir`'s model.safetensors as an ONNX file (outputs
/// `sentence_embedding`, normalised, and `last_hidden_state`), off the JS thread: standard fp32,
/// or the precision `options.dtype` names (`'int8'` needs ONNX Runtime to run it); a dtype the
/// CPU graph cannot take is refused.
#[napi(
    ts_args_type = "modelDir: string, file: string, options?: InitOptions | undefined | null",
    ts_return_type = "Promise<void>"
)]
pub fn export_onnx(
    env: Env,
    model_dir: Unknown,
    file: String,
    options: Option<Unknown>,
) -> AsyncTask<ExportTask> {
    ExportTask::new(&env, model_dir, file, options, crate::export::export_onnx)
}

type Export = fn(&std::path::Path, &std::path::Path, &Options) -> crate::error::Result<()>;

pub struct ExportTask {
    job: EngineResult<(PathBuf, PathBuf, Options)>,
    export: Export,
}

impl ExportTask {
    fn new(
        env: &Env,
        model_dir: Unknown,
        file: String,
        options: Option<Unknown>,
        export: Export,
    ) -> AsyncTask<ExportTask> {
        let job = read::model_dir(model_dir)
            .and_then(|dir| Ok((dir, PathBuf::from(file), read::options(env, options)?)));
        AsyncTask::new(ExportTask { job, export })
    }
}

impl Task for ExportTask {
    type Output = EngineResult<()>;
    type JsValue = ();

    fn compute(&mut self) -> Result<Self::Output> {
        let job = std::mem::replace(&mut self.job, Err(ran_twice()));
        Ok(job.and_then(|(dir, file, options)| guarded(|| (self.export)(&dir, &file, &options))))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> Result<Self::JsValue> {
        output.map_err(|e| js_error(&env, e))
    }
}
