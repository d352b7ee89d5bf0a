//! The ONNX Runtime graph built in memory from `model.safetensors`: no ONNX export needed,
//! and the same weights as every other backend.
mod emit;
mod int8;
mod plumbing;

use ort::session::builder::SessionBuilder;
use ort::session::Session;

use std::path::Path;

use crate::arch::Encoder;
use crate::error::{Error, Result};
use crate::pooling::Pooling;
use crate::settings::Int8Scheme;

pub use emit::{Precision, OUTPUT};

/// How the graph computes: its precision, and with int8 the scheme.
#[derive(Debug, Clone, Copy)]
pub struct Numerics {
    pub precision: Precision,
    pub int8: Int8Scheme,
}

/// A session over `encoder` (from the weights `source`; its tensors are taken into the graph),
/// pooling with `pooling`, for inputs up to `max_positions` tokens.
pub fn session(
    encoder: &mut Encoder,
    source: &Path,
    pooling: Pooling,
    max_positions: usize,
    numerics: Numerics,
    builder: &SessionBuilder,
) -> Result<Session> {
    let model = emit::model(encoder, pooling, max_positions, false, numerics)?;
    into_session(model, source, builder)
}

/// Writes the graph, with `last_hidden_state` as a second output and no runtime-specific
/// fusions, as an ONNX file that other runtimes load (`Precision::Int8` uses ONNX Runtime's
/// contrib operators, so only ONNX Runtime runs it).
pub fn export(
    encoder: &mut Encoder,
    source: &Path,
    pooling: Pooling,
    max_positions: usize,
    numerics: Numerics,
    env: &ort::environment::Environment,
    file: &Path,
) -> Result<()> {
    let model = emit::model(encoder, pooling, max_positions, true, numerics)?;
    let builder = ort::session::Session::builder(env)?
        .with_optimization_level(ort::session::builder::GraphOptimizationLevel::Disable)?
        .with_optimized_model_path(file)?;
    into_session(model, source, &builder).map(drop)
}

fn into_session(
    model: ort::editor::Model,
    source: &Path,
    builder: &SessionBuilder,
) -> Result<Session> {
    model
        .into_session(builder)
        .map_err(|e| Error::model_file(source, format!("gave a graph ONNX Runtime refused ({e})")))
}
