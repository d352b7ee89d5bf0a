//! Carries out `decide`: tries each backend in order with the weights it needs, and keeps the
//! reason every passed-over or failed backend gives. How each backend starts is its own concern
//! (`backend::ort::start`, `backend::mlx`).
use std::path::PathBuf;
use std::sync::Arc;

use crate::arch;
use crate::backend::ort::start::{self as ort_start, CacheUse, Start};
use crate::backend::ort::{runtime::Runtime, Provider, SessionPlan};
use crate::backend::{Backend, LazyWeights, WeightsSource};
use crate::decide::{decide, Attempt, Decision, Machine, Snapshot, Target, Weights};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::settings::{Precision, Settings};
use crate::weights::Safetensors;

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
    pub cache: CacheUse,
}

pub fn load(model: &Model, settings: &Settings, max_length: usize) -> Result<Loaded> {
    let snapshot = Snapshot {
        path: &model.dir.path,
        has_safetensors: Safetensors::present(&model.dir.path),
        buildable: model.arch.anchor().is_some(),
    };
    let decision = decide(settings, snapshot, Machine::this())?;
    let weights_path = weights_name(model, settings, &decision)?;
    let mut weights = LazyWeights::new(|| open_weights(model, settings, &decision));
    let mut reasons = decision.skipped.clone();
    for (target, reason) in &reasons {
        log::info!(backend = target.name(), reason = reason.as_str(); "backend_skipped");
    }
    let last = decision.attempts.len() - 1;
    for (i, attempt) in decision.attempts.iter().enumerate() {
        match start(model, &mut weights, settings, max_length, *attempt) {
            Ok((backend, runtime, cache)) => {
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
                    cache,
                });
            }
            Err(e) if i == last => return Err(final_error(attempt.target, &decision, e)),
            Err(e) => {
                // `auto` going on to the next backend is a decision, not a fault
                log::info!(backend = attempt.target.name(), reason:% = e; "backend_failed");
                reasons.push((attempt.target, e.to_string()))
            }
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

/// What `info().weights` names, without reading the weights.
fn weights_name(model: &Model, settings: &Settings, decision: &Decision) -> Result<PathBuf> {
    match decision.weights {
        Weights::Onnx => Ok(open_weights(model, settings, decision)?
            .path()
            .to_path_buf()),
        Weights::Safetensors => {
            model.buildable()?;
            Safetensors::files(&model.dir.path)?
                .map(|(source, _)| source)
                .ok_or_else(|| Error::model_file(&model.dir.path, "has no model.safetensors"))
        }
    }
}

fn open_weights(model: &Model, settings: &Settings, decision: &Decision) -> Result<WeightsSource> {
    let dir = &model.dir;
    match decision.weights {
        Weights::Onnx if model.head.is_some() => Err(Error::unsupported(
            &dir.path,
            "is loaded as a reranker, which runs from model.safetensors (its head is built with the encoder); use weights: 'safetensors'",
        )),
        Weights::Onnx => match dir.onnx_file(settings.onnx_file.as_deref()) {
            Ok(file) => Ok(WeightsSource::Onnx(file)),
            // an unknown architecture without ONNX weights: say that ONNX weights are what it needs
            Err(e) => Err(model.buildable().err().unwrap_or(e)),
        },
        Weights::Safetensors => {
            let direction = model.attention(settings);
            let head = model.head.as_ref();
            let (encoder, st) = arch::describe(dir, model.arch.as_ref(), direction, head)?;
            Ok(WeightsSource::Encoder {
                encoder: Arc::new(encoder),
                source: st.source,
            })
        }
    }
}

type Started = (Box<dyn Backend>, Option<&'static Runtime>, CacheUse);

fn start(
    model: &Model,
    weights: &mut LazyWeights,
    settings: &Settings,
    max_length: usize,
    attempt: Attempt,
) -> Result<Started> {
    let provider = match attempt.target {
        Target::Mlx => {
            let backend = start_mlx(model, weights.get()?, settings, attempt.precision)?;
            let note = CacheUse::Off("MLX reads model.safetensors".into());
            return Ok((backend, None, note));
        }
        Target::Cuda => Provider::Cuda(settings.gpu_device.unwrap_or(0)),
        Target::Cpu => Provider::Cpu,
    };
    let runtime = crate::backend::ort::runtime::runtime(settings.ort_library.as_deref())?;
    let plan = SessionPlan {
        provider,
        precision: attempt.precision,
        threads: settings.threads,
        gpu_memory_limit: settings.gpu_memory_limit,
        int8: settings.int8_scheme,
    };
    let how = Start {
        runtime,
        snapshot: &model.dir.path,
        facts: model.facts(),
        attention: model.attention(settings),
        max_length,
        plan,
        head: model.head.as_ref().map(|h| h.describe()),
        cache_dir: settings.cache_dir.as_deref(),
    };
    let (backend, cache) = ort_start::start(&how, weights)?;
    Ok((Box::new(backend), Some(runtime), cache))
}

#[cfg(mlx)]
fn start_mlx(
    model: &Model,
    weights: &mut WeightsSource,
    settings: &Settings,
    precision: Option<Precision>,
) -> Result<Box<dyn Backend>> {
    use crate::backend::mlx;
    let WeightsSource::Encoder { encoder, .. } = weights else {
        return Err(Error::Internal("MLX was chosen for ONNX weights".into()));
    };
    let dtype = mlx::dtype(precision.unwrap_or(Precision::Float32))?;
    if let Some(bytes) = settings.gpu_memory_limit {
        mlx::limit_memory(bytes)?;
    }
    // MLX takes the tensors (a CPU fallback after it reads them again), as the graph builder does
    let spec = Arc::make_mut(encoder).take();
    let backend = mlx::MlxBackend::load(spec, model.pooling(), dtype)?;
    Ok(Box::new(backend))
}

#[cfg(not(mlx))]
fn start_mlx(
    _: &Model,
    _: &mut WeightsSource,
    _: &Settings,
    _: Option<Precision>,
) -> Result<Box<dyn Backend>> {
    Err(Error::BackendUnavailable(
        "MLX is not part of this build".into(),
    ))
}
