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

/// Generic over the projection (`L`), so that a backend holds the same structure with its own
/// weight type.
pub struct Attention<L = Linear> {
    pub q: L,
    pub k: L,
    pub v: L,
    pub out: L,
}

pub enum FeedForward<L = Linear> {
    /// `down(act(up(x)))`
    Activation { up: L, act: Activation, down: L },
    /// `down(up(x) * silu(gate(x)))`
    SwiGlu { up: L, gate: L, down: L },
}

impl<L> Attention<L> {
    pub fn try_map<M, E>(
        &self,
        mut f: impl FnMut(&L) -> std::result::Result<M, E>,
    ) -> std::result::Result<Attention<M>, E> {
        Ok(Attention {
            q: f(&self.q)?,
            k: f(&self.k)?,
            v: f(&self.v)?,
            out: f(&self.out)?,
        })
    }
}

impl<L> FeedForward<L> {
    pub fn try_map<M, E>(
        &self,
        mut f: impl FnMut(&L) -> std::result::Result<M, E>,
    ) -> std::result::Result<FeedForward<M>, E> {
        Ok(match self {
            FeedForward::Activation { up, act, down } => FeedForward::Activation {
                up: f(up)?,
                act: *act,
                down: f(down)?,
            },
            FeedForward::SwiGlu { up, gate, down } => FeedForward::SwiGlu {
                up: f(up)?,
                gate: f(gate)?,
                down: f(down)?,
            },
        })
    }
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
