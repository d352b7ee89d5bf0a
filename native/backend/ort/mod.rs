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
}

pub fn load(
    runtime: &Runtime,
    dir: &ModelDir,
    weights: &WeightsSource,
    threads: usize,
    max_length: usize,
    precision: Precision,
    want: Want,
) -> Result<Loaded> {
    let build = |provider| {
        build(
            runtime, dir, weights, threads, max_length, precision, provider,
        )
    };
    if precision == Precision::Int8 && want == Want::CudaOnly {
        return Err(Error::Input(
            "dtype 'int8' runs on the CPU only (ONNX Runtime's dynamically quantised MatMul has no CUDA kernel)".into(),
        ));
    }
    let want = if precision == Precision::Int8 {
        Want::CpuOnly
    } else {
        want
    };
    if want == Want::CpuOnly {
        return Ok(Loaded {
            backend: build(Provider::Cpu)?,
            cuda_unavailable: None,
        });
    }
    let reason = match cuda::missing_provider(runtime) {
        Some(reason) => reason,
        None => match build(Provider::Cuda) {
            Ok(backend) => {
                return Ok(Loaded {
                    backend,
                    cuda_unavailable: None,
                })
            }
            Err(e) => cuda::failed_to_start(&e.to_string()),
        },
    };
    if want == Want::CudaOnly {
        return Err(Error::Runtime(format!(
            "backend 'cuda' cannot be used: {reason}"
        )));
    }
    Ok(Loaded {
        backend: build(Provider::Cpu)?,
        cuda_unavailable: Some(reason),
    })
}

fn build(
    runtime: &Runtime,
    dir: &ModelDir,
    weights: &WeightsSource,
    threads: usize,
    max_length: usize,
    precision: Precision,
    provider: Provider,
) -> Result<OrtBackend> {
    let mut builder = session_builder(&runtime.env, threads)?;
    if provider == Provider::Cuda {
        builder = cuda::with_cuda(builder)?;
    }
    let (session, source) = match weights {
        WeightsSource::Safetensors(st) => (
            graph::session(st, &dir.config, dir.pooling, max_length, precision, &builder)?,
            st.source.clone(),
        ),
        WeightsSource::Onnx(file) if precision == Precision::Int8 => {
            return Err(Error::model_file(
                file,
                "is ONNX; dtype 'int8' quantises the graph built from model.safetensors (for an ONNX file, give an already quantised one with dtype 'float32')",
            ))
        }
        WeightsSource::Onnx(file) => (
            builder.commit_from_file(file).map_err(|e| {
                Error::model_file(file, format!("is not a usable ONNX model ({e})"))
            })?,
            file.clone(),
        ),
    };
    OrtBackend::new(session, &source, dir.pooling, dir.config.hidden(), provider)
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
