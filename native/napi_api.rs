//! The JavaScript API: `init`, `embed`, `embedSync`, `isGpu`, `info`. Thin: read arguments,
//! call the engine off the JS thread, turn every failure (panics included) into an `Error`.
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use napi::bindgen_prelude::*;
use napi::{JsValue, ScopedTask};
use napi_derive::napi;

use crate::engine::{Engine, Info, Options};
use crate::error::Error as EngineError;

/// The model in use. `init` swaps it whole; a running `embed` keeps its own `Arc` to the old one.
static ENGINE: RwLock<Option<Arc<Engine>>> = RwLock::new(None);

#[napi(object)]
#[derive(Default)]
pub struct InitOptions {
    #[napi(ts_type = "'auto' | 'cpu' | 'cuda' | 'mlx'")]
    pub backend: Option<String>,
    /// Truncation in tokens (default: the snapshot's max_seq_length, else the trained maximum).
    pub max_length: Option<u32>,
    /// Token budget (rows × padded length) of one forward pass.
    pub batch_tokens: Option<u32>,
    /// ONNX Runtime intra-op threads (default: physical cores).
    pub threads: Option<u32>,
    /// Which `.onnx` file of the snapshot to run (relative to it or to its `onnx/` folder).
    pub onnx_file: Option<String>,
    /// Which weights run: `model.safetensors` when present (`auto`), or the ONNX file.
    #[napi(ts_type = "'auto' | 'safetensors' | 'onnx'")]
    pub weights: Option<String>,
    /// Path of the `libonnxruntime` shared library to load.
    pub ort_library: Option<String>,
    /// Precision of the graph built from model.safetensors: `float32` (default on the CPU and
    /// MLX); `float16` (default on CUDA; also MLX, and the CPU for checking); `int8` (dynamic
    /// quantisation, ONNX Runtime on the CPU).
    #[napi(ts_type = "'float32' | 'int8' | 'float16'")]
    pub dtype: Option<String>,
}

#[napi(object)]
pub struct ModelInfo {
    #[napi(ts_type = "'cpu' | 'cuda' | 'mlx'")]
    pub backend: String,
    pub device: String,
    #[napi(ts_type = "'bert' | 'nomic_bert'")]
    pub arch: String,
    pub dim: u32,
    pub max_length: u32,
    #[napi(ts_type = "'cls' | 'mean'")]
    pub pooling: String,
    pub query_prefix: String,
    pub weights: String,
    /// The ONNX Runtime in use (absent when MLX runs the model).
    pub ort_version: Option<String>,
    pub ort_library: Option<String>,
    pub threads: u32,
    pub batch_tokens: u32,
    /// Why the CUDA provider is not used, when `backend: 'auto'` could have used it.
    pub cuda_unavailable: Option<String>,
    /// Why MLX is not used, when `backend: 'auto'` on Apple Silicon could have used it.
    pub mlx_unavailable: Option<String>,
    /// The precision that runs; absent for an ONNX file, which runs as it is.
    #[napi(ts_type = "'float32' | 'float16' | 'int8'")]
    pub dtype: Option<String>,
}

impl From<&Info> for ModelInfo {
    fn from(i: &Info) -> Self {
        ModelInfo {
            backend: i.backend.clone(),
            device: i.device.clone(),
            arch: i.arch.clone(),
            dim: i.dim as u32,
            max_length: i.max_length as u32,
            pooling: i.pooling.clone(),
            query_prefix: i.query_prefix.clone(),
            weights: i.weights.clone(),
            ort_version: i.ort_version.clone(),
            ort_library: i.ort_library.clone(),
            threads: i.threads as u32,
            batch_tokens: i.batch_tokens as u32,
            cuda_unavailable: i.cuda_unavailable.clone(),
            mlx_unavailable: i.mlx_unavailable.clone(),
            dtype: i.dtype.clone(),
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
        }
    }
}

fn js_error(e: EngineError) -> Error {
    Error::new(Status::GenericFailure, e.to_string())
}

/// Runs engine code so that neither an error nor a panic escapes into JavaScript unconverted.
fn guarded<T>(f: impl FnOnce() -> crate::error::Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result.map_err(js_error),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(js_error(EngineError::Internal(what)))
        }
    }
}

fn current_engine() -> Result<Arc<Engine>> {
    let engine = ENGINE
        .read()
        .map_err(|_| js_error(EngineError::Internal("engine lock poisoned".into())))?;
    engine.clone().ok_or_else(|| {
        js_error(EngineError::Input(
            "the model is not loaded: call and await init(modelDir) first".into(),
        ))
    })
}

pub struct InitTask {
    dir: PathBuf,
    options: Options,
}

impl Task for InitTask {
    type Output = Arc<Engine>;
    type JsValue = ModelInfo;

