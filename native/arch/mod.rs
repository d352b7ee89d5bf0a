//! The ground floor: what each architecture's `config.json` says and how its checkpoint maps
//! onto an `Encoder` (the description every backend runs). One file per architecture, each
//! behind `Architecture`; `REGISTRY` lists them by `model_type`. Any other `model_type` runs
//! only from the snapshot's ONNX file (`OnnxOnly`).
mod architecture;
mod bert;
mod dense;
mod encoder;
mod gemma3;
mod head;
mod keys;
mod modernbert;
mod nomic_bert;
mod onnx_only;
mod qwen;
mod sizes;

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::model_dir::ModelDir;
use crate::weights::Safetensors;

pub use architecture::Architecture;
pub use encoder::*;
pub use head::{HeadPlan, Scoring};
pub use keys::Keys;
pub use sizes::Sizes;

type Parse = fn(&str) -> serde_json::Result<Box<dyn Architecture>>;

/// The architectures built from `model.safetensors`, by `model_type`.
const REGISTRY: &[(&str, Parse)] = &[
    ("bert", bert::parse),
    ("roberta", bert::parse_roberta),
    ("xlm-roberta", bert::parse_xlm_roberta),
    ("modernbert", modernbert::parse),
    ("gemma3_text", gemma3::parse),
    ("nomic_bert", nomic_bert::parse),
    ("qwen2", qwen::parse_qwen2),
    ("qwen3", qwen::parse_qwen3),
];

/// Parses `config.json` (`path` names it in errors); the error says which `model_type` or field
/// is the problem.
pub fn parse(path: &Path, text: &str) -> Result<Box<dyn Architecture>> {
    #[derive(Deserialize)]
    struct Kind {
        model_type: Option<String>,
    }
    let malformed = |what: String| Error::model_file(path, what);
    let kind: Kind =
        serde_json::from_str(text).map_err(|e| malformed(format!("is not valid JSON ({e})")))?;
    let entry = REGISTRY
        .iter()
        .find(|(name, _)| Some(*name) == kind.model_type.as_deref());
    let arch = match entry {
        Some((name, parse)) => parse(text).map_err(|e| {
            malformed(format!(
                "is not a valid {} config ({e})",
                display_name(name)
            ))
        })?,
        // Refused only if it must be built from model.safetensors: an ONNX file runs as it is.
        None => {
            onnx_only::parse(text).map_err(|e| malformed(format!("has malformed sizes ({e})")))?
        }
    };
    match arch.sizes() {
        Some(sizes) => sizes.check().map_err(malformed)?,
        None => onnx_only::check(arch.as_ref()).map_err(malformed)?,
    }
    Ok(arch)
}

fn display_name(model_type: &str) -> &str {
    match model_type {
        "bert" => "BERT",
        "nomic_bert" => "NomicBert",
        "xlm-roberta" => "XLM-RoBERTa",
        "modernbert" => "ModernBERT",
        other => other,
    }
}

/// Ok when the encoder can be built from `model.safetensors`; else an error saying what to use.
pub fn buildable(arch: &dyn Architecture, config: &Path) -> Result<()> {
    let Some(why) = arch.not_buildable() else {
        return Ok(());
    };
    let supported: Vec<String> = REGISTRY.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    Err(Error::unsupported(
        config,
        format!(
            "{why}, which this addon cannot build from model.safetensors (supported: {}); a snapshot of it with ONNX weights (onnx/model.onnx) runs as it is",
            supported.join(", ")
        ),
    ))
}

/// The snapshot's safetensors weights (`None` when it has none), opened with the key prefix of
/// `arch`'s checkpoints; an error saying to use ONNX weights for an architecture not built here.
fn open_weights(dir: &Path, arch: &dyn Architecture) -> Result<Option<Safetensors>> {
    buildable(arch, &dir.join("config.json"))?;
    let anchor = arch
        .anchor()
        .ok_or_else(|| Error::Internal("no key anchor for a buildable model".into()))?;
    Safetensors::open(dir, anchor)
}

/// The encoder described from `dir`'s weights, attending in `direction`, with the snapshot's
/// `Dense` modules after pooling, or a reranker's `head` there.
pub fn describe(
    dir: &ModelDir,
    arch: &dyn Architecture,
    direction: AttentionDirection,
    head: Option<&HeadPlan>,
) -> Result<(Encoder, Safetensors)> {
    let weights = open_weights(&dir.path, arch)?
        .ok_or_else(|| Error::model_file(&dir.path, "has no model.safetensors"))?;
    let mut encoder = arch.describe(&weights, direction)?;
    match head {
        Some(head) => head.attach(&mut encoder, &weights)?,
        None => encoder.dense = dense::read(&dir.dense, encoder.hidden)?,
    }
    Ok((encoder, weights))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Result<Box<dyn Architecture>> {
        parse(Path::new("config.json"), json)
    }

    #[test]
    fn nomic_truncation_never_exceeds_trained_positions() {
        let json = r#"{"model_type":"nomic_bert","vocab_size":30528,"n_embd":768,"n_layer":12,
            "n_head":12,"n_positions":8192,"max_trained_positions":2048}"#;
        let config = config(json).unwrap();
        assert_eq!(config.model_type(), "nomic_bert");
        assert_eq!(config.max_trained_tokens(), 2048);
    }

    #[test]
    fn unknown_model_type_is_named_in_the_error() {
        let config = config(r#"{"model_type":"gpt2"}"#).unwrap();
        assert_eq!(config.model_type(), "gpt2");
        let err = buildable(config.as_ref(), Path::new("config.json")).unwrap_err();
        assert_eq!(err.code(), "ERR_UNSUPPORTED_MODEL");
        let err = err.to_string();
        assert!(err.contains("\"gpt2\""), "{err}");
    }

    #[test]
    fn sizes_that_lie_are_refused_before_anything_is_allocated() {
        let bert = |hidden: &str| {
            config(&format!(
                r#"{{"model_type":"bert","vocab_size":100,"hidden_size":{hidden},"num_hidden_layers":2,
                "num_attention_heads":4,"intermediate_size":64,"max_position_embeddings":512}}"#
            ))
        };
        assert!(bert("32").is_ok());
        for lie in ["1000000000", "0", "30"] {
            let err = bert(lie).unwrap_err();
            assert_eq!(err.code(), "ERR_MODEL_FILE", "{lie}");
        }
        let qwen = r#"{"model_type":"qwen2","vocab_size":100,"hidden_size":64,"intermediate_size":128,
            "num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":3,"max_position_embeddings":32768}"#;
        let err = config(qwen).unwrap_err();
        assert!(err.to_string().contains("key/value heads"), "{err}");
        let other = r#"{"model_type":"deberta-v2","max_position_embeddings":100000000000}"#;
        assert!(config(other).is_err());
    }

    #[test]
    fn missing_field_is_named_in_the_error() {
        let err = config(r#"{"model_type":"bert","vocab_size":10}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("hidden_size"), "{err}");
    }
}
