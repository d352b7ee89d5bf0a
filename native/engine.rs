//! The one entry: tokenize -> length-sorted micro-batches -> backend forward (pooled) ->
//! L2 normalise -> one contiguous buffer in input order.
use std::path::{Path, PathBuf};

use crate::backend::ort::graph::Precision;
use crate::backend::ort::{self as ort_backend, runtime, Want};
use crate::backend::Backend;
use crate::batching::{assemble, plan};
use crate::error::{Error, Result};
use crate::model_dir::ModelDir;
use crate::pooling::l2_normalize;
use crate::tokenize::TextTokenizer;
use crate::weights::{Safetensors, WeightsSource};

/// What `init` accepts; `None` means "the model's or the machine's default".
#[derive(Debug, Default, Clone)]
pub struct Options {
    pub backend: Option<String>,
    pub max_length: Option<usize>,
    pub batch_tokens: Option<usize>,
    pub threads: Option<usize>,
    pub onnx_file: Option<String>,
    /// `auto` (safetensors when present, else ONNX), `safetensors` or `onnx`.
    pub weights: Option<String>,
    pub ort_library: Option<PathBuf>,
    /// `float32` (the default on the CPU and MLX), `float16` (the default on CUDA; also MLX, and
    /// the CPU to check it) or `int8` (ONNX Runtime on the CPU); `None`: the backend's default.
    pub dtype: Option<String>,
}

/// Token budget of one CPU forward pass. Measured on a 2-core AVX2 machine: 512-1024 tokens run
/// 1.5x faster than 8192 for MiniLM and 1.3x for a 768x12 NomicBert, because attention's
/// [rows, heads, seq, seq] scores and the FFN's activations of a larger batch leave the caches.
const CPU_BATCH_TOKENS: usize = 1024;
/// A GPU needs far more rows in flight to fill its cores.
const GPU_BATCH_TOKENS: usize = 16384;
/// Test seam: batches of more rows than this fail as out of memory, to exercise the retry.
const INJECT_OOM_ENV: &str = "SEMANTIC_SEARCH_NATIVE_INJECT_OOM_ROWS";

#[derive(Debug, Clone)]
pub struct Info {
    pub backend: String,
    pub device: String,
    pub arch: String,
    pub dim: usize,
    pub max_length: usize,
    pub pooling: String,
    pub query_prefix: String,
    pub weights: String,
    /// The ONNX Runtime library in use; `None` when MLX runs the model.
    pub ort_version: Option<String>,
    pub ort_library: Option<String>,
    pub threads: usize,
    pub batch_tokens: usize,
    /// Why the CUDA provider is not used, when `backend: 'auto'` could have used it.
    pub cuda_unavailable: Option<String>,
    /// Why MLX is not used, when `backend: 'auto'` on Apple Silicon could have used it.
    pub mlx_unavailable: Option<String>,
    /// `float32`, `float16` or `int8`; `None` for an ONNX file, which runs as it is.
    pub dtype: Option<String>,
}

pub struct Engine {
    tokenizer: TextTokenizer,
    backend: Box<dyn Backend>,
    batch_tokens: usize,
    info: Info,
}

impl Engine {
    pub fn load(path: &Path, options: &Options) -> Result<Self> {
        let dir = ModelDir::open(path)?;
        let max_length = resolve_max_length(&dir, options.max_length)?;
        let threads = positive("threads", options.threads)?.unwrap_or_else(physical_cores);
        let choice = choose_backend(options.backend.as_deref())?;
        let tokenizer = TextTokenizer::load(&dir.tokenizer, max_length)?;
        let weights = choose_weights(&dir, options)?;
        let loaded = load_backend(&dir, &weights, options, threads, max_length, choice)?;
        let backend = with_injected_oom(loaded.backend);
        let default_tokens = if backend.is_gpu() {
            GPU_BATCH_TOKENS
        } else {
            CPU_BATCH_TOKENS
        };
        let batch_tokens = positive("batchTokens", options.batch_tokens)?.unwrap_or(default_tokens);
        let info = Info {
            backend: backend.kind().into(),
            device: backend.device(),
            arch: dir.config.arch().name().into(),
            dim: dir.config.hidden(),
            max_length,
            pooling: dir.pooling.name().into(),
            query_prefix: dir.query_prefix.clone(),
            weights: weights.path().display().to_string(),
            ort_version: loaded.runtime.map(|r| r.version.clone()),
            ort_library: loaded.runtime.map(|r| r.library.display().to_string()),
            threads,
            batch_tokens,
            cuda_unavailable: loaded.cuda_unavailable,
            mlx_unavailable: loaded.mlx_unavailable,
            dtype: loaded.dtype.map(str::to_string),
        };
        Ok(Engine {
            tokenizer,
            backend,
            batch_tokens,
            info,
        })
    }

