//! The model's architecture and sizes, read from `config.json`.
use std::path::Path;

use serde::Deserialize;

use crate::arch::Mask;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Bert,
    NomicBert,
    Qwen2,
    Qwen3,
    /// A `model_type` this addon builds no graph for: it runs from the snapshot's ONNX file.
    Other,
}

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::Bert => "bert",
            Arch::NomicBert => "nomic_bert",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
            Arch::Other => "onnx",
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

/// `config.json` of a Qwen2 or Qwen3 model (Qodo-Embed-1, gte-Qwen2, Qwen3-Embedding).
#[derive(Debug, Clone, Deserialize)]
pub struct QwenConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: Option<usize>,
    /// Qwen3's head size, which is not `hidden_size / num_attention_heads`.
    pub head_dim: Option<usize>,
    pub max_position_embeddings: usize,
    #[serde(default = "default_rms_eps")]
    pub rms_norm_eps: f32,
    #[serde(default = "default_rotary_base")]
    pub rope_theta: f32,
    #[serde(default = "default_silu")]
    pub hidden_act: String,
    pub rope_scaling: Option<serde_json::Value>,
    /// Qwen3's q/k/v bias switch; Qwen2 always has them.
    pub attention_bias: Option<bool>,
    pub is_causal: Option<bool>,
    #[serde(default)]
    pub auto_map: std::collections::HashMap<String, serde_json::Value>,
    pub eos_token_id: Option<serde_json::Value>,
    #[serde(skip)]
    qwen3: bool,
}

impl QwenConfig {
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Qwen2 projects q, k and v with biases; Qwen3 only when `attention_bias` says so.
    pub fn qkv_bias(&self) -> bool {
        self.attention_bias.unwrap_or(!self.qwen3)
    }

    /// The end-of-sequence id (the first, when the config lists several).
    pub fn eos(&self) -> Option<u32> {
        match self.eos_token_id.as_ref()? {
            serde_json::Value::Array(ids) => ids.first()?.as_u64(),
            id => id.as_u64(),
        }
        .and_then(|id| u32::try_from(id).ok())
    }

    /// `is_causal` when the config says; else bidirectional for the gte remote code
    /// (`auto_map.AutoModel` = `modeling_qwen.Qwen2Model`: Qodo-Embed-1, gte-Qwen2), whose
    /// attention is bidirectional; else causal (Qwen3-Embedding is trained causal).
    pub fn attention(&self) -> Mask {
        let gte_code = !self.qwen3
            && self
                .auto_map
                .get("AutoModel")
                .and_then(|v| v.as_str())
                .is_some_and(|m| m.ends_with("modeling_qwen.Qwen2Model"));
        match self.is_causal {
            Some(true) => Mask::Causal,
            Some(false) => Mask::Bidirectional,
            None if gte_code => Mask::Bidirectional,
            None => Mask::Causal,
        }
    }
}

/// `config.json` of any other model: only what running its ONNX file needs.
#[derive(Debug, Clone, Deserialize)]
pub struct OtherConfig {
    /// `None` when the snapshot gives no `model_type` at all.
    pub model_type: Option<String>,
    pub hidden_size: Option<usize>,
    pub max_position_embeddings: Option<usize>,
}

/// Truncation of a model whose config names no position limit: BERT-sized, the common case.
pub const OTHER_DEFAULT_MAX_LENGTH: usize = 512;

/// Default truncation of the Qwen family when the snapshot names none or more: a CPU's attention
/// scores for 32768 tokens would take gigabytes.
pub const QWEN_DEFAULT_MAX_LENGTH: usize = 8192;

/// NomicBert's positions past this were never trained (no rotary scaling), so truncation stops here.
pub const NOMIC_MAX_TRAINED: usize = 2048;

