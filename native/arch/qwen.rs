//! The Qwen embedding family: Qwen2 (Qodo-Embed-1, gte-Qwen2: biased q/k/v) and Qwen3
//! (Qwen3-Embedding: per-head q/k RMSNorm, `head_dim` from the config). Pre-norm RMSNorm blocks,
//! grouped-query attention, rotary positions on whole heads, SwiGLU, a final norm.
use serde::Deserialize;

use super::architecture::Architecture;
use super::encoder::{
    Activation, Attention, AttentionDirection, Encoder, FeedForward, Layer, Norm, Residual, Rotary,
};
use super::keys::Keys;
use super::sizes::Sizes;
use crate::error::{Error, Result};
use crate::weights::Safetensors;

/// The key every Qwen checkpoint has; what stands before it is the checkpoint's prefix
/// (`model.` in gte-Qwen2, none in Qodo-Embed-1).
const ANCHOR: &str = "embed_tokens.weight";

/// Default truncation when the snapshot names none or more (the Qwen family, Gemma3): a CPU's attention scores for
/// 32768 tokens would take gigabytes.
pub const DEFAULT_MAX_LENGTH: usize = 8192;

/// `config.json` of a Qwen2 or Qwen3 model.
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
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f32,
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f32,
    #[serde(default = "default_act")]
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

fn default_eps() -> f32 {
    1e-6
}
fn default_rope_theta() -> f32 {
    10_000.0
}
fn default_act() -> String {
    "silu".into()
}

pub fn parse_qwen2(text: &str) -> serde_json::Result<Box<dyn Architecture>> {
    Ok(Box::new(serde_json::from_str::<QwenConfig>(text)?))
}

pub fn parse_qwen3(text: &str) -> serde_json::Result<Box<dyn Architecture>> {
    let config: QwenConfig = serde_json::from_str(text)?;
    Ok(Box::new(QwenConfig {
        qwen3: true,
        ..config
    }))
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
}

impl Architecture for QwenConfig {
    fn model_type(&self) -> &str {
        if self.qwen3 {
            "qwen3"
        } else {
            "qwen2"
        }
    }

    fn sizes(&self) -> Option<Sizes> {
        Some(Sizes {
            hidden: self.hidden_size,
            layers: self.num_hidden_layers,
            heads: self.num_attention_heads,
            kv_heads: self.kv_heads(),
            head_dim: self.head_dim(),
            inner: self.intermediate_size,
            vocab: self.vocab_size,
            positions: self.max_position_embeddings,
            rotary: true,
            free_head_dim: true,
        })
    }

    fn max_trained_tokens(&self) -> usize {
        self.max_position_embeddings
    }

    fn default_max_length(&self) -> usize {
        self.max_trained_tokens().min(DEFAULT_MAX_LENGTH)
    }

    /// `is_causal` when the config says; else bidirectional for the gte remote code
    /// (`auto_map.AutoModel` = `modeling_qwen.Qwen2Model`: Qodo-Embed-1, gte-Qwen2), whose
    /// attention is bidirectional; else causal (Qwen3-Embedding is trained causal).
    fn attention(&self) -> AttentionDirection {
        let gte_code = !self.qwen3
            && self
                .auto_map
                .get("AutoModel")
                .and_then(|v| v.as_str())
                .is_some_and(|m| m.ends_with("modeling_qwen.Qwen2Model"));
        match self.is_causal {
            Some(true) => AttentionDirection::Causal,
            Some(false) => AttentionDirection::Bidirectional,
            None if gte_code => AttentionDirection::Bidirectional,
            None => AttentionDirection::Causal,
        }
    }

    /// The end-of-sequence id (the first, when the config lists several).
    fn eos(&self) -> Option<u32> {
        match self.eos_token_id.as_ref()? {
            serde_json::Value::Array(ids) => ids.first()?.as_u64(),
            id => id.as_u64(),
        }
        .and_then(|id| u32::try_from(id).ok())
    }

    fn anchor(&self) -> Option<&'static str> {
        Some(ANCHOR)
    }

    fn describe(&self, w: &Safetensors, direction: AttentionDirection) -> Result<Encoder> {
        let c = self;
        c.check_supported(w)?;
        let (h, eps) = (c.hidden_size, c.rms_norm_eps);
        let keys = Keys::new(w);
        let layers = (0..c.num_hidden_layers)
            .map(|i| c.layer(&keys.pp("layers").pp(i)))
            .collect::<Result<_>>()?;
        Ok(Encoder {
            hidden: h,
            heads: c.num_attention_heads,
            kv_heads: c.kv_heads(),
            head_dim: c.head_dim(),
            word_embeddings: keys.tensor(ANCHOR, &[c.vocab_size, h])?,
            position_embeddings: None,
            embedding_norm: None,
            layers,
            final_norm: Some(keys.rms_norm("norm", h, eps)?),
            rotary: Some(Rotary::new(c.head_dim(), c.rope_theta)),
            residual: Residual::PreNorm,
            direction,
            attention_scale: Encoder::default_scale(c.head_dim()),
            window: None,
            dense: Vec::new(),
            type_shift: None,
        })
    }
}

