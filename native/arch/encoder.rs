//! What an encoder is made of, independent of the checkpoint's key names and of the backend:
//! each architecture file maps its checkpoint onto this once, and every backend runs it (ONNX
//! Runtime's graph builder, MLX). The description is explicit: norm kind, residual placement,
//! heads and key/value heads, head size, per-head q/k norms, rotary positions, attention
//! direction.
use crate::weights::Tensor;

/// A PyTorch `nn.Linear`: `weight` is `[out, in]`.
#[derive(Clone)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    /// The bias times `scale` (a query scaled by 1/sqrt(head size) folds it in).
    pub fn scaled_bias(&self, scale: f32) -> Option<Vec<f32>> {
        let bias = self.bias.as_ref()?;
        Some(bias.f32().iter().map(|v| v * scale).collect())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormKind {
    /// `(x - mean) / sqrt(var + eps) * weight + bias`
    LayerNorm,
    /// `x / sqrt(mean(x^2) + eps) * weight`
    RmsNorm,
}

#[derive(Clone)]
pub struct Norm {
    pub kind: NormKind,
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub eps: f32,
}

/// Generic over the projection (`L`) and the norm (`N`), so that a backend holds the same
/// structure with its own weight types.
#[derive(Clone)]
pub struct Attention<L = Linear, N = Norm> {
    pub q: L,
    pub k: L,
    pub v: L,
    pub out: L,
    /// RMSNorm over each head of q and of k, before the rotary embedding (Qwen3).
    pub q_norm: Option<N>,
    pub k_norm: Option<N>,
}

#[derive(Clone)]
pub enum FeedForward<L = Linear> {
    /// `down(act(up(x)))`
    Activation { up: L, act: Activation, down: L },
    /// `down(up(x) * silu(gate(x)))`
    SwiGlu { up: L, gate: L, down: L },
}

impl<L, N> Attention<L, N> {
    pub fn try_map<M, O, E>(
        &self,
        mut linear: impl FnMut(&L) -> std::result::Result<M, E>,
        mut norm: impl FnMut(&N) -> std::result::Result<O, E>,
    ) -> std::result::Result<Attention<M, O>, E> {
        Ok(Attention {
            q: linear(&self.q)?,
            k: linear(&self.k)?,
            v: linear(&self.v)?,
            out: linear(&self.out)?,
            q_norm: self.q_norm.as_ref().map(&mut norm).transpose()?,
            k_norm: self.k_norm.as_ref().map(&mut norm).transpose()?,
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

/// Where each block's norm sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Residual {
    /// `x = norm1(x + attn(x)); x = norm2(x + ffn(x))` (BERT, NomicBert)
    PostNorm,
    /// `x = x + attn(norm1(x)); x = x + ffn(norm2(x))` (Qwen), then the final norm
    PreNorm,
}

/// Which tokens a token attends to (padding is never attended).
#[napi_derive::napi(string_enum = "lowercase")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionDirection {
    Bidirectional,
    /// Each token attends to itself and the tokens before it.
    Causal,
}

#[derive(Clone)]
pub struct Layer<L = Linear, N = Norm> {
    pub attention: Attention<L, N>,
    pub norm1: N,
    pub ffn: FeedForward<L>,
    pub norm2: N,
}

impl<L, N> Layer<L, N> {
    pub fn try_map<M, O, E>(
        &self,
        mut linear: impl FnMut(&L) -> std::result::Result<M, E>,
        mut norm: impl FnMut(&N) -> std::result::Result<O, E>,
    ) -> std::result::Result<Layer<M, O>, E> {
        Ok(Layer {
            attention: self.attention.try_map(&mut linear, &mut norm)?,
            norm1: norm(&self.norm1)?,
            ffn: self.ffn.try_map(&mut linear)?,
            norm2: norm(&self.norm2)?,
        })
    }
}

/// Rotary position embedding on the first `dims` of each head, halves rotated (not interleaved).
#[derive(Clone)]
pub struct Rotary {
    pub dims: usize,
    pub base: f32,
}

#[derive(Clone)]
pub struct Encoder {
    pub hidden: usize,
    pub heads: usize,
    /// Key/value heads: fewer than `heads` with grouped-query attention, each serving
    /// `heads / kv_heads` consecutive query heads.
    pub kv_heads: usize,
    /// Not always `hidden / heads` (Qwen3: 128).
    pub head_dim: usize,
    /// `[vocab, hidden]`, with token-type row 0 already added (single-segment input).
    pub word_embeddings: Tensor,
    /// `[positions, hidden]` for absolute positions; `None` with rotary.
    pub position_embeddings: Option<Tensor>,
    pub embedding_norm: Option<Norm>,
    pub layers: Vec<Layer>,
    pub final_norm: Option<Norm>,
    pub rotary: Option<Rotary>,
    pub residual: Residual,
    pub direction: AttentionDirection,
}

impl Encoder {
    /// Moves the tensors into the encoder returned, leaving this one spent (no layers), so that
    /// a backend converting them can release each once it holds its own copy.
    pub fn take(&mut self) -> Encoder {
        Encoder {
            word_embeddings: std::mem::take(&mut self.word_embeddings),
            position_embeddings: self.position_embeddings.take(),
            embedding_norm: self.embedding_norm.take(),
            layers: std::mem::take(&mut self.layers),
            final_norm: self.final_norm.take(),
            rotary: self.rotary.clone(),
            ..*self
        }
    }

    /// The weights of its projections and embedding tables: what a graph or a device holds.
    pub fn parameters(&self) -> usize {
        let linears = self.layers.iter().flat_map(|l| {
            let a = &l.attention;
            let ffn: Vec<&Linear> = match &l.ffn {
                FeedForward::Activation { up, down, .. } => vec![up, down],
                FeedForward::SwiGlu { up, gate, down } => vec![up, gate, down],
            };
            [&a.q, &a.k, &a.v, &a.out].into_iter().chain(ffn)
        });
        let tables = [
            Some(&self.word_embeddings),
            self.position_embeddings.as_ref(),
        ];
        linears.map(|l| l.weight.len()).sum::<usize>()
            + tables.iter().flatten().map(|t| t.len()).sum::<usize>()
    }
}

/// Adds `row` to every row of `table` (`[n, dim]`): folds a constant embedding into a lookup table.
pub fn add_row(table: &mut Tensor, row: &[f32]) {
    for r in table.f32_mut().chunks_exact_mut(row.len()) {
        r.iter_mut().zip(row).for_each(|(a, b)| *a += b);
    }
}
