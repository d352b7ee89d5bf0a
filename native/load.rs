//! Carries out `decide`: opens the weights, tries each backend in order, and keeps the reason
//! every passed-over or failed backend gives. A CPU graph built from safetensors starts from the
//! graph cache when it has the entry, and writes the entry when not.
use std::path::PathBuf;
use std::sync::Arc;

use crate::arch;
use crate::backend::ort::cache::{Cache, Fingerprint};
use crate::backend::ort::{
    self as ort_backend, runtime::Runtime, OrtBackend, Provider, SessionPlan,
};
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
    pub cache: CacheUse,
}

/// What the graph cache did for this model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheUse {
    /// Started from this entry.
    Hit(PathBuf),
    /// Wrote this entry, then started from it.
    Written(PathBuf),
    /// Not used, and why.
    Off(String),
}

impl CacheUse {
    pub fn name(&self) -> &'static str {
        match self {
            CacheUse::Hit(_) => "hit",
            CacheUse::Written(_) => "written",
            CacheUse::Off(_) => "off",
        }
    }
}

/// The weights, read from the snapshot when a backend first needs them (a cache hit never does),
/// and again when a backend that failed took their tensors.
struct LazyWeights<'a> {
    dir: &'a ModelDir,
    settings: &'a Settings,
    decision: &'a Decision,
    opened: Option<WeightsSource>,
}

impl LazyWeights<'_> {
    fn get(&mut self) -> Result<&mut WeightsSource> {
        if self.opened.as_ref().is_none_or(WeightsSource::spent) {
            self.opened = Some(open_weights(self.dir, self.settings, self.decision)?);
        }
        self.opened
            .as_mut()
            .ok_or_else(|| Error::Internal("weights not opened".into()))
    }
}

