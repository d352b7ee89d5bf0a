//! Carries out `decide`: opens the weights, tries each backend in order, and keeps the reason
//! every passed-over or failed backend gives.
use std::path::PathBuf;
use std::sync::Arc;

use crate::arch;
use crate::backend::ort::{self as ort_backend, runtime::Runtime, Provider, SessionPlan};
use crate::backend::Backend;
use crate::config::Arch;
use crate::decide::{decide, Attempt, Decision, Machine, Snapshot, Target, Weights};
use crate::engine::attention;
use crate::error::{Error, Result};
use crate::model_dir::ModelDir;
use crate::settings::{Precision, Settings};
use crate::weights::{Safetensors, WeightsSource};

/// The backend that started, and what the model's `info()` says about it.
pub struct Loaded {
    pub backend: Box<dyn Backend>,
    /// The file the weights came from.
    pub weights: PathBuf,
    pub precision: Option<Precision>,
    /// The ONNX Runtime in use; `None` when MLX runs the model.
    pub runtime: Option<&'static Runtime>,
    pub cuda_unavailable: Option<String>,
    pub mlx_unavailable: Option<String>,
}

pub fn load(dir: &ModelDir, settings: &Settings, max_length: usize) -> Result<Loaded> {
    let snapshot = Snapshot {
        path: &dir.path,
        has_safetensors: Safetensors::present(&dir.path),
        buildable: dir.config.arch() != Arch::Other,
    };
    let decision = decide(settings, snapshot, Machine::this())?;
    let mut weights = open_weights(dir, settings, &decision)?;
    let weights_path = weights.path().to_path_buf();
    let mut reasons = decision.skipped.clone();
    let last = decision.attempts.len() - 1;
    for (i, attempt) in decision.attempts.iter().enumerate() {
        if weights.spent() {
            // a backend that failed after building its graph took the tensors: read them again
            weights = open_weights(dir, settings, &decision)?;
        }
        match start(dir, &mut weights, settings, max_length, *attempt) {
            Ok((backend, runtime)) => {
                let reason = |target| {
                    reasons
                        .iter()
                        .find(|(t, _)| *t == target)
                        .map(|(_, r)| r.clone())
                };
                return Ok(Loaded {
                    backend,
                    precision: attempt.precision,
                    runtime,
                    cuda_unavailable: reason(Target::Cuda),
                    mlx_unavailable: reason(Target::Mlx),
                    weights: weights_path,
                });
            }
            Err(e) if i == last => return Err(final_error(attempt.target, &decision, e)),
            Err(e) => reasons.push((attempt.target, e.to_string())),
        }
    }
    Err(Error::Internal("no backend to try".into()))
}

/// A backend the caller named that does not start says so; `auto`'s last resort fails as it is.
fn final_error(target: Target, decision: &Decision, e: Error) -> Error {
    match (target, e) {
        (Target::Cuda, Error::BackendUnavailable(reason)) if decision.attempts.len() == 1 => {
            Error::BackendUnavailable(format!("backend 'cuda' cannot be used: {reason}"))
        }
        (_, e) => e,
    }
}

fn open_weights(dir: &ModelDir, settings: &Settings, decision: &Decision) -> Result<WeightsSource> {
    match decision.weights {
        Weights::Onnx => match dir.onnx_file(settings.onnx_file.as_deref()) {
            Ok(file) => Ok(WeightsSource::Onnx(file)),
            // an unknown architecture without ONNX weights: say that ONNX weights are what it needs
            Err(e) => Err(dir
                .config
                .buildable(&dir.path.join("config.json"))
                .err()
                .unwrap_or(e)),
        },
        Weights::Safetensors => {
            let st = arch::open_weights(&dir.path, &dir.config)?
                .ok_or_else(|| Error::model_file(&dir.path, "has no model.safetensors"))?;
            let encoder = arch::encoder(&st, &dir.config, attention(dir, settings))?;
            Ok(WeightsSource::Encoder {
                encoder: Arc::new(encoder),
                source: st.source,
            })
        }
    }
}

type Started = (Box<dyn Backend>, Option<&'static Runtime>);

fn start(
    dir: &ModelDir,
    weights: &mut WeightsSource,
    settings: &Settings,
    max_length: usize,
    attempt: Attempt,
) -> Result<Started> {
    let provider = match attempt.target {
        Target::Mlx => return start_mlx(dir, weights, settings, attempt.precision),
        Target::Cuda => Provider::Cuda,
        Target::Cpu => Provider::Cpu,
    };
    let runtime = ort_backend::runtime::runtime(settings.ort_library.as_deref())?;
    let plan = SessionPlan {
        provider,
        precision: attempt.precision,
        threads: settings.threads,
        gpu_memory_limit: settings.gpu_memory_limit,
    };
    let backend = ort_backend::load(runtime, dir, weights, max_length, plan)?;
    Ok((Box::new(backend), Some(runtime)))
}

#[cfg(mlx)]
fn start_mlx(
    dir: &ModelDir,
    weights: &WeightsSource,
    settings: &Settings,
    precision: Option<Precision>,
) -> Result<Started> {
    use crate::backend::mlx;
    let WeightsSource::Encoder { encoder, .. } = weights else {
        return Err(Error::Internal("MLX was chosen for ONNX weights".into()));
    };
    let dtype = mlx::dtype(precision.unwrap_or(Precision::Float32))?;
    if let Some(bytes) = settings.gpu_memory_limit {
        mlx::limit_memory(bytes)?;
    }
    let backend = mlx::MlxBackend::load(Arc::clone(encoder), dir.pooling, dtype)?;
    Ok((Box::new(backend), None))
}

#[cfg(not(mlx))]
fn start_mlx(
    _: &ModelDir,
    _: &WeightsSource,
    _: &Settings,
    _: Option<Precision>,
) -> Result<Started> {
    Err(Error::BackendUnavailable(
        "MLX is not part of this build".into(),
    ))
}
