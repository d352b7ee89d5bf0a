//! Opening ONNX Runtime sessions: from an `.onnx` file, from the graph built from
//! `model.safetensors` (in memory, or written to a cache entry), or from a cache entry.
use std::path::Path;
use std::sync::Arc;

use ort::session::builder::GraphOptimizationLevel;

use super::plan::{session_builder, Provider, SessionPlan};
use super::runtime::Runtime;
use super::session::OrtBackend;
use super::shared::SharedWeights;
use super::{cache, cuda, graph};
use crate::backend::{ModelFacts, WeightsSource};
use crate::error::{Error, Result};
use crate::settings::Precision;

/// A backend on `plan.provider`; on CUDA, an `Error::BackendUnavailable` with the reason when
/// the provider is missing or does not start.
pub fn load(
    runtime: &Runtime,
    facts: ModelFacts,
    weights: &mut WeightsSource,
    max_length: usize,
    plan: SessionPlan,
) -> Result<OrtBackend> {
    if let Provider::Cuda(device) = plan.provider {
        cuda::check_device(device)?;
        if let Some(reason) = cuda::missing_provider(runtime) {
            return Err(Error::BackendUnavailable(reason));
        }
    }
    build(runtime, facts, weights, max_length, plan).map_err(|e| match plan.provider {
        Provider::Cuda(_) => Error::BackendUnavailable(cuda::failed_to_start(&e.to_string())),
        Provider::Cpu => e,
    })
}

fn build(
    runtime: &Runtime,
    facts: ModelFacts,
    weights: &mut WeightsSource,
    max_length: usize,
    plan: SessionPlan,
) -> Result<OrtBackend> {
    let mut builder = session_builder(&runtime.env, plan.threads)?;
    if plan.provider == Provider::Cpu && holds_weights_twice(weights, plan.precision) {
        builder = builder.with_prepacking(false)?;
    }
    if let Provider::Cuda(device) = plan.provider {
        builder = cuda::with_cuda(builder, plan.gpu_memory_limit, device)?;
    }
    if plan.precision == Some(Precision::BFloat16) {
        return Err(Error::Internal("bfloat16 reached ONNX Runtime".into()));
    }
    let session = match (&mut *weights, plan.precision) {
        // The graph takes the tensors; a description still shared (never in practice) is copied.
        (WeightsSource::Encoder { encoder, source }, Some(precision)) => graph::session(
            Arc::make_mut(encoder),
            source,
            facts.pooling,
            max_length,
            graph::Numerics {
                precision,
                int8: plan.int8,
            },
            &builder,
        )?,
        (WeightsSource::Onnx(file), None) => builder
            .commit_from_file(&*file)
            .map_err(|e| Error::model_file(file, format!("is not a usable ONNX model ({e})")))?,
        _ => {
            return Err(Error::Internal(
                "a graph precision goes with model.safetensors, none with an ONNX file".into(),
            ))
        }
    };
    OrtBackend::new(
        session,
        weights.path(),
        facts.pooling,
        facts.hidden,
        plan.provider,
    )
}

/// Float weights above which a graph built without the cache is not pre-packed: ONNX Runtime
/// keeps every weight of an in-memory graph until all are packed, so the session would peak at
/// twice the weights, and packing gains little at these sizes (benchmark/README.md). A cache
/// entry pre-packs as it loads, weight by weight, and does not peak.
const PREPACK_LIMIT_BYTES: usize = 1 << 30;

fn holds_weights_twice(weights: &WeightsSource, precision: Option<Precision>) -> bool {
    let WeightsSource::Encoder { encoder, .. } = weights else {
        return false;
    };
    let bytes_per_weight = match precision {
        Some(Precision::Float32) => 4,
        Some(Precision::Float16) => 2,
        _ => return false,
    };
    encoder.parameters() * bytes_per_weight > PREPACK_LIMIT_BYTES
}

