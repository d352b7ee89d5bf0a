//! ModernBERT (gte-modernbert-base, granite-embedding-english-r2, modernbert-embed-base): pre-norm
//! blocks with LayerNorms that may have no bias, fused `Wqkv`, GeGLU (`Wi` holds the activated
//! input and the gate), rotary positions with a global and a local base, and a sliding window of
//! `local_attention / 2` tokens on each side on every layer but each
//! `global_attn_every_n_layers`-th. As transformers' eager ModernBERT, without unpadding.
use serde::Deserialize;

use super::architecture::Architecture;
use super::encoder::{
    Activation, Attention, AttentionDirection, Encoder, FeedForward, Layer, Norm, Residual, Rotary,
};
use super::keys::Keys;
use super::sizes::Sizes;
use crate::error::{Error, Result};
use crate::weights::Safetensors;

/// `config.json` of a ModernBERT model.
#[derive(Debug, Clone, Deserialize)]
pub struct ModernBertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    pub norm_eps: f32,
    #[serde(default)]
    pub norm_bias: bool,
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default)]
    pub mlp_bias: bool,
    #[serde(default = "default_act")]
    pub hidden_activation: String,
    #[serde(default = "default_global_theta")]
    pub global_rope_theta: f32,
    pub local_rope_theta: Option<f32>,
    #[serde(default = "default_local_attention")]
    pub local_attention: usize,
    #[serde(default = "default_every")]
    pub global_attn_every_n_layers: usize,
    pub rope_scaling: Option<serde_json::Value>,
}

fn default_eps() -> f32 {
    1e-5
}
fn default_act() -> String {
    "gelu".into()
}
fn default_global_theta() -> f32 {
    160_000.0
}
fn default_local_attention() -> usize {
    128
}
fn default_every() -> usize {
    3
}

pub fn parse(text: &str) -> serde_json::Result<Box<dyn Architecture>> {
    Ok(Box::new(serde_json::from_str::<ModernBertConfig>(text)?))
}

impl ModernBertConfig {
    fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }

    fn sliding(&self, layer: usize) -> bool {
        !layer.is_multiple_of(self.global_attn_every_n_layers.max(1))
    }

    fn norm(&self, keys: &Keys, name: &str) -> Result<Norm> {
        let h = self.hidden_size;
        match self.norm_bias {
            true => keys.layer_norm(name, h, self.norm_eps),
            false => keys.layer_norm_no_bias(name, h, self.norm_eps),
        }
    }

    fn layer(&self, keys: &Keys, index: usize, act: Activation) -> Result<Layer> {
        let (h, inner) = (self.hidden_size, self.intermediate_size);
        let (attn, mlp) = (keys.pp("attn"), keys.pp("mlp"));
        // Wqkv stacks all of q, then all of k, then all of v along its output rows.
        let qkv = attn.linear_b("Wqkv", 3 * h, h, self.attention_bias)?;
        let wi = mlp.linear_b("Wi", 2 * inner, h, self.mlp_bias)?;
        Ok(Layer {
            attention: Attention {
                q: qkv.part(0, h),
                k: qkv.part(1, h),
                v: qkv.part(2, h),
                out: attn.linear_b("Wo", h, h, self.attention_bias)?,
                q_norm: None,
                k_norm: None,
            },
            // the first layer's attention reads the embedding norm's output as it is
            norm1: (index > 0)
                .then(|| self.norm(keys, "attn_norm"))
                .transpose()?,
            ffn: FeedForward::Gated {
                gate: wi.part(0, inner),
                up: wi.part(1, inner),
                act,
                down: mlp.linear_b("Wo", h, inner, self.mlp_bias)?,
            },
            norm2: self.norm(keys, "mlp_norm")?,
            post_attention_norm: None,
            post_ffn_norm: None,
            sliding: self.sliding(index),
        })
    }
}

impl Architecture for ModernBertConfig {
    fn model_type(&self) -> &str {
        "modernbert"
    }

    fn sizes(&self) -> Option<Sizes> {
        Some(Sizes {
            hidden: self.hidden_size,
            layers: self.num_hidden_layers,
            heads: self.num_attention_heads,
            kv_heads: self.num_attention_heads,
            head_dim: self.head_dim(),
            inner: self.intermediate_size,
            vocab: self.vocab_size,
            positions: self.max_position_embeddings,
            rotary: true,
            free_head_dim: false,
        })
    }

    fn max_trained_tokens(&self) -> usize {
        self.max_position_embeddings
    }

    fn not_buildable(&self) -> Option<String> {
        if self.rope_scaling.as_ref().is_some_and(|s| !s.is_null()) {
            return Some("asks for rope_scaling".into());
        }
        if Activation::from_hf(&self.hidden_activation).is_none() {
            return Some(format!(
                "asks for hidden_activation \"{}\" (built here: \"gelu\", \"gelu_new\", \"relu\", \"silu\")",
                self.hidden_activation
            ));
        }
        None
    }

    fn anchor(&self) -> Option<&'static str> {
        Some("embeddings.tok_embeddings.weight")
    }

    fn describe(&self, w: &Safetensors, _: AttentionDirection) -> Result<Encoder> {
        let c = self;
        let act = Activation::from_hf(&c.hidden_activation).ok_or_else(|| {
            Error::unsupported(
                &w.source,
                format!("hidden_activation {}", c.hidden_activation),
            )
        })?;
        let (h, head_dim) = (c.hidden_size, c.head_dim());
        let keys = Keys::new(w);
        let layers = (0..c.num_hidden_layers)
            .map(|i| c.layer(&keys.pp("layers").pp(i), i, act))
            .collect::<Result<_>>()?;
        Ok(Encoder {
            hidden: h,
            heads: c.num_attention_heads,
            kv_heads: c.num_attention_heads,
            head_dim,
            word_embeddings: keys.tensor("embeddings.tok_embeddings.weight", &[c.vocab_size, h])?,
            position_embeddings: None,
            embedding_norm: Some(c.norm(&keys, "embeddings.norm")?),
            layers,
            final_norm: Some(c.norm(&keys, "final_norm")?),
            rotary: Some(Rotary {
                dims: head_dim,
                base: c.global_rope_theta,
                local_base: Some(c.local_rope_theta.unwrap_or(c.global_rope_theta)),
            }),
            residual: Residual::PreNorm,
            direction: AttentionDirection::Bidirectional,
            attention_scale: Encoder::default_scale(head_dim),
            window: Some(c.local_attention / 2),
            dense: Vec::new(),
            type_shift: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_third_layer_is_global_from_the_first() {
        let c: ModernBertConfig = serde_json::from_str(
            r#"{"vocab_size":100,"hidden_size":64,"intermediate_size":96,"num_hidden_layers":7,
            "num_attention_heads":4,"max_position_embeddings":8192}"#,
        )
        .unwrap();
        let sliding: Vec<bool> = (0..7).map(|i| c.sliding(i)).collect();
        assert_eq!(sliding, [false, true, true, false, true, true, false]);
        assert_eq!(c.not_buildable(), None);
        let scaled: ModernBertConfig = serde_json::from_str(
            r#"{"vocab_size":100,"hidden_size":64,"intermediate_size":96,"num_hidden_layers":7,
            "num_attention_heads":4,"max_position_embeddings":8192,"rope_scaling":{"type":"linear"}}"#,
        )
        .unwrap();
        assert!(scaled.not_buildable().unwrap().contains("rope_scaling"));
    }
}
