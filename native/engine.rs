//! The one entry: tokenize -> length-sorted micro-batches -> backend forward (pooled) ->
//! L2 normalise -> one contiguous buffer in input order.
use std::path::{Path, PathBuf};

use crate::backend::ort::{graph, runtime, session_builder, OrtBackend};
use crate::backend::Backend;
use crate::batching::{assemble, plan};
use crate::error::{Error, Result};
use crate::model_dir::ModelDir;
use crate::pooling::l2_normalize;
use crate::tokenize::TextTokenizer;
use crate::weights::Safetensors;

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
}

/// Token budget of one CPU forward pass: large enough to keep the matrix kernels busy,
/// small enough that attention's [batch, heads, seq, seq] scores stay in cache-friendly sizes.
const CPU_BATCH_TOKENS: usize = 8192;

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
    pub ort_version: String,
    pub ort_library: String,
    pub threads: usize,
    pub batch_tokens: usize,
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
        let batch_tokens =
            positive("batchTokens", options.batch_tokens)?.unwrap_or(CPU_BATCH_TOKENS);
        check_backend(options.backend.as_deref())?;
        let tokenizer = TextTokenizer::load(&dir.tokenizer, max_length)?;
        let runtime = runtime::runtime(options.ort_library.as_deref())?;
        let dim = dir.config.hidden();
        let (backend, weights) = match choose_weights(&dir, options)? {
            Weights::Safetensors(st) => {
                let session = graph::session(
                    &st,
                    &dir.config,
                    dir.pooling,
                    max_length,
                    &session_builder(&runtime.env, threads)?,
                )?;
                (
                    OrtBackend::from_session(session, &st.source, dir.pooling, dim)?,
                    st.source,
                )
            }
            Weights::Onnx(file) => (
                OrtBackend::from_file(runtime, &file, threads, dir.pooling, dim)?,
                file,
            ),
        };
        let info = Info {
            backend: backend.kind().into(),
            device: backend.device(),
            arch: dir.config.arch().name().into(),
            dim,
            max_length,
            pooling: dir.pooling.name().into(),
            query_prefix: dir.query_prefix.clone(),
            weights: weights.display().to_string(),
            ort_version: runtime.version.clone(),
            ort_library: runtime.library.display().to_string(),
            threads,
            batch_tokens,
        };
        Ok(Engine {
            tokenizer,
            backend: Box::new(backend),
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
        let dim = self.info.dim;
        let prefix = if is_query {
            self.info.query_prefix.as_str()
        } else {
            ""
        };
        let ids = self.tokenizer.encode(texts, prefix)?;
        let lengths: Vec<usize> = ids.iter().map(Vec::len).collect();
        let mut vectors = vec![0f32; texts.len() * dim];
        let mut pooled = Vec::new();
        for rows in plan(&lengths, self.batch_tokens) {
            let batch = assemble(&ids, rows);
            pooled.resize(batch.size() * dim, 0.0);
            self.backend.forward(&batch, &mut pooled)?;
            for (&row, vector) in batch.rows.iter().zip(pooled.chunks_exact(dim)) {
                vectors[row * dim..(row + 1) * dim].copy_from_slice(vector);
            }
        }
        l2_normalize(&mut vectors, dim);
        Ok(vectors)
    }
}

enum Weights {
    Safetensors(Safetensors),
    Onnx(PathBuf),
}

fn choose_weights(dir: &ModelDir, options: &Options) -> Result<Weights> {
    let safetensors = || Safetensors::open(&dir.path);
    match options.weights.as_deref().unwrap_or("auto") {
        "auto" if options.onnx_file.is_some() => Ok(Weights::Onnx(dir.onnx_file(options.onnx_file.as_deref())?)),
        "auto" => match safetensors()? {
            Some(st) => Ok(Weights::Safetensors(st)),
            None => Ok(Weights::Onnx(dir.onnx_file(None)?)),
        },
        "safetensors" => safetensors()?.map(Weights::Safetensors).ok_or_else(|| {
            Error::model_file(&dir.path, "has no model.safetensors (nor model.safetensors.index.json), which weights: 'safetensors' needs")
        }),
        "onnx" => Ok(Weights::Onnx(dir.onnx_file(options.onnx_file.as_deref())?)),
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

fn check_backend(requested: Option<&str>) -> Result<()> {
    match requested.unwrap_or("auto") {
        "auto" | "cpu" => Ok(()),
        "cuda" => Err(Error::Input(
            "backend 'cuda' is not available in this build yet; use 'cpu' or 'auto'".into(),
        )),
        "mlx" => Err(Error::Input(
            "backend 'mlx' needs an Apple Silicon build with MLX; use 'cpu' or 'auto' here".into(),
        )),
        other => Err(Error::Input(format!(
            "unknown backend '{other}' (expected 'auto', 'cpu', 'cuda' or 'mlx')"
        ))),
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
