//! ONNX Runtime backends: a session from an `.onnx` file, or from a graph built from
//! `model.safetensors`; on the CUDA execution provider when it is usable, else the CPU.
pub mod cuda;
pub mod graph;
pub mod runtime;
mod session;

pub use session::OrtBackend;

use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};

use crate::error::{Error, Result};
use crate::model_dir::ModelDir;
use crate::weights::WeightsSource;
use graph::Precision;
use runtime::Runtime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Cpu,
    Cuda,
}

/// Which providers `init` may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    CpuOnly,
    /// CUDA when usable, else the CPU with the reason kept.
    CudaFirst,
    /// CUDA or an error.
    CudaOnly,
}

/// The backend, and why CUDA is not used when it could have been.
pub struct Loaded {
    pub backend: OrtBackend,
    pub cuda_unavailable: Option<String>,
    /// The graph's precision; `None` for an ONNX file, which runs as it is.
    pub precision: Option<Precision>,
}

/// `requested`, else half precision on CUDA (tensor cores) and float32 on the CPU.
fn precision_on(provider: Provider, requested: Option<Precision>) -> Precision {
    requested.unwrap_or(match provider {
        Provider::Cuda => Precision::Float16,
        Provider::Cpu => Precision::Float32,
    })
}

pub fn load(
    runtime: &Runtime,
    dir: &ModelDir,
    weights: &WeightsSource,
    threads: usize,
    max_length: usize,
    precision: Option<Precision>,
    want: Want,
) -> Result<Loaded> {
    let build = |provider| {
        build(
            runtime, dir, weights, threads, max_length, precision, provider,
        )
    };
    let int8 = precision == Some(Precision::Int8);
    if int8 && want == Want::CudaOnly {
        return Err(Error::Input(
            "dtype 'int8' runs on the CPU only (ONNX Runtime's dynamically quantised MatMul has no CUDA kernel)".into(),
        ));
    }
    let want = if int8 { Want::CpuOnly } else { want };
    let loaded = |(backend, precision), cuda_unavailable| Loaded {
        backend,
        cuda_unavailable,
        precision,
    };
    if want == Want::CpuOnly {
        return Ok(loaded(build(Provider::Cpu)?, None));
    }
    let reason = match cuda::missing_provider(runtime) {
        Some(reason) => reason,
        None => match build(Provider::Cuda) {
            Ok(built) => return Ok(loaded(built, None)),
            Err(e) => cuda::failed_to_start(&e.to_string()),
        },
    };
    if want == Want::CudaOnly {
        return Err(Error::Runtime(format!(
            "backend 'cuda' cannot be used: {reason}"
        )));
    }
    Ok(loaded(build(Provider::Cpu)?, Some(reason)))
}

fn build(
    runtime: &Runtime,
    dir: &ModelDir,
    weights: &WeightsSource,
    threads: usize,
    max_length: usize,
    requested: Option<Precision>,
    provider: Provider,
) -> Result<(OrtBackend, Option<Precision>)> {
    let mut builder = session_builder(&runtime.env, threads)?;
    if provider == Provider::Cuda {
        builder = cuda::with_cuda(builder)?;
    }
    let (session, source, precision) = match weights {
        WeightsSource::Safetensors(st) => {
            let precision = precision_on(provider, requested);
            let session = graph::session(
                st,
                &dir.config,
                dir.pooling,
                max_length,
                precision,
                &builder,
            )?;
            (session, st.source.clone(), Some(precision))
        }
        WeightsSource::Onnx(file) if requested.is_some_and(|p| p != Precision::Float32) => {
            return Err(Error::model_file(
                file,
                "is ONNX, which runs as it is: dtype 'int8' and 'float16' convert the graph built from model.safetensors",
            ))
        }
        WeightsSource::Onnx(file) => (
            builder.commit_from_file(file).map_err(|e| {
                Error::model_file(file, format!("is not a usable ONNX model ({e})"))
            })?,
            file.clone(),
            None,
        ),
    };
    let backend = OrtBackend::new(session, &source, dir.pooling, dir.config.hidden(), provider)?;
    Ok((backend, precision))
}

/// Session options shared by every ORT backend: all optimisations, explicit thread counts
/// (ONNX Runtime's default of one thread per logical core oversubscribes a shared machine).
pub fn session_builder(
    env: &ort::environment::Environment,
    threads: usize,
) -> Result<SessionBuilder> {
    Ok(ort::session::Session::builder(env)?
        .with_optimization_level(GraphOptimizationLevel::Level3)?
        .with_intra_threads(threads)?
        .with_inter_threads(1)?)
}
