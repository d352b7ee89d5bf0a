//! Gemma3 text models as encoders (EmbeddingGemma: `use_bidirectional_attention`): Gemma's
//! RMSNorm (`1 + weight`), four norms per block, per-head q/k norms, grouped-query attention
//! scaled by `query_pre_attn_scalar^-1/2`, embeddings scaled by sqrt(hidden), a gated GELU (tanh)
//! MLP, and `layer_types` of sliding and full attention with a rotary base each. A sliding
//! layer's window, as transformers applies it: bidirectional, a token sees |i - j| <=
//! `sliding_window / 2`; causal, the `sliding_window - 1` tokens before it.
use serde::Deserialize;

use super::architecture::Architecture;
use super::encoder::{
    Activation, Attention, AttentionDirection, Encoder, FeedForward, Layer, Residual, Rotary,
};
use super::keys::Keys;
use super::qwen::DEFAULT_MAX_LENGTH;
use super::sizes::Sizes;
use crate::error::{Error, Result};
use crate::weights::Safetensors;

const ANCHOR: &str = "embed_tokens.weight";

/// `config.json` of a Gemma3 text model.
#[derive(Debug, Clone, Deserialize)]
pub struct Gemma3Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f32,
    #[serde(default = "default_theta")]
    pub rope_theta: f32,
    #[serde(default = "default_local_theta")]
    pub rope_local_base_freq: f32,
    pub query_pre_attn_scalar: f32,
    pub sliding_window: Option<usize>,
    pub layer_types: Option<Vec<String>>,
    #[serde(default = "six")]
    pub sliding_window_pattern: usize,
    #[serde(default)]
    pub use_bidirectional_attention: bool,
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default = "default_act")]
    pub hidden_activation: String,
    pub rope_scaling: Option<serde_json::Value>,
    pub attn_logit_softcapping: Option<serde_json::Value>,
    pub final_logit_softcapping: Option<serde_json::Value>,
}

fn default_eps() -> f32 {
    1e-6
}
fn default_theta() -> f32 {
    1_000_000.0
}
fn default_local_theta() -> f32 {
    10_000.0
}
fn six() -> usize {
    6
}
fn default_act() -> String {
    "gelu_pytorch_tanh".into()
}

pub fn parse(text: &str) -> serde_json::Result<Box<dyn Architecture>> {
    Ok(Box::new(serde_json::from_str::<Gemma3Config>(text)?))
}

impl Gemma3Config {
    /// Whether each layer attends within the sliding window: `layer_types`, else transformers'
    /// default pattern (each `sliding_window_pattern`-th layer full).
    fn sliding(&self) -> Vec<bool> {
        match &self.layer_types {
            Some(types) => types.iter().map(|t| t == "sliding_attention").collect(),
            None => (0..self.num_hidden_layers)
                .map(|i| !(i + 1).is_multiple_of(self.sliding_window_pattern.max(1)))
                .collect(),
        }
    }

    /// How far a sliding layer's token sees, on each side it attends to.
    fn window(&self) -> Option<usize> {
        let w = self.sliding_window?;
        Some(if self.use_bidirectional_attention {
            w / 2
        } else {
            w.saturating_sub(1)
        })
    }

    fn layer(&self, keys: &Keys, sliding: bool, act: Activation) -> Result<Layer> {
        let (h, i, eps, d) = (
            self.hidden_size,
            self.intermediate_size,
            self.rms_norm_eps,
            self.head_dim,
        );
        let (q_out, kv_out) = (self.num_attention_heads * d, self.num_key_value_heads * d);
        let bias = self.attention_bias;
        let (attn, mlp) = (keys.pp("self_attn"), keys.pp("mlp"));
        Ok(Layer {
            attention: Attention {
                q: attn.linear_b("q_proj", q_out, h, bias)?,
                k: attn.linear_b("k_proj", kv_out, h, bias)?,
                v: attn.linear_b("v_proj", kv_out, h, bias)?,
                out: attn.linear_b("o_proj", h, q_out, bias)?,
                q_norm: Some(attn.gemma_rms_norm("q_norm", d, eps)?),
                k_norm: Some(attn.gemma_rms_norm("k_norm", d, eps)?),
            },
            norm1: Some(keys.gemma_rms_norm("input_layernorm", h, eps)?),
            ffn: FeedForward::Gated {
                gate: mlp.linear_no_bias("gate_proj", i, h)?,
                up: mlp.linear_no_bias("up_proj", i, h)?,
                act,
                down: mlp.linear_no_bias("down_proj", h, i)?,
            },
            norm2: keys.gemma_rms_norm("pre_feedforward_layernorm", h, eps)?,
            post_attention_norm: Some(keys.gemma_rms_norm("post_attention_layernorm", h, eps)?),
            post_ffn_norm: Some(keys.gemma_rms_norm("post_feedforward_layernorm", h, eps)?),
            sliding,
        })
    }
}

/// A softcapping value other than none.
fn set(value: &Option<serde_json::Value>) -> bool {
    value.as_ref().is_some_and(|v| !v.is_null())
}

impl Architecture for Gemma3Config {
    fn model_type(&self) -> &str {
        "gemma3_text"
    }

