//! NomicBert (CodeRankEmbed, nomic-embed-text): fused Wqkv, rotary positions, SwiGLU, post-norm.
use serde::Deserialize;

use super::architecture::Architecture;
use super::encoder::{
    add_row, Activation, Attention, AttentionDirection, Encoder, FeedForward, Layer, Residual,
    Rotary,
};
use super::keys::Keys;
use super::sizes::Sizes;
use crate::error::{Error, Result};
use crate::weights::Safetensors;

/// NomicBert's positions past this were never trained (no rotary scaling), so truncation stops here.
pub const MAX_TRAINED: usize = 2048;

/// `config.json` of a NomicBert model.
#[derive(Debug, Clone, Deserialize)]
pub struct NomicBertConfig {
    pub vocab_size: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_inner: Option<usize>,
    pub n_positions: usize,
    pub max_trained_positions: Option<usize>,
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
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
    #[serde(default = "default_activation")]
    pub activation_function: String,
}

fn two() -> usize {
    2
}
fn default_eps() -> f32 {
    1e-12
}
fn default_rotary_base() -> f32 {
    10_000.0
}
fn one() -> f32 {
    1.0
}
fn default_activation() -> String {
    "swiglu".into()
}

pub fn parse(text: &str) -> serde_json::Result<Box<dyn Architecture>> {
    Ok(Box::new(serde_json::from_str::<NomicBertConfig>(text)?))
}

impl Architecture for NomicBertConfig {
    fn model_type(&self) -> &str {
        "nomic_bert"
    }

    fn sizes(&self) -> Option<Sizes> {
        Some(Sizes {
            hidden: self.n_embd,
            layers: self.n_layer,
            heads: self.n_head,
            kv_heads: self.n_head,
            head_dim: self.n_embd / self.n_head.max(1),
            inner: self.inner(),
            vocab: self.vocab_size,
            positions: self.n_positions,
            rotary: true,
            free_head_dim: false,
        })
    }

    fn max_trained_tokens(&self) -> usize {
        self.max_trained_positions
            .unwrap_or(self.n_positions)
            .min(self.n_positions)
            .min(MAX_TRAINED)
    }

    fn anchor(&self) -> Option<&'static str> {
        Some("embeddings.word_embeddings.weight")
    }

    fn describe(&self, w: &Safetensors, _: AttentionDirection) -> Result<Encoder> {
        let c = self;
        c.check_supported(w)?;
        let h = c.n_embd;
        let keys = Keys::new(w);
        let mut word_embeddings =
            keys.tensor("embeddings.word_embeddings.weight", &[c.vocab_size, h])?;
        if c.type_vocab_size > 0 {
            let token_types = keys.tensor(
                "embeddings.token_type_embeddings.weight",
                &[c.type_vocab_size, h],
            )?;
            add_row(&mut word_embeddings, &token_types.f32()[..h]);
        }
        let head_dim = h / c.n_head;
        let layers = (0..c.n_layer)
            .map(|i| c.layer(&keys.pp("encoder.layers").pp(i)))
            .collect::<Result<_>>()?;
        Ok(Encoder {
            hidden: h,
            heads: c.n_head,
            kv_heads: c.n_head,
            head_dim,
            word_embeddings,
            position_embeddings: None,
            embedding_norm: Some(keys.layer_norm("emb_ln", h, c.layer_norm_epsilon)?),
            layers,
            final_norm: None,
            residual: Residual::PostNorm,
            direction: AttentionDirection::Bidirectional,
            rotary: Some(Rotary::new(
                (head_dim as f32 * c.rotary_emb_fraction) as usize,
                c.rotary_emb_base,
            )),
            attention_scale: Encoder::default_scale(head_dim),
            window: None,
            dense: Vec::new(),
            type_shift: None,
        })
    }
}

impl NomicBertConfig {
    fn inner(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }

    fn check_supported(&self, w: &Safetensors) -> Result<()> {
        let refuse = |what: &str| {
            Err(Error::unsupported(
                &w.source,
                format!("config.json asks for {what}, which this addon does not support"),
            ))
        };
        if self.prenorm {
            return refuse("prenorm: true");
        }
        if self.rotary_emb_interleaved {
            return refuse("rotary_emb_interleaved: true");
        }
        if self.activation_function != "swiglu" {
            return refuse(&format!(
                "activation_function \"{}\" (supported: \"swiglu\")",
                self.activation_function
            ));
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return refuse("a hidden size that the heads do not divide");
        }
        Ok(())
    }

    fn layer(&self, keys: &Keys) -> Result<Layer> {
        let (h, eps, inner) = (self.n_embd, self.layer_norm_epsilon, self.inner());
        let (attn, mlp) = (keys.pp("attn"), keys.pp("mlp"));
        // Wqkv stacks all of q, then all of k, then all of v along its output rows.
        let qkv = attn.linear_b("Wqkv", 3 * h, h, self.qkv_proj_bias)?;
        Ok(Layer {
            attention: Attention {
                q: qkv.part(0, h),
                k: qkv.part(1, h),
                v: qkv.part(2, h),
                out: attn.linear_b("out_proj", h, h, self.qkv_proj_bias)?,
                q_norm: None,
                k_norm: None,
            },
            norm1: Some(keys.layer_norm("norm1", h, eps)?),
            ffn: FeedForward::Gated {
                act: Activation::Silu,
                up: mlp.linear_b("fc11", inner, h, self.mlp_fc1_bias)?,
                gate: mlp.linear_b("fc12", inner, h, self.mlp_fc1_bias)?,
                down: mlp.linear_b("fc2", h, inner, self.mlp_fc2_bias)?,
            },
            norm2: keys.layer_norm("norm2", h, eps)?,
            post_attention_norm: None,
            post_ffn_norm: None,
            sliding: false,
        })
    }
}
