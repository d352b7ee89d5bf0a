//! BERT (all-MiniLM, bge, e5, arctic-embed): absolute positions, biases, GELU, post-norm.
use serde::Deserialize;

use super::architecture::Architecture;
use super::encoder::{
    add_row, Activation, Attention, AttentionDirection, Encoder, FeedForward, Layer, Residual,
};
use super::keys::Keys;
use super::sizes::Sizes;
use crate::error::{Error, Result};
use crate::weights::Safetensors;

/// `config.json` of a BERT model.
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f32,
    #[serde(default = "default_act")]
    pub hidden_act: String,
}

fn two() -> usize {
    2
}
fn default_eps() -> f32 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}

pub fn parse(text: &str) -> serde_json::Result<Box<dyn Architecture>> {
    Ok(Box::new(serde_json::from_str::<BertConfig>(text)?))
}

impl Architecture for BertConfig {
    fn model_type(&self) -> &str {
        "bert"
    }

    fn sizes(&self) -> Option<Sizes> {
        Some(Sizes {
            hidden: self.hidden_size,
            layers: self.num_hidden_layers,
            heads: self.num_attention_heads,
            kv_heads: self.num_attention_heads,
            head_dim: self.hidden_size / self.num_attention_heads.max(1),
            inner: self.intermediate_size,
            vocab: self.vocab_size,
            positions: self.max_position_embeddings,
            rotary: false,
            free_head_dim: false,
        })
    }

    fn max_trained_tokens(&self) -> usize {
        self.max_position_embeddings
    }

    fn anchor(&self) -> Option<&'static str> {
        Some("embeddings.word_embeddings.weight")
    }

    fn describe(&self, w: &Safetensors, _: AttentionDirection) -> Result<Encoder> {
        let c = self;
        let act = match c.hidden_act.as_str() {
            "gelu" => Activation::Gelu,
            "relu" => Activation::Relu,
            other => {
                return Err(Error::unsupported(
                    &w.source,
                    format!(
                        "config.json asks for hidden_act \"{other}\"; supported: \"gelu\", \"relu\""
                    ),
                ))
            }
        };
        let (h, eps) = (c.hidden_size, c.layer_norm_eps);
        let keys = Keys::new(w);
        let embeddings = keys.pp("embeddings");
        let mut word_embeddings =
            embeddings.tensor("word_embeddings.weight", &[c.vocab_size, h])?;
        let token_types =
            embeddings.tensor("token_type_embeddings.weight", &[c.type_vocab_size, h])?;
        add_row(&mut word_embeddings, &token_types.f32()[..h]);
        let layers = (0..c.num_hidden_layers)
            .map(|i| c.layer(&keys.pp("encoder.layer").pp(i), act))
            .collect::<Result<_>>()?;
        Ok(Encoder {
            hidden: h,
            heads: c.num_attention_heads,
            kv_heads: c.num_attention_heads,
            head_dim: h / c.num_attention_heads,
            word_embeddings,
            position_embeddings: Some(embeddings.tensor(
                "position_embeddings.weight",
                &[c.max_position_embeddings, h],
            )?),
            embedding_norm: Some(embeddings.layer_norm("LayerNorm", h, eps)?),
            layers,
            final_norm: None,
            rotary: None,
            residual: Residual::PostNorm,
            direction: AttentionDirection::Bidirectional,
        })
    }
}

impl BertConfig {
    fn layer(&self, keys: &Keys, act: Activation) -> Result<Layer> {
        let (h, i, eps) = (
            self.hidden_size,
            self.intermediate_size,
            self.layer_norm_eps,
        );
        let (attention, output) = (keys.pp("attention.self"), keys.pp("attention.output"));
        Ok(Layer {
            attention: Attention {
                q: attention.linear("query", h, h)?,
                k: attention.linear("key", h, h)?,
                v: attention.linear("value", h, h)?,
                out: output.linear("dense", h, h)?,
                q_norm: None,
                k_norm: None,
            },
            norm1: output.layer_norm("LayerNorm", h, eps)?,
            ffn: FeedForward::Activation {
                up: keys.linear("intermediate.dense", i, h)?,
                act,
                down: keys.linear("output.dense", h, i)?,
            },
            norm2: keys.layer_norm("output.LayerNorm", h, eps)?,
        })
    }
}
