//! The ONNX Runtime graph built in memory from `model.safetensors`: no ONNX export needed,
//! and the same weights as every other backend.
mod bert;
mod emit;
mod nomic_bert;
mod spec;

use ort::session::builder::SessionBuilder;
use ort::session::Session;

use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::pooling::Pooling;
use crate::weights::Safetensors;

pub use emit::OUTPUT;

/// A session over the encoder in `weights`, pooling with `pooling`, for inputs up to `max_positions` tokens.
pub fn session(
    weights: &Safetensors,
    config: &ModelConfig,
    pooling: Pooling,
    max_positions: usize,
    builder: &SessionBuilder,
) -> Result<Session> {
    let encoder = match config {
        ModelConfig::Bert(c) => bert::load(weights, c)?,
        ModelConfig::NomicBert(c) => nomic_bert::load(weights, c)?,
    };
    let model = emit::model(&encoder, pooling, max_positions)?;
    drop(encoder);
    model.into_session(builder).map_err(|e| {
        Error::model_file(
            &weights.source,
            format!("gave a graph ONNX Runtime refused ({e})"),
        )
    })
}