pub fn load(dir: &ModelDir, settings: &Settings, max_length: usize) -> Result<Loaded> {
    let snapshot = Snapshot {
        path: &dir.path,
        has_safetensors: Safetensors::present(&dir.path),
        buildable: dir.config.arch() != Arch::Other,
    };
    let decision = decide(settings, snapshot, Machine::this())?;
    let weights_path = weights_name(dir, settings, &decision)?;
    let mut weights = LazyWeights {
        dir,
        settings,
        decision: &decision,
        opened: None,
    };
    let mut reasons = decision.skipped.clone();
    let last = decision.attempts.len() - 1;
    for (i, attempt) in decision.attempts.iter().enumerate() {
        match start(dir, &mut weights, settings, max_length, *attempt) {
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

/// What `info().weights` names, without reading the weights.
fn weights_name(dir: &ModelDir, settings: &Settings, decision: &Decision) -> Result<PathBuf> {
    match decision.weights {
        Weights::Onnx => Ok(open_weights(dir, settings, decision)?.path().to_path_buf()),
        Weights::Safetensors => {
            dir.config.buildable(&dir.path.join("config.json"))?;
            Safetensors::files(&dir.path)?
                .map(|(source, _)| source)
                .ok_or_else(|| Error::model_file(&dir.path, "has no model.safetensors"))
        }
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

type Started = (Box<dyn Backend>, Option<&'static Runtime>, CacheUse);

fn start(
    dir: &ModelDir,
    weights: &mut LazyWeights,
    settings: &Settings,
    max_length: usize,
    attempt: Attempt,
) -> Result<Started> {
    let provider = match attempt.target {
        Target::Mlx => {
            let backend = start_mlx(dir, weights.get()?, settings, attempt.precision)?;
            return Ok((
                backend,
                None,
                CacheUse::Off("MLX reads model.safetensors".into()),
            ));
        }
        Target::Cuda => Provider::Cuda,
        Target::Cpu => Provider::Cpu,
    };
    let runtime = ort_backend::runtime::runtime(settings.ort_library.as_deref())?;
    let plan = SessionPlan {
        provider,
        precision: attempt.precision,
        threads: settings.threads,
        gpu_memory_limit: settings.gpu_memory_limit,
        int8: settings.int8_scheme,
    };
    let why_not = match (plan.precision, provider, &settings.cache_dir) {
        (None, _, _) => "an ONNX file runs as it is",
        (_, Provider::Cuda, _) => "only CPU graphs are cached",
        (_, _, None) => "turned off (cache: false or SEMANTIC_SEARCH_CACHE=off)",
        (Some(_), Provider::Cpu, Some(root)) => {
            let key = fingerprint(dir, settings, max_length, plan, runtime)?.key();
            let cache = Cache::new(root.clone());
            let (backend, used) =
                start_cached(&cache, &key, dir, weights, max_length, plan, runtime)?;
            return Ok((Box::new(backend), Some(runtime), used));
        }
    };
    let backend = ort_backend::load(runtime, dir, weights.get()?, max_length, plan)?;
    Ok((
        Box::new(backend),
        Some(runtime),
        CacheUse::Off(why_not.into()),
    ))
}

/// The CPU graph from the cache entry of `key`; without one, built, written to the cache and
/// started from it; when the cache cannot be written, built as without a cache.
#[allow(clippy::too_many_arguments)]
fn start_cached(
    cache: &Cache,
    key: &str,
    dir: &ModelDir,
    weights: &mut LazyWeights,
    max_length: usize,
    plan: SessionPlan,
    runtime: &'static Runtime,
) -> Result<(OrtBackend, CacheUse)> {
    if let Some(entry) = cache.lookup(key) {
        match ort_backend::load_cached(runtime, dir, &entry, plan.threads) {
            Ok(backend) => return Ok((backend, CacheUse::Hit(entry))),
            Err(_) => cache.discard(&entry),
        }
    }
    let written = cache.stage(key).and_then(|staged| {
        ort_backend::save(runtime, dir, weights.get()?, max_length, plan, &staged)?;
        staged.commit()
    });
    let problem = match written {
        // The session that wrote the entry had no pre-packed weights (see `save`); the model
        // starts from the entry, as every later start does.
        // An entry ONNX Runtime cannot start from here (as when onnxruntime-node created the
        // process's environment without shared thread pools) leaves the graph built in memory.
        Ok(entry) => match ort_backend::load_cached(runtime, dir, &entry, plan.threads) {
            Ok(backend) => return Ok((backend, CacheUse::Written(entry))),
            Err(e) => e,
        },
        Err(e) => e,
    };
    let backend = ort_backend::load(runtime, dir, weights.get()?, max_length, plan)?;
    let why = format!("could not be used: {problem}");
    Ok((backend, CacheUse::Off(why)))
}

/// Everything the optimised graph depends on: the weight files and config, the graph's
/// settings, ONNX Runtime's version and the CPU's features (an optimised graph may use kernels
/// only this CPU runs).
fn fingerprint(
    dir: &ModelDir,
    settings: &Settings,
    max_length: usize,
    plan: SessionPlan,
    runtime: &Runtime,
) -> Result<Fingerprint> {
    let mut f = Fingerprint::new();
    if let Some((source, files)) = Safetensors::files(&dir.path)? {
        for file in files.iter().chain([&source]) {
            f.add_file(file)?;
        }
    }
    f.add_file(&dir.path.join("config.json"))?;
    let precision = plan.precision.map_or("onnx", Precision::name);
    f.add("precision", precision.as_bytes());
    f.add("pooling", dir.pooling.name().as_bytes());
    f.add("max_length", max_length.to_string().as_bytes());
    f.add("attention", attention(dir, settings).name().as_bytes());
    f.add("ort", runtime.version.as_bytes());
    f.add("cpu", crate::cpu::features().as_bytes());
    if plan.precision == Some(Precision::Int8) {
        f.add("int8", plan.int8.name().as_bytes());
    }
    Ok(f)
}

#[cfg(mlx)]
fn start_mlx(
    dir: &ModelDir,
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
    let backend = mlx::MlxBackend::load(spec, dir.pooling, dtype)?;
    Ok(Box::new(backend))
}

#[cfg(not(mlx))]
fn start_mlx(
    _: &ModelDir,
    _: &mut WeightsSource,
    _: &Settings,
    _: Option<Precision>,
) -> Result<Box<dyn Backend>> {
    Err(Error::BackendUnavailable(
        "MLX is not part of this build".into(),
    ))
}
