//! ONNX Runtime backends: a session from an `.onnx` file, or from a graph built from
//! `model.safetensors`, on the CPU execution provider.
pub mod graph;
pub mod runtime;
mod session;

pub use session::OrtBackend;

use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};

use crate::error::Result;

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
