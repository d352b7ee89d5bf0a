//! Opening ONNX Runtime sessions: from an `.onnx` file, from the graph built from
//! `model.safetensors` (in memory, or written to a cache entry), or from a cache entry.
use std::path::Path;
use std::sync::Arc;

use ort::session::builder::GraphOptimizationLevel;

use super::plan::{session_builder, Provider, SessionPlan};
use super::runtime::Runtime;
use super::session::OrtBackend;
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

/// A cache entry is written with its weights packed when they are at most 1 GB.
fn packs_when_saved(encoder: &crate::arch::Encoder, precision: Precision) -> bool {
    let bytes_per_weight = match precision {
        Precision::Float32 => 4,
        Precision::Float16 | Precision::BFloat16 => 2,
        Precision::Int8 => 1,
    };
    encoder.parameters() * bytes_per_weight <= PREPACK_LIMIT_BYTES
}

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
/// (CPU only), with every weight also as ONNX Runtime pre-packs it for this CPU's kernels
/// (`session.save_external_prepacked_constant_initializers`): a start from the entry maps the
/// packed weights from the file and packs nothing (benchmark/README.md has the figures). The
/// entry's key holds the CPU's features, on which the packed layouts depend. A graph of more
/// than 1 GB of weights is written unpacked: packing it here would hold the graph and its packed
/// copy at once, and a start from it packs weight by weight. Returns whether it packed.
pub fn save(
    runtime: &Runtime,
    facts: ModelFacts,
    weights: &mut WeightsSource,
    max_length: usize,
    plan: SessionPlan,
    entry: &cache::Staged,
) -> Result<bool> {
    let (WeightsSource::Encoder { encoder, source }, Some(precision)) = (weights, plan.precision)
    else {
        return Err(Error::Internal("only a graph built here is cached".into()));
    };
    let pack = packs_when_saved(encoder, precision);
    // ONNX Runtime warns that the saved graph is specific to this CPU: the cache key holds its features
    let builder = session_builder(&runtime.env, plan.threads)?
        .with_log_level(ort::logging::LogLevel::Error)?
        .with_prepacking(pack)?
        .with_optimized_model_path(entry.path(cache::MODEL))?
        .with_config_entry(
            "session.optimized_model_external_initializers_file_name",
            cache::DATA,
        )?
        .with_config_entry(
            "session.optimized_model_external_initializers_min_size_in_bytes",
            "1024",
        )?
        .with_config_entry(
            "session.save_external_prepacked_constant_initializers",
            if pack { "1" } else { "0" },
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
    .map(|_| pack)
}

/// Entries whose weights file (the weights and their packed copies) is larger run without
/// lanes: these models' large products keep both threads busy anyway (benchmark/README.md).
const LANES_LIMIT_BYTES: u64 = 2 << 30;

/// A CPU backend from a cache entry: the graph is optimised and its weights packed already, so
/// ONNX Runtime maps them from the file; every session of the entry (the lanes') maps the same
/// file, whose pages the system holds once and may drop and read again.
pub fn load_cached(
    runtime: &'static Runtime,
    facts: ModelFacts,
    entry: &Path,
    threads: Option<usize>,
) -> Result<OrtBackend> {
    let model = entry.join(cache::MODEL);
    let data = entry.join(cache::DATA);
    let session = open_entry(runtime, &model, threads)?;
    let backend = OrtBackend::new(session, &model, facts.pooling, facts.hidden, Provider::Cpu)?;
    // lanes' sessions map the packed weights; unpacked, each would pack its own copy
    let small = cache::packed(entry)
        && std::fs::metadata(&data).is_ok_and(|m| m.len() <= LANES_LIMIT_BYTES);
    Ok(match threads.unwrap_or(runtime.shared_threads) {
        0 | 1 => backend,
        _ if !small => backend,
        // opened by the first call with several micro-batches
        lanes => backend.with_lanes(lanes, move || open_entry(runtime, &model, Some(1))),
    })
}

/// A session of the entry's `model`.
fn open_entry(
    runtime: &Runtime,
    model: &Path,
    threads: Option<usize>,
) -> Result<ort::session::Session> {
    session_builder(&runtime.env, threads)?
        .with_optimization_level(GraphOptimizationLevel::Disable)?
        .commit_from_file(model)
        .map_err(|e| Error::model_file(model, format!("is not a usable cache entry ({e})")))
}