#[derive(Debug, Clone)]
pub enum ModelConfig {
    Bert(BertConfig),
    NomicBert(NomicBertConfig),
    Qwen2(QwenConfig),
    Qwen3(QwenConfig),
    Other(OtherConfig),
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
        let config = ModelConfig::parse(path, text, kind.model_type.as_deref())?;
        config.check_sizes().map_err(malformed)?;
        Ok(config)
    }

    fn parse(path: &Path, text: &str, model_type: Option<&str>) -> Result<Self> {
        let malformed = |what: String| Error::model_file(path, what);
        match model_type {
            Some("bert") => serde_json::from_str(text)
                .map(ModelConfig::Bert)
                .map_err(|e| malformed(format!("is not a valid BERT config ({e})"))),
            Some("nomic_bert") => serde_json::from_str(text)
                .map(ModelConfig::NomicBert)
                .map_err(|e| malformed(format!("is not a valid NomicBert config ({e})"))),
            Some(kind @ ("qwen2" | "qwen3")) => serde_json::from_str(text)
                .map(|c: QwenConfig| {
                    let qwen3 = kind == "qwen3";
                    let c = QwenConfig { qwen3, ..c };
                    if qwen3 {
                        ModelConfig::Qwen3(c)
                    } else {
                        ModelConfig::Qwen2(c)
                    }
                })
                .map_err(|e| malformed(format!("is not a valid {kind} config ({e})"))),
            // Refused only if it must be built from model.safetensors: an ONNX file runs as it is.
            _ => serde_json::from_str(text)
                .map(ModelConfig::Other)
                .map_err(|e| malformed(format!("has malformed sizes ({e})"))),
        }
    }

    /// Sizes within what any real model has: a config that lies (a hidden size of 10^9) is
    /// refused here, before anything is allocated from it.
    fn check_sizes(&self) -> std::result::Result<(), String> {
        let (hidden, layers, heads, kv_heads, head_dim, inner, vocab, positions) = match self {
            ModelConfig::Bert(c) => (
                c.hidden_size,
                c.num_hidden_layers,
                c.num_attention_heads,
                c.num_attention_heads,
                c.hidden_size / c.num_attention_heads.max(1),
                c.intermediate_size,
                c.vocab_size,
                c.max_position_embeddings,
            ),
            ModelConfig::NomicBert(c) => (
                c.n_embd,
                c.n_layer,
                c.n_head,
                c.n_head,
                c.n_embd / c.n_head.max(1),
                c.n_inner.unwrap_or(4 * c.n_embd),
                c.vocab_size,
                c.n_positions,
            ),
            ModelConfig::Qwen2(c) | ModelConfig::Qwen3(c) => (
                c.hidden_size,
                c.num_hidden_layers,
                c.num_attention_heads,
                c.kv_heads(),
                c.head_dim(),
                c.intermediate_size,
                c.vocab_size,
                c.max_position_embeddings,
            ),
            ModelConfig::Other(c) => {
                let (hidden, positions) = (
                    c.hidden_size.unwrap_or(1),
                    c.max_position_embeddings.unwrap_or(1),
                );
                return within("hidden_size", hidden, MAX_HIDDEN).and(within(
                    "max_position_embeddings",
                    positions,
                    MAX_POSITIONS,
                ));
            }
        };
        within("the hidden size", hidden, MAX_HIDDEN)?;
        within("the number of layers", layers, 1024)?;
        within("the number of attention heads", heads, hidden)?;
        within("the number of key/value heads", kv_heads, heads)?;
        within("the head size", head_dim, 4096)?;
        within("the FFN size", inner, 16 * MAX_HIDDEN)?;
        within("the vocabulary size", vocab, 1 << 24)?;
        within("the number of positions", positions, MAX_POSITIONS)?;
        if heads % kv_heads != 0 {
            return Err(format!(
                "has {heads} attention heads, not a multiple of its {kv_heads} key/value heads"
            ));
        }
        let rotary = !matches!(self, ModelConfig::Bert(_));
        // the Qwen loaders read each projection's shape from heads x head_dim, which need not be hidden
        let qwen = matches!(self, ModelConfig::Qwen2(_) | ModelConfig::Qwen3(_));
        if (heads * head_dim != hidden && !qwen) || (rotary && head_dim % 2 == 1) {
            return Err(format!(
                "has {heads} heads of size {head_dim}, which do not fit its hidden size {hidden}"
            ));
        }
        Ok(())
    }

    /// Ok when the encoder can be built from `model.safetensors`; else an error saying what to use.
    pub fn buildable(&self, path: &Path) -> Result<()> {
        match self {
            ModelConfig::Other(c) => Err(Error::unsupported(
                path,
                format!(
                    "{}, which this addon cannot build from model.safetensors (supported: {SUPPORTED}); a snapshot of it with ONNX weights (onnx/model.onnx) runs as it is",
                    match &c.model_type {
                        Some(kind) => format!("has model_type \"{kind}\""),
                        None => "has no \"model_type\"".into(),
                    }
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The `model_type` as the snapshot names it.
    pub fn model_type(&self) -> &str {
        match self {
            ModelConfig::Other(c) => c.model_type.as_deref().unwrap_or("unknown"),
            known => known.arch().name(),
        }
    }

    pub fn arch(&self) -> Arch {
        match self {
            ModelConfig::Bert(_) => Arch::Bert,
            ModelConfig::NomicBert(_) => Arch::NomicBert,
            ModelConfig::Qwen2(_) => Arch::Qwen2,
            ModelConfig::Qwen3(_) => Arch::Qwen3,
            ModelConfig::Other(_) => Arch::Other,
        }
    }

    /// The hidden size; `None` when an unknown architecture's config does not say.
    pub fn hidden(&self) -> Option<usize> {
        match self {
            ModelConfig::Bert(c) => Some(c.hidden_size),
            ModelConfig::NomicBert(c) => Some(c.n_embd),
            ModelConfig::Qwen2(c) | ModelConfig::Qwen3(c) => Some(c.hidden_size),
            ModelConfig::Other(c) => c.hidden_size,
        }
    }

    /// The attention direction the snapshot asks for.
    pub fn attention(&self) -> Mask {
        match self {
            ModelConfig::Bert(_) | ModelConfig::NomicBert(_) | ModelConfig::Other(_) => {
                Mask::Bidirectional
            }
            ModelConfig::Qwen2(c) | ModelConfig::Qwen3(c) => c.attention(),
        }
    }

    /// The token that ends every sequence of a last-token model.
    pub fn eos(&self) -> Option<u32> {
        match self {
            ModelConfig::Qwen2(c) | ModelConfig::Qwen3(c) => c.eos(),
            _ => None,
        }
    }

    /// The truncation used when neither the caller nor a smaller `max_seq_length` sets one.
    pub fn default_max_length(&self) -> usize {
        match self {
            ModelConfig::Qwen2(_) | ModelConfig::Qwen3(_) => {
                self.max_trained_tokens().min(QWEN_DEFAULT_MAX_LENGTH)
            }
            _ => self.max_trained_tokens(),
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
            ModelConfig::Qwen2(c) | ModelConfig::Qwen3(c) => c.max_position_embeddings,
            ModelConfig::Other(c) => c
                .max_position_embeddings
                .unwrap_or(OTHER_DEFAULT_MAX_LENGTH),
        }
    }
}

const MAX_HIDDEN: usize = 1 << 16;
const MAX_POSITIONS: usize = 1 << 21;

/// `value` of `what` is from 1 to `max`.
fn within(what: &str, value: usize, max: usize) -> std::result::Result<(), String> {
    if (1..=max).contains(&value) {
        Ok(())
    } else {
        Err(format!("gives {what} as {value}, outside 1..={max}: not a model this addon can load (is config.json damaged?)"))
    }
}

const SUPPORTED: &str = "\"bert\", \"nomic_bert\", \"qwen2\", \"qwen3\"";

fn default_rms_eps() -> f32 {
    1e-6
}
fn default_silu() -> String {
    "silu".into()
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

    fn qwen(json: &str) -> QwenConfig {
        let base = r#""vocab_size":100,"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,
            "num_attention_heads":4,"num_key_value_heads":2,"max_position_embeddings":32768"#;
        let text = format!("{{{base},{json}}}");
        match ModelConfig::from_json(Path::new("config.json"), &text).unwrap() {
            ModelConfig::Qwen2(c) | ModelConfig::Qwen3(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_attention_rule_reads_the_snapshot() {
        let qodo = qwen(
            r#""model_type":"qwen2","auto_map":{"AutoModel":"Alibaba-NLP/gte-Qwen2-1.5B-instruct--modeling_qwen.Qwen2Model"}"#,
        );
        assert_eq!(qodo.attention(), Mask::Bidirectional);
        let gte = qwen(r#""model_type":"qwen2","is_causal":false"#);
        assert_eq!(gte.attention(), Mask::Bidirectional);
        let qwen3 = qwen(r#""model_type":"qwen3","head_dim":32"#);
        assert_eq!(qwen3.attention(), Mask::Causal);
        let plain_qwen2 = qwen(r#""model_type":"qwen2""#);
        assert_eq!(plain_qwen2.attention(), Mask::Causal);
        let told = qwen(
            r#""model_type":"qwen2","is_causal":true,"auto_map":{"AutoModel":"modeling_qwen.Qwen2Model"}"#,
        );
        assert_eq!(told.attention(), Mask::Causal);
    }

    #[test]
    fn qwen_sizes_biases_and_eos_come_from_the_config() {
        let qwen3 = qwen(r#""model_type":"qwen3","head_dim":32,"eos_token_id":[151643,151645]"#);
        assert_eq!(
            (qwen3.head_dim(), qwen3.kv_heads(), qwen3.qkv_bias()),
            (32, 2, false)
        );
        assert_eq!(qwen3.eos(), Some(151643));
        let qwen2 = qwen(r#""model_type":"qwen2","eos_token_id":151643"#);
        assert_eq!(
            (qwen2.head_dim(), qwen2.qkv_bias(), qwen2.eos()),
            (16, true, Some(151643))
        );
        let config = ModelConfig::Qwen2(qwen2);
        assert_eq!(config.default_max_length(), QWEN_DEFAULT_MAX_LENGTH);
    }

    #[test]
    fn unknown_model_type_is_named_in_the_error() {
        let config =
            ModelConfig::from_json(Path::new("config.json"), r#"{"model_type":"gpt2"}"#).unwrap();
        assert_eq!(config.model_type(), "gpt2");
        let err = config.buildable(Path::new("config.json")).unwrap_err();
        assert_eq!(err.code(), "ERR_UNSUPPORTED_MODEL");
        let err = err.to_string();
        assert!(err.contains("\"gpt2\""), "{err}");
    }

    #[test]
    fn sizes_that_lie_are_refused_before_anything_is_allocated() {
        let bert = |hidden: &str| {
            let json = format!(
                r#"{{"model_type":"bert","vocab_size":100,"hidden_size":{hidden},"num_hidden_layers":2,
                "num_attention_heads":4,"intermediate_size":64,"max_position_embeddings":512}}"#
            );
            ModelConfig::from_json(Path::new("config.json"), &json)
        };
        assert!(bert("32").is_ok());
        for lie in ["1000000000", "0", "30"] {
            let err = bert(lie).unwrap_err();
            assert_eq!(err.code(), "ERR_MODEL_FILE", "{lie}");
        }
        let qwen = r#"{"model_type":"qwen2","vocab_size":100,"hidden_size":64,"intermediate_size":128,
            "num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":3,"max_position_embeddings":32768}"#;
        let err = ModelConfig::from_json(Path::new("config.json"), qwen).unwrap_err();
        assert!(err.to_string().contains("key/value heads"), "{err}");
        let other = r#"{"model_type":"xlm-roberta","max_position_embeddings":100000000000}"#;
        assert!(ModelConfig::from_json(Path::new("config.json"), other).is_err());
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
