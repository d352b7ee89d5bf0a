//! The graph built from `model.safetensors`, written as an ONNX file for runtimes that need one.
use std::path::Path;

use crate::arch;
use crate::backend::ort::graph::{self, Outputs};
use crate::backend::ort::runtime;
use crate::decide::{decide, Machine, Snapshot};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::settings::{BackendKind, Options, Precision, Settings, WeightsKind};
use crate::weights::Safetensors;

/// Writes the model of `path`'s `model.safetensors` as an ONNX file (outputs
/// `sentence_embedding` and `last_hidden_state`): standard fp32 unless `options.dtype` asks for
/// another precision of the graph. The precision is decided as `init` decides it for ONNX
/// Runtime on the CPU, so a dtype the CPU graph cannot take (bfloat16) is refused, not ignored.
pub fn export_onnx(path: &Path, file: &Path, options: &Options) -> Result<()> {
    export(Model::open(path)?, file, options, Outputs::Embeddings)
}

/// Writes the reranker of `path` as an ONNX file whose output `logits` (`[batch, 1]`) is each
/// pair's raw score, as transformers' export of a `*ForSequenceClassification` names it (inputs
/// `input_ids`, `attention_mask`, and `token_type_ids` where the model reads them).
pub fn export_reranker_onnx(path: &Path, file: &Path, options: &Options) -> Result<()> {
    export(Model::open_reranker(path)?, file, options, Outputs::Logits)
}

fn export(model: Model, file: &Path, options: &Options, outputs: Outputs) -> Result<()> {
    let settings = Settings::from_process(options)?;
    let max_length = model.max_length(settings.max_length)?;
    let precision = export_precision(&model, &settings)?;
    let direction = model.attention(&settings);
    let head = model.head.as_ref();
    let (mut encoder, weights) = arch::describe(&model.dir, model.arch.as_ref(), direction, head)?;
    let runtime = runtime::runtime(settings.ort_library.as_deref())?;
    let export = graph::Export {
        pooling: model.pooling(),
        max_positions: max_length,
        numerics: graph::Numerics {
            precision,
            int8: settings.int8_scheme,
        },
        outputs,
    };
    graph::export(&mut encoder, &weights.source, export, &runtime.env, file)
}

fn export_precision(model: &Model, settings: &Settings) -> Result<Precision> {
    model.buildable()?;
    let has_safetensors = Safetensors::present(&model.dir.path);
    if !has_safetensors {
        return Err(Error::model_file(
            &model.dir.path,
            "has no model.safetensors to export",
        ));
    }
    let cpu = Settings {
        backend: BackendKind::Cpu,
        weights: WeightsKind::Safetensors,
        onnx_file: None,
        ..settings.clone()
    };
    let snapshot = Snapshot {
        path: &model.dir.path,
        has_safetensors,
        buildable: true,
    };
    let machine = Machine {
        mlx_built: false,
        mlx_default: false,
    };
    let decision = decide(&cpu, snapshot, machine)?;
    Ok(decision
        .attempts
        .first()
        .and_then(|a| a.precision)
        .unwrap_or(Precision::Float32))
}