    pub fn info(&self) -> &Info {
        &self.info
    }

    pub fn is_gpu(&self) -> bool {
        self.backend.is_gpu()
    }

    /// Unit-length vectors of `texts`, `dim` floats each, in input order.
    pub fn embed(&self, texts: &[String], is_query: bool) -> Result<Vec<f32>> {
        let prefix = if is_query {
            self.info.query_prefix.as_str()
        } else {
            ""
        };
        let ids = self.tokenizer.encode(texts, prefix)?;
        let lengths: Vec<usize> = ids.iter().map(Vec::len).collect();
        let mut vectors = vec![0f32; texts.len() * self.info.dim];
        for rows in plan(&lengths, self.batch_tokens) {
            self.forward(&ids, rows, &mut vectors)?;
        }
        l2_normalize(&mut vectors, self.info.dim);
        Ok(vectors)
    }

    /// Runs `rows` as one micro-batch into their places in `vectors`; out of memory halves the
    /// micro-batch and tries again, so a call returns every vector or a real error.
    fn forward(&self, ids: &[Vec<u32>], rows: Vec<usize>, vectors: &mut [f32]) -> Result<()> {
        let dim = self.info.dim;
        let batch = assemble(ids, rows);
        let mut pooled = vec![0f32; batch.size() * dim];
        match self.backend.forward(&batch, &mut pooled) {
            Ok(()) => {
                for (&row, vector) in batch.rows.iter().zip(pooled.chunks_exact(dim)) {
                    vectors[row * dim..(row + 1) * dim].copy_from_slice(vector);
                }
                Ok(())
            }
            Err(Error::OutOfMemory(_)) if batch.size() > 1 => {
                let mut first = batch.rows;
                let second = first.split_off(first.len() / 2);
                self.forward(ids, first, vectors)?;
                self.forward(ids, second, vectors)
            }
            Err(Error::OutOfMemory(e)) => Err(Error::OutOfMemory(format!(
                "{e} (even a single text of {} tokens did not fit: lower maxLength)",
                batch.seq
            ))),
            Err(e) => Err(e),
        }
    }
}

/// Writes the model of `path`'s `model.safetensors` as an ONNX file (outputs
/// `sentence_embedding` and `last_hidden_state`), for runtimes that need a file: standard fp32
/// unless `options.dtype` asks for another precision of the graph.
pub fn export_onnx(path: &Path, file: &Path, options: &Options) -> Result<()> {
    let dir = ModelDir::open(path)?;
    let max_length = resolve_max_length(&dir, options.max_length)?;
    let weights = Safetensors::open(&dir.path)?
        .ok_or_else(|| Error::model_file(&dir.path, "has no model.safetensors to export"))?;
    let runtime = runtime::runtime(options.ort_library.as_deref())?;
    crate::backend::ort::graph::export(
        &weights,
        &dir.config,
        dir.pooling,
        max_length,
        precision(options.dtype.as_deref())?.unwrap_or(Precision::Float32),
        &runtime.env,
        file,
    )
}

