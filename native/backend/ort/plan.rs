//! How a session is built besides its weights: the provider, the graph's precision, threads.
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};

use crate::error::Result;
use crate::settings::{Int8Scheme, Precision};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Cpu,
    /// CUDA on the device of this index.
    Cuda(u32),
}

/// How a session is built besides its weights.
#[derive(Debug, Clone, Copy)]
pub struct SessionPlan {
    pub provider: Provider,
    /// The graph's precision; `None` for an ONNX file, which runs as it is.
    pub precision: Option<Precision>,
    /// Its own pool of this many threads; `None`: the process's shared pool.
    pub threads: Option<usize>,
    /// Cap of CUDA's memory arena, in bytes.
    pub gpu_memory_limit: Option<u64>,
    /// How an int8 graph multiplies.
    pub int8: Int8Scheme,
}

/// Session options shared by every ORT backend: all optimisations; the process's shared thread
/// pool (see `runtime`), or the session's own of `threads` when a caller asked for a count.
pub fn session_builder(
    env: &ort::environment::Environment,
    threads: Option<usize>,
) -> Result<SessionBuilder> {
    let builder = ort::session::Session::builder(env)?
        .with_optimization_level(GraphOptimizationLevel::Level3)?;
    Ok(match threads {
        Some(n) => builder
            .with_independent_thread_pool()?
            .with_intra_threads(n)?
            .with_inter_threads(1)?,
        None => builder,
    })
}
