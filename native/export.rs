//! The graph built from `model.safetensors`, written as an ONNX file for runtimes that need one.
use std::path::Path;

use crate::arch;
use crate::backend::ort::{graph, runtime};
use crate::engine::{attention, resolve_max_length};
use crate::error::{Error, Result};
use crate::model_dir::ModelDir;
use crate::settings::{Options, Precision, Settings};

/// Writes the model of `path`'s `model.safetensors` as an ONNX file (outputs
/// `sentence_embedding` and `last_hidden_state`): standard fp32 unless `options.dtype` asks for
/// another precision of the graph.
pub fn export_onnx(path: &Path, file: &Path, options: &Options) -> Result<()> {
    let settings = Settings::from_process(options)?;
    let dir = ModelDir::open(path)?;
    let max_length = resolve_max_length(&dir, settings.max_length)?;
    let weights = arch::open_weights(&dir.path, &dir.config)?
        .ok_or_else(|| Error::model_file(&dir.path, "has no model.safetensors to export"))?;
    let mut encoder = arch::encoder(&weights, &dir.config, attention(&dir, &settings))?;
    let runtime = runtime::runtime(settings.ort_library.as_deref())?;
    graph::export(
        &mut encoder,
        &weights.source,
        dir.pooling,
        max_length,
        graph::Numerics {
            precision: settings.dtype.unwrap_or(Precision::Float32),
            int8: settings.int8_scheme,
        },
        &runtime.env,
        file,
    )
}
