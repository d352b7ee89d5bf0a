//! What an encoder is made of, independent of the checkpoint's key names and of the backend:
//! each architecture file maps `model.safetensors` onto this once, and every backend runs it
//! (ONNX Runtime's graph builder, MLX).
mod bert;
mod nomic_bert;

use crate::config::ModelConfig;
use crate::error::Result;
use crate::weights::{Safetensors, Tensor};

/// The encoder that `config.json` describes, with its weights from `weights`.
pub fn encoder(weights: &Safetensors, config: &ModelConfig) -> Result<Encoder> {
    match config {
        ModelConfig::Bert(c) => bert::load(weights, c),
        ModelConfig::NomicBert(c) => nomic_bert::load(weights, c),
    }
}

/// A PyTorch `nn.Linear`: `weight` is `[out, in]`.
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    pub fn load(
        w: &Safetensors,
        name: &str,
        out: usize,
        input: usize,
        bias: bool,
    ) -> Result<Linear> {
        Ok(Linear {
            weight: w.get_shaped(&format!("{name}.weight"), &[out, input])?,
            bias: if bias {
                Some(w.get_shaped(&format!("{name}.bias"), &[out])?)
            } else {
                None
            },
        })
    }
}

pub struct Norm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub eps: f32,
}

impl Norm {
    /// `name.weight`/`name.bias`, or the `gamma`/`beta` of older TensorFlow-converted checkpoints.
    pub fn load(w: &Safetensors, name: &str, dim: usize, eps: f32) -> Result<Norm> {
        let (weight, bias) = if w.has(&format!("{name}.gamma")) {
            ("gamma", "beta")
        } else {
            ("weight", "bias")
        };
        Ok(Norm {
            weight: w.get_shaped(&format!("{name}.{weight}"), &[dim])?,
            bias: w.get_shaped(&format!("{name}.{bias}"), &[dim])?,
            eps,
        })
    }
}

pub struct Attention {
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub out: Linear,
}

pub enum FeedForward {
    /// `down(act(up(x)))`
    Activation {
        up: Linear,
        act: Activation,
        down: Linear,
    },
    /// `down(up(x) * silu(gate(x)))`
    SwiGlu {
        up: Linear,
        gate: Linear,
        down: Linear,
    },
}

#[derive(Clone, Copy)]
pub enum Activation {
    /// The exact (erf) GELU.
    Gelu,
    Relu,
}

/// A post-norm transformer layer: `x = norm1(x + attn(x)); x = norm2(x + ffn(x))`.
pub struct Layer {
    pub attention: Attention,
    pub norm1: Norm,
    pub ffn: FeedForward,
    pub norm2: Norm,
}

/// Rotary position embedding on the first `dims` of each head, halves rotated (not interleaved).
pub struct Rotary {
    pub dims: usize,
    pub base: f32,
}

pub struct Encoder {
    pub hidden: usize,
    pub heads: usize,
    /// `[vocab, hidden]`, with token-type row 0 already added (single-segment input).
    pub word_embeddings: Tensor,
    /// `[positions, hidden]` for absolute positions; `None` with rotary.
    pub position_embeddings: Option<Tensor>,
    pub embedding_norm: Norm,
    pub layers: Vec<Layer>,
    pub rotary: Option<Rotary>,
}

impl Encoder {
    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }
}

/// Adds `row` to every row of `table` (`[n, dim]`): folds a constant embedding into a lookup table.
pub fn add_row(table: &mut Tensor, row: &[f32]) {
    for r in table.data.chunks_exact_mut(row.len()) {
        r.iter_mut().zip(row).for_each(|(a, b)| *a += b);
    }
}