fn choose_weights(dir: &ModelDir, options: &Options) -> Result<WeightsSource> {
    let safetensors = || Safetensors::open(&dir.path);
    match options.weights.as_deref().unwrap_or("auto") {
        "auto" if options.onnx_file.is_some() => Ok(WeightsSource::Onnx(dir.onnx_file(options.onnx_file.as_deref())?)),
        "auto" => match safetensors()? {
            Some(st) => Ok(WeightsSource::Safetensors(st)),
            None => Ok(WeightsSource::Onnx(dir.onnx_file(None)?)),
        },
        "safetensors" => safetensors()?.map(WeightsSource::Safetensors).ok_or_else(|| {
            Error::model_file(&dir.path, "has no model.safetensors (nor model.safetensors.index.json), which weights: 'safetensors' needs")
        }),
        "onnx" => Ok(WeightsSource::Onnx(dir.onnx_file(options.onnx_file.as_deref())?)),
        other => Err(Error::Input(format!("unknown weights '{other}' (expected 'auto', 'safetensors' or 'onnx')"))),
    }
}

fn resolve_max_length(dir: &ModelDir, requested: Option<usize>) -> Result<usize> {
    let limit = dir.config.max_trained_tokens();
    match positive("maxLength", requested)? {
        Some(n) if n > limit => Err(Error::Input(format!(
            "maxLength {n} is more than this model was trained for ({limit} tokens); use {limit} or less"
        ))),
        Some(n) => Ok(n),
        None => Ok(dir.max_seq_length.unwrap_or(limit).min(limit)),
    }
}

fn positive(name: &str, value: Option<usize>) -> Result<Option<usize>> {
    match value {
        Some(0) => Err(Error::Input(format!("{name} must be a positive integer"))),
        other => Ok(other),
    }
}

/// Where `init` may run the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Choice {
    Ort(Want),
    /// MLX, or (when not `required`) ONNX Runtime on the CPU with the reason kept.
    Mlx {
        required: bool,
    },
}

/// `auto` is MLX on Apple Silicon and CUDA-then-CPU elsewhere (the Linux MLX build exists for
/// tests: it runs MLX only when asked).
fn choose_backend(requested: Option<&str>) -> Result<Choice> {
    match requested.unwrap_or("auto") {
        "auto" if cfg!(all(mlx, target_os = "macos")) => Ok(Choice::Mlx { required: false }),
        "auto" => Ok(Choice::Ort(Want::CudaFirst)),
        "cpu" => Ok(Choice::Ort(Want::CpuOnly)),
        "cuda" => Ok(Choice::Ort(Want::CudaOnly)),
        "mlx" if cfg!(mlx) => Ok(Choice::Mlx { required: true }),
        "mlx" => Err(Error::Input(
            "backend 'mlx' runs on Apple Silicon (macOS arm64) builds; use 'auto', 'cpu' or 'cuda' here"
                .into(),
        )),
        other => Err(Error::Input(format!(
            "unknown backend '{other}' (expected 'auto', 'cpu', 'cuda' or 'mlx')"
        ))),
    }
}

struct Loaded {
    backend: Box<dyn Backend>,
    runtime: Option<&'static runtime::Runtime>,
    cuda_unavailable: Option<String>,
    mlx_unavailable: Option<String>,
    dtype: Option<&'static str>,
}

fn load_backend(
    dir: &ModelDir,
    weights: &WeightsSource,
    options: &Options,
    threads: usize,
    max_length: usize,
    choice: Choice,
) -> Result<Loaded> {
    let precision = ort_precision(options.dtype.as_deref(), choice)?;
    let (want, mlx_unavailable) = match choice {
        Choice::Ort(want) => (want, None),
        Choice::Mlx { required } => match load_mlx(dir, weights, options) {
            Ok((backend, dtype)) => {
                return Ok(Loaded {
                    backend,
                    runtime: None,
                    cuda_unavailable: None,
                    mlx_unavailable: None,
                    dtype: Some(dtype),
                })
            }
            Err(e) if required => return Err(e),
            Err(e) => (Want::CpuOnly, Some(e.to_string())),
        },
    };
    let runtime = runtime::runtime(options.ort_library.as_deref())?;
    let loaded = ort_backend::load(runtime, dir, weights, threads, max_length, precision, want)?;
    Ok(Loaded {
        backend: Box::new(loaded.backend),
        runtime: Some(runtime),
        cuda_unavailable: loaded.cuda_unavailable,
        mlx_unavailable,
        dtype: loaded.precision.map(Precision::name),
    })
}

