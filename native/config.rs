//! The model's architecture and sizes, read from `config.json`.
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Bert,
    NomicBert,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::Bert => "bert",
            Arch::NomicBert => "nomic_bert",
        }
    }
}

/// `config.json` of a BERT model (bert, bge, e5, arctic-embed, MiniLM).
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_bert_eps")]
    pub layer_norm_eps: f32,
    #[serde(default = "default_gelu")]
    pub hidden_act: String,
}

/// `config.json` of a NomicBert model (CodeRankEmbed, nomic-embed-text v1/v1.5).
#[derive(Debug, Clone, Deserialize)]
pub struct NomicBertConfig {
    pub vocab_size: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_inner: Option<usize>,
    pub n_positions: usize,
    pub max_trained_positions: Option<usize>,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_nomic_eps")]
    pub layer_norm_epsilon: f32,
    #[serde(default = "default_rotary_base")]
    pub rotary_emb_base: f32,
    #[serde(default = "one")]
    pub rotary_emb_fraction: f32,
    #[serde(default)]
    pub rotary_emb_interleaved: bool,
    #[serde(default)]
    pub prenorm: bool,
    #[serde(default)]
    pub qkv_proj_bias: bool,
    #[serde(default)]
    pub mlp_fc1_bias: bool,
    #[serde(default)]
    pub mlp_fc2_bias: bool,
    #[serde(default = "default_swiglu")]
    pub activation_function: String,
}

/// NomicBert's positions past this were never trained (no rotary scaling), so truncation stops here.
pub const NOMIC_MAX_TRAINED: usize = 2048;

#[derive(Debug, Clone)]
pub enum ModelConfig {
    Bert(BertConfig),
    NomicBert(NomicBertConfig),
}

impl ModelConfig {
    /// Parses `config.json` (`path` names it in errors); the error says which `model_type` or
    /// field is the problem.
    pub fn from_json(path: &Path, text: &str) -> Result<Self> {
        #[derive(Deserialize)]
        struct Kind {
            model_type: Option<String>,
        }
        let malformed = |what: String| Error::model_file(path, what);
        let kind: Kind = serde_json::from_str(text)
            .map_err(|e| malformed(format!("is not valid JSON ({e})")))?;
        match kind.model_type.as_deref() {
            Some("bert") => serde_json::from_str(text)
                .map(ModelConfig::Bert)
                .map_err(|e| malformed(format!("is not a valid BERT config ({e})"))),
            Some("nomic_bert") => serde_json::from_str(text)
                .map(ModelConfig::NomicBert)
                .map_err(|e| malformed(format!("is not a valid NomicBert config ({e})"))),
            Some(other) => Err(Error::unsupported(path, format!(
                "has model_type \"{other}\", which this addon does not support (supported: \"bert\", \"nomic_bert\")"
            ))),
            None => Err(malformed("has no \"model_type\" (expected \"bert\" or \"nomic_bert\")".into())),
        }
    }

    pub fn arch(&self) -> Arch {
        match self {
            ModelConfig::Bert(_) => Arch::Bert,
            ModelConfig::NomicBert(_) => Arch::NomicBert,
        }
    }

    pub fn hidden(&self) -> usize {
        match self {
            ModelConfig::Bert(c) => c.hidden_size,
            ModelConfig::NomicBert(c) => c.n_embd,
        }
    }

    /// The longest input the model was trained on, in tokens.
    pub fn max_trained_tokens(&self) -> usize {
        match self {
            ModelConfig::Bert(c) => c.max_position_embeddings,
            ModelConfig::NomicBert(c) => c
                .max_trained_positions
                .unwrap_or(c.n_positions)
                .min(c.n_positions)
                .min(NOMIC_MAX_TRAINED),
        }
    }
}

fn default_type_vocab() -> usize {
    2
}
fn default_bert_eps() -> f32 {
    1e-12
}
fn default_nomic_eps() -> f32 {
    1e-12
}
fn default_gelu() -> String {
    "gelu".into()
}
fn default_swiglu() -> String {
    "swiglu".into()
}
fn default_rotary_base() -> f32 {
    10_000.0
}
fn one() -> f32 {
    1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nomic_truncation_never_exceeds_trained_positions() {
        let json = r#"{"model_type":"nomic_bert","vocab_size":30528,"n_embd":768,"n_layer":12,
            "n_head":12,"n_positions":8192,"max_trained_positions":2048}"#;
        let config = ModelConfig::from_json(Path::new("config.json"), json).unwrap();
        assert_eq!(config.arch(), Arch::NomicBert);
        assert_eq!(config.max_trained_tokens(), 2048);
    }

    #[test]
    fn unknown_model_type_is_named_in_the_error() {
        let err = ModelConfig::from_json(Path::new("config.json"), r#"{"model_type":"gpt2"}"#)
            .unwrap_err();
        assert_eq!(err.code(), "ERR_UNSUPPORTED_MODEL");
        let err = err.to_string();
        assert!(err.contains("\"gpt2\""), "{err}");
    }

    #[test]
    fn missing_field_is_named_in_the_error() {
        let err = ModelConfig::from_json(
            Path::new("config.json"),
            r#"{"model_type":"bert","vocab_size":10}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("hidden_size"), "{err}");
    }
}