    fn sizes(&self) -> Option<Sizes> {
        Some(Sizes {
            hidden: self.hidden_size,
            layers: self.num_hidden_layers,
            heads: self.num_attention_heads,
            kv_heads: self.num_key_value_heads,
            head_dim: self.head_dim,
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

    fn attention(&self) -> AttentionDirection {
        match self.use_bidirectional_attention {
            true => AttentionDirection::Bidirectional,
            false => AttentionDirection::Causal,
        }
    }

    fn not_buildable(&self) -> Option<String> {
        let named = [
            ("rope_scaling", &self.rope_scaling),
            ("attn_logit_softcapping", &self.attn_logit_softcapping),
            ("final_logit_softcapping", &self.final_logit_softcapping),
        ];
        if let Some((field, _)) = named.iter().find(|(_, value)| set(value)) {
            return Some(format!("asks for {field} (built here: null)"));
        }
        if Activation::from_hf(&self.hidden_activation).is_none() {
            return Some(format!(
                "asks for hidden_activation \"{}\" (built here: \"gelu_pytorch_tanh\", \"gelu\", \"silu\", \"relu\")",
                self.hidden_activation
            ));
        }
        if self.sliding().len() != self.num_hidden_layers {
            return Some("gives layer_types of another length than num_hidden_layers".into());
        }
        if self.sliding().contains(&true) && self.sliding_window.is_none() {
            return Some("has sliding layers but no sliding_window".into());
        }
        let known = ["sliding_attention", "full_attention"];
        if let Some(other) = self
            .layer_types
            .iter()
            .flatten()
            .find(|t| !known.contains(&t.as_str()))
        {
            return Some(format!(
                "asks for layer type \"{other}\" (built here: {known:?})"
            ));
        }
        None
    }

    fn anchor(&self) -> Option<&'static str> {
        Some(ANCHOR)
    }

    fn describe(&self, w: &Safetensors, direction: AttentionDirection) -> Result<Encoder> {
        let c = self;
        let act = Activation::from_hf(&c.hidden_activation).ok_or_else(|| {
            Error::unsupported(
                &w.source,
                format!("hidden_activation {}", c.hidden_activation),
            )
        })?;
        let h = c.hidden_size;
        let keys = Keys::new(w);
        let layers = c
            .sliding()
            .into_iter()
            .enumerate()
            .map(|(i, sliding)| c.layer(&keys.pp("layers").pp(i), sliding, act))
            .collect::<Result<_>>()?;
        // transformers scales the looked-up rows by sqrt(hidden): folded into the table
        let mut word_embeddings = keys.tensor(ANCHOR, &[c.vocab_size, h])?;
        let scale = (h as f32).sqrt();
        word_embeddings
            .f32_mut()
            .iter_mut()
            .for_each(|v| *v *= scale);
        Ok(Encoder {
            hidden: h,
            heads: c.num_attention_heads,
            kv_heads: c.num_key_value_heads,
            head_dim: c.head_dim,
            word_embeddings,
            position_embeddings: None,
            embedding_norm: None,
            layers,
            final_norm: Some(keys.gemma_rms_norm("norm", h, c.rms_norm_eps)?),
            rotary: Some(Rotary {
                dims: c.head_dim,
                base: c.rope_theta,
                local_base: Some(c.rope_local_base_freq),
            }),
            residual: Residual::PreNorm,
            direction,
            attention_scale: 1.0 / c.query_pre_attn_scalar.sqrt(),
            window: c.window(),
            dense: Vec::new(),
            type_shift: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gemma(extra: &str) -> Gemma3Config {
        let text = format!(
            r#"{{"vocab_size":100,"hidden_size":64,"intermediate_size":128,"num_hidden_layers":6,
            "num_attention_heads":4,"num_key_value_heads":1,"head_dim":32,"max_position_embeddings":2048,
            "query_pre_attn_scalar":32,"sliding_window":512{extra}}}"#
        );
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn the_window_is_read_from_the_config_and_halved_when_bidirectional() {
        let bidirectional = gemma(r#","use_bidirectional_attention":true"#);
        assert_eq!(bidirectional.window(), Some(256));
        assert_eq!(bidirectional.attention(), AttentionDirection::Bidirectional);
        let causal = gemma("");
        assert_eq!(causal.window(), Some(511));
        assert_eq!(causal.attention(), AttentionDirection::Causal);
        assert_eq!(
            causal.sliding(),
            [true, true, true, true, true, false],
            "every sixth layer full by default"
        );
    }

    #[test]
    fn softcapping_and_rope_scaling_are_refused_by_name() {
        assert_eq!(
            gemma(r#","attn_logit_softcapping":null"#).not_buildable(),
            None
        );
        let capped = gemma(r#","attn_logit_softcapping":50.0"#).not_buildable();
        assert!(capped.unwrap().contains("attn_logit_softcapping"));
        let scaled = gemma(r#","rope_scaling":{"rope_type":"linear","factor":8.0}"#);
        assert!(scaled.not_buildable().unwrap().contains("rope_scaling"));
        let odd = gemma(
            r#","layer_types":["sliding_attention","chunked_attention","full_attention","full_attention","full_attention","full_attention"]"#,
        );
        assert!(odd.not_buildable().unwrap().contains("chunked_attention"));
    }
}