#[cfg(mlx)]
fn load_mlx(
    dir: &ModelDir,
    weights: &WeightsSource,
    options: &Options,
) -> Result<(Box<dyn Backend>, &'static str)> {
    use crate::backend::mlx;
    let dtype = mlx::dtype(options.dtype.as_deref())?;
    let WeightsSource::Safetensors(st) = weights else {
        return Err(Error::model_file(
            weights.path(),
            "is ONNX, but MLX runs model.safetensors: add it to the model directory, or use backend 'cpu'",
        ));
    };
    let backend = mlx::MlxBackend::load(st, &dir.config, dir.pooling, dtype)?;
    Ok((Box::new(backend), mlx::dtype_name(dtype)))
}

#[cfg(not(mlx))]
fn load_mlx(
    _: &ModelDir,
    _: &WeightsSource,
    _: &Options,
) -> Result<(Box<dyn Backend>, &'static str)> {
    Err(Error::Internal("MLX is not part of this build".into()))
}

/// The dtype asked of ONNX Runtime (`None`: its provider's default); with MLX chosen, MLX
/// checks the dtype and a fallback to ONNX Runtime uses the default.
fn ort_precision(dtype: Option<&str>, choice: Choice) -> Result<Option<Precision>> {
    match choice {
        Choice::Mlx { .. } => Ok(None),
        Choice::Ort(_) => precision(dtype),
    }
}

fn precision(dtype: Option<&str>) -> Result<Option<Precision>> {
    match dtype {
        None => Ok(None),
        Some("float32") => Ok(Some(Precision::Float32)),
        Some("float16") => Ok(Some(Precision::Float16)),
        Some("int8") => Ok(Some(Precision::Int8)),
        Some(other) => Err(Error::Input(format!(
            "unknown dtype '{other}' (expected 'float32', 'float16' or 'int8')"
        ))),
    }
}

/// Wraps `backend` so that batches of more rows than `$SEMANTIC_SEARCH_NATIVE_INJECT_OOM_ROWS`
/// fail as out of memory: the tests' way to reach the retry path without a full GPU.
fn with_injected_oom(backend: Box<dyn Backend>) -> Box<dyn Backend> {
    match std::env::var(INJECT_OOM_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
    {
        Some(max_rows) => Box::new(OomAbove {
            inner: backend,
            max_rows,
        }),
        None => backend,
    }
}

struct OomAbove {
    inner: Box<dyn Backend>,
    max_rows: usize,
}

impl Backend for OomAbove {
    fn forward(&self, batch: &crate::batching::Batch, out: &mut [f32]) -> Result<()> {
        if batch.size() > self.max_rows {
            return Err(Error::OutOfMemory(format!(
                "injected for a batch of {} rows",
                batch.size()
            )));
        }
        self.inner.forward(batch, out)
    }
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn device(&self) -> String {
        self.inner.device()
    }
}

/// Physical cores available to this process: ONNX Runtime's kernels gain nothing from a
/// hyper-thread sibling, and a thread per logical core oversubscribes.
pub fn physical_cores() -> usize {
    let logical = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let mut cores = std::collections::HashSet::new();
    let mut physical = "";
    for line in cpuinfo.lines() {
        let mut parts = line.splitn(2, ':').map(str::trim);
        match (parts.next(), parts.next()) {
            (Some("physical id"), Some(v)) => physical = v,
            (Some("core id"), Some(v)) => {
                cores.insert((physical.to_string(), v.to_string()));
            }
            _ => {}
        }
    }
    if cores.is_empty() {
        logical
    } else {
        cores.len().min(logical)
    }
}