impl QwenConfig {
    fn check_supported(&self, w: &Safetensors) -> Result<()> {
        let refuse = |what: String| {
            Err(Error::unsupported(
                &w.source,
                format!("config.json asks for {what}, which this addon does not support"),
            ))
        };
        if self.hidden_act != "silu" {
            return refuse(format!(
                "hidden_act \"{}\" (supported: \"silu\")",
                self.hidden_act
            ));
        }
        if self.rope_scaling.as_ref().is_some_and(|s| !s.is_null()) {
            return refuse("rope_scaling".into());
        }
        if self.kv_heads() == 0 || !self.num_attention_heads.is_multiple_of(self.kv_heads()) {
            return refuse(format!(
                "{} key/value heads for {} query heads (they must divide them)",
                self.kv_heads(),
                self.num_attention_heads
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return refuse(format!("an odd head_dim ({})", self.head_dim()));
        }
        Ok(())
    }

    fn layer(&self, keys: &Keys) -> Result<Layer> {
        let (h, i, eps, d) = (
            self.hidden_size,
            self.intermediate_size,
            self.rms_norm_eps,
            self.head_dim(),
        );
        let (q_out, kv_out) = (self.num_attention_heads * d, self.kv_heads() * d);
        let bias = self.qkv_bias();
        let (attn, mlp) = (keys.pp("self_attn"), keys.pp("mlp"));
        // Qwen3 normalises each head of q and of k
        let head_norm = |name: &str| -> Result<Option<Norm>> {
            self.qwen3.then(|| attn.rms_norm(name, d, eps)).transpose()
        };
        Ok(Layer {
            attention: Attention {
                q: attn.linear_b("q_proj", q_out, h, bias)?,
                k: attn.linear_b("k_proj", kv_out, h, bias)?,
                v: attn.linear_b("v_proj", kv_out, h, bias)?,
                out: attn.linear_no_bias("o_proj", h, q_out)?,
                q_norm: head_norm("q_norm")?,
                k_norm: head_norm("k_norm")?,
            },
            norm1: Some(keys.rms_norm("input_layernorm", h, eps)?),
            ffn: FeedForward::Gated {
                act: Activation::Silu,
                up: mlp.linear_no_bias("up_proj", i, h)?,
                gate: mlp.linear_no_bias("gate_proj", i, h)?,
                down: mlp.linear_no_bias("down_proj", h, i)?,
            },
            norm2: keys.rms_norm("post_attention_layernorm", h, eps)?,
            post_attention_norm: None,
            post_ffn_norm: None,
            sliding: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qwen(json: &str) -> QwenConfig {
        let base = r#""vocab_size":100,"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,
            "num_attention_heads":4,"num_key_value_heads":2,"max_position_embeddings":32768"#;
        let text = format!("{{{base},{json}}}");
        let config: QwenConfig = serde_json::from_str(&text).unwrap();
        let config = QwenConfig {
            qwen3: json.contains(r#""model_type":"qwen3""#),
            ..config
        };
        config.sizes().unwrap().check().unwrap();
        config
    }

    #[test]
    fn the_attention_rule_reads_the_snapshot() {
        let qodo = qwen(
            r#""model_type":"qwen2","auto_map":{"AutoModel":"Alibaba-NLP/gte-Qwen2-1.5B-instruct--modeling_qwen.Qwen2Model"}"#,
        );
        assert_eq!(qodo.attention(), AttentionDirection::Bidirectional);
        let gte = qwen(r#""model_type":"qwen2","is_causal":false"#);
        assert_eq!(gte.attention(), AttentionDirection::Bidirectional);
        let qwen3 = qwen(r#""model_type":"qwen3","head_dim":32"#);
        assert_eq!(qwen3.attention(), AttentionDirection::Causal);
        let plain_qwen2 = qwen(r#""model_type":"qwen2""#);
        assert_eq!(plain_qwen2.attention(), AttentionDirection::Causal);
        let told = qwen(
            r#""model_type":"qwen2","is_causal":true,"auto_map":{"AutoModel":"modeling_qwen.Qwen2Model"}"#,
        );
        assert_eq!(told.attention(), AttentionDirection::Causal);
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
        assert_eq!(qwen2.default_max_length(), DEFAULT_MAX_LENGTH);
    }
}
