//! The ONNX Runtime graph built in memory from `model.safetensors`: no ONNX export needed,
//! and the same weights as every other backend.
mod activation;
mod attention;
mod emit;
mod int8;
mod masks;
mod norms;
mod plumbing;
mod pool;
mod rope;
pub mod rules;

use ort::session::builder::SessionBuilder;
use ort::session::Session;

use std::path::Path;

use crate::arch::Encoder;
use crate::error::{Error, Result};
use crate::pooling::Pooling;

pub use emit::Outputs;
pub use plumbing::OUTPUT;
pub use rules::Numerics;

/// A session over `encoder` (from the weights `source`; its tensors are taken into the graph),
/// pooling with `pooling` (not normalising), for inputs up to `max_positions` tokens.
pub fn session(
    encoder: &mut Encoder,
    source: &Path,
    pooling: Pooling,
    max_positions: usize,
    numerics: Numerics,
    builder: &SessionBuilder,
) -> Result<Session> {
    let model = emit::model(encoder, pooling, max_positions, Outputs::Session, numerics)?;
    into_session(model, source, builder)
}

/// What an exported file holds besides the weights.
pub struct Export {
    pub pooling: Pooling,
    pub max_positions: usize,
    pub numerics: Numerics,
    /// `Embeddings` or `Logits`.
    pub outputs: Outputs,
}

/// Writes the graph as `export` says, with no runtime-specific fusions, as an ONNX file that
/// other runtimes load (`Precision::Int8` uses ONNX Runtime's contrib operators, so only ONNX
/// Runtime runs it).
pub fn export(
    encoder: &mut Encoder,
    source: &Path,
    export: Export,
    env: &ort::environment::Environment,
    file: &Path,
) -> Result<()> {
    let model = emit::model(
        encoder,
        export.pooling,
        export.max_positions,
        export.outputs,
        export.numerics,
    )?;
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

/// A one-node graph (`y = x`, float32 vectors): what a provider must run to count as usable.
pub fn identity_model() -> Result<ort::editor::Model> {
    let vector = |name: &str| plumbing::float_outlet(name, &[""], None);
    let mut b = plumbing::Builder::new(vec![vector("x")], false)?;
    b.identity("x", "y")?;
    b.finish(vec![vector("y")])
}