    fn compute(&mut self) -> Result<Self::Output> {
        guarded(|| Engine::load(&self.dir, &self.options)).map(Arc::new)
    }

    fn resolve(&mut self, _env: Env, engine: Self::Output) -> Result<Self::JsValue> {
        let info = ModelInfo::from(engine.info());
        let mut slot = ENGINE
            .write()
            .map_err(|_| js_error(EngineError::Internal("engine lock poisoned".into())))?;
        *slot = Some(engine);
        Ok(info)
    }
}

/// Loads the model in `modelDir` (a Hugging Face snapshot); a second call replaces the model.
#[napi(ts_return_type = "Promise<ModelInfo>")]
pub fn init(model_dir: String, options: Option<InitOptions>) -> AsyncTask<InitTask> {
    AsyncTask::new(InitTask {
        dir: PathBuf::from(model_dir),
        options: options.unwrap_or_default().into(),
    })
}

pub struct EmbedTask {
    /// The checked arguments, or why they were refused: `embed` always returns a promise,
    /// and a refusal rejects it rather than throwing at the call.
    job: Result<(Arc<Engine>, Vec<String>)>,
    is_query: bool,
}

impl<'task> ScopedTask<'task> for EmbedTask {
    type Output = (Vec<f32>, usize);
    type JsValue = Vec<Float32ArraySlice<'task>>;

    fn compute(&mut self) -> Result<Self::Output> {
        let (engine, texts) = self
            .job
            .as_ref()
            .map_err(|e| Error::new(e.status, e.reason.clone()))?;
        guarded(|| engine.embed(texts, self.is_query)).map(|v| (v, engine.info().dim))
    }

    fn resolve(&mut self, env: &'task Env, (vectors, dim): Self::Output) -> Result<Self::JsValue> {
        typed_array_views(env, vectors, dim)
    }
}

/// One vector per text, in input order; runs off the JS thread.
#[napi(
    ts_args_type = "texts: string[], isQuery?: boolean",
    ts_return_type = "Promise<Float32Array[]>"
)]
pub fn embed(texts: Unknown, is_query: Option<bool>) -> AsyncTask<EmbedTask> {
    let job = read_texts(texts).and_then(|texts| Ok((current_engine()?, texts)));
    AsyncTask::new(EmbedTask {
        job,
        is_query: is_query.unwrap_or(false),
    })
}

/// The same as `embed`, blocking the JS thread: for scripts.
#[napi(
    ts_args_type = "texts: string[], isQuery?: boolean",
    ts_return_type = "Float32Array[]"
)]
pub fn embed_sync<'env>(
    env: &'env Env,
    texts: Unknown,
    is_query: Option<bool>,
) -> Result<Vec<Float32ArraySlice<'env>>> {
    let texts = read_texts(texts)?;
    let engine = current_engine()?;
    let vectors = guarded(|| engine.embed(&texts, is_query.unwrap_or(false)))?;
    typed_array_views(env, vectors, engine.info().dim)
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
pub fn runtime_info(ort_library: Option<String>) -> Result<RuntimeInfo> {
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
}

/// Writes the graph built from `modelDir`'s model.safetensors as an ONNX file (outputs
/// `sentence_embedding` and `last_hidden_state`), for runtimes that need a file: standard fp32,
/// or the precision `options.dtype` names (`'int8'` needs ONNX Runtime to run it).
#[napi]
pub fn export_onnx(model_dir: String, file: String, options: Option<InitOptions>) -> Result<()> {
    let options: Options = options.unwrap_or_default().into();
    guarded(|| {
        crate::engine::export_onnx(
            std::path::Path::new(&model_dir),
            std::path::Path::new(&file),
            &options,
        )
    })
}

/// True only when the model really runs on a GPU.
#[napi]
pub fn is_gpu() -> bool {
    current_engine().map(|e| e.is_gpu()).unwrap_or(false)
}

/// What was loaded and where it runs.
#[napi]
pub fn info() -> Result<ModelInfo> {
    Ok(ModelInfo::from(current_engine()?.info()))
}

fn read_texts(texts: Unknown) -> Result<Vec<String>> {
    if !texts.is_array()? {
        return Err(js_error(EngineError::Input(format!(
            "embed(texts): texts must be an array of strings, got {}",
            type_name(texts.get_type()?)
        ))));
    }
    let array: Array = unsafe { texts.cast()? };
    (0..array.len())
        .map(|i| {
            let item: Unknown = array
                .get(i)?
                .ok_or_else(|| Error::from_reason("array changed while read"))?;
            match item.get_type()? {
                ValueType::String => unsafe { item.cast::<String>() },
                other => Err(js_error(EngineError::Input(format!(
                    "embed(texts): texts[{i}] is {}, expected a string",
                    type_name(other)
                )))),
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