/// Builds the graph from `weights` and has ONNX Runtime write its optimised form into `entry`
/// (CPU only). Pre-packing is off in this session, which only writes: pre-packing while saving
/// costs more than the whole save and keeps a second copy of the weights resident. The model
/// then runs from the entry, pre-packed, as every later start does: the writing session itself
/// ran slower and gave slightly different int8 vectors (benchmark/README.md).
pub fn save(
    runtime: &Runtime,
    facts: ModelFacts,
    weights: &mut WeightsSource,
    max_length: usize,
    plan: SessionPlan,
    entry: &cache::Staged,
) -> Result<()> {
    let (WeightsSource::Encoder { encoder, source }, Some(precision)) = (weights, plan.precision)
    else {
        return Err(Error::Internal("only a graph built here is cached".into()));
    };
    // ONNX Runtime warns that the saved graph is specific to this CPU: the cache key holds its features
    let builder = session_builder(&runtime.env, plan.threads)?
        .with_log_level(ort::logging::LogLevel::Error)?
        .with_prepacking(false)?
        .with_optimized_model_path(entry.path(cache::MODEL))?
        .with_config_entry(
            "session.optimized_model_external_initializers_file_name",
            cache::DATA,
        )?
        .with_config_entry(
            "session.optimized_model_external_initializers_min_size_in_bytes",
            "1024",
        )?;
    let encoder = Arc::make_mut(encoder);
    let numerics = graph::Numerics {
        precision,
        int8: plan.int8,
    };
    graph::session(
        encoder,
        source,
        facts.pooling,
        max_length,
        numerics,
        &builder,
    )
    .map(drop)
}

/// Entries whose weights file is larger run without lanes, loaded by ONNX Runtime itself,
/// which maps and pre-packs one weight at a time: over one mapping of the whole file, every
/// page stays resident until all are packed, and these models' large products keep both
/// threads busy anyway (benchmark/README.md).
const SHARED_LIMIT_BYTES: u64 = 1 << 30;

/// A CPU backend from a cache entry: the graph is optimised already, so ONNX Runtime only
/// maps its weights and pre-packs them.
pub fn load_cached(
    runtime: &'static Runtime,
    facts: ModelFacts,
    entry: &Path,
    threads: Option<usize>,
) -> Result<OrtBackend> {
    let model = entry.join(cache::MODEL);
    let data = entry.join(cache::DATA);
    let shareable = std::fs::metadata(&data).is_ok_and(|m| m.len() <= SHARED_LIMIT_BYTES);
    let weights = match shareable {
        true => Some(Arc::new(SharedWeights::open(&model, &data)?)),
        false => None,
    };
    let session = open_entry(runtime, &model, weights.as_deref(), threads)?;
    let backend = OrtBackend::new(session, &model, facts.pooling, facts.hidden, Provider::Cpu)?;
    let Some(weights) = weights else {
        return Ok(backend);
    };
    let backend = match threads.unwrap_or(runtime.shared_threads) {
        0 | 1 => backend,
        // Opened by the first call with several micro-batches, so that a start that embeds
        // one query does not pre-pack the weights a second time.
        lanes => {
            let shared = Arc::clone(&weights);
            backend.with_lanes(lanes, move || {
                open_entry(runtime, &model, Some(&shared), Some(1))
            })
        }
    };
    Ok(backend.holding(weights))
}

/// A session of the entry's `model`, over the shared `weights` when given (their mapped pages
/// are dropped once it has pre-packed them), else over ONNX Runtime's own mapping.
fn open_entry(
    runtime: &Runtime,
    model: &Path,
    weights: Option<&SharedWeights>,
    threads: Option<usize>,
) -> Result<ort::session::Session> {
    let mut builder = session_builder(&runtime.env, threads)?
        .with_optimization_level(GraphOptimizationLevel::Disable)?;
    if let Some(weights) = weights {
        builder = weights.apply(builder)?;
    }
    let session = builder
        .commit_from_file(model)
        .map_err(|e| Error::model_file(model, format!("is not a usable cache entry ({e})")))?;
    weights.inspect(|w| w.release_pages());
    Ok(session)
}
