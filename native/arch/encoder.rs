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
    /// Output rows `n * size .. (n + 1) * size` of a stacked projection (a fused `Wqkv`, `Wi`).
    pub fn part(&self, n: usize, size: usize) -> Linear {
        Linear {
            weight: self.weight.rows(n * size, (n + 1) * size),
            bias: self.bias.as_ref().map(|b| b.span(n * size, (n + 1) * size)),
        }
    }

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
    /// `down(act(gate(x)) * up(x))`: SwiGLU with SiLU (NomicBert, Qwen), GeGLU with a GELU
    /// (ModernBERT, Gemma).
    Gated {
        gate: L,
        up: L,
        act: Activation,
        down: L,
    },
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
            FeedForward::Gated {
                gate,
                up,
                act,
                down,
            } => FeedForward::Gated {
                gate: f(gate)?,
                up: f(up)?,
                act: *act,
                down: f(down)?,
            },
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// The exact (erf) GELU.
    Gelu,
    /// GELU's tanh approximation (`gelu_pytorch_tanh`, Gemma).
    GeluTanh,
    Relu,
    /// `x * sigmoid(x)`
    Silu,
    /// A sentence-transformers `Dense` module's default.
    Tanh,
    Identity,
}

impl Activation {
    /// The activation transformers' `ACT2FN` names `name`, if the backends have it.
    pub fn from_hf(name: &str) -> Option<Activation> {
        Some(match name {
            "gelu" => Activation::Gelu,
            "gelu_pytorch_tanh" | "gelu_new" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            "silu" | "swish" => Activation::Silu,
            _ => return None,
        })
    }
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
    /// Post-norm: after the attention's sum; pre-norm: before the attention. `None`: no norm
    /// there (ModernBERT's first layer reads the embedding norm's output as it is).
    pub norm1: Option<N>,
    pub ffn: FeedForward<L>,
    pub norm2: N,
    /// Pre-norm only: norms of the attention's and the feed-forward's outputs before each
    /// residual sum (Gemma's four norms per block).
    pub post_attention_norm: Option<N>,
    pub post_ffn_norm: Option<N>,
    /// Attends only within the encoder's sliding window, with the local rotary base.
    pub sliding: bool,
}

impl<L, N> Layer<L, N> {
    pub fn try_map<M, O, E>(
        &self,
        mut linear: impl FnMut(&L) -> std::result::Result<M, E>,
        mut norm: impl FnMut(&N) -> std::result::Result<O, E>,
    ) -> std::result::Result<Layer<M, O>, E> {
        Ok(Layer {
            attention: self.attention.try_map(&mut linear, &mut norm)?,
            norm1: self.norm1.as_ref().map(&mut norm).transpose()?,
            ffn: self.ffn.try_map(&mut linear)?,
            norm2: norm(&self.norm2)?,
            post_attention_norm: self
                .post_attention_norm
                .as_ref()
                .map(&mut norm)
                .transpose()?,
            post_ffn_norm: self.post_ffn_norm.as_ref().map(&mut norm).transpose()?,
            sliding: self.sliding,
        })
    }
}

/// Rotary position embedding on the first `dims` of each head, halves rotated (not interleaved).
#[derive(Clone)]
pub struct Rotary {
    pub dims: usize,
    pub base: f32,
    /// The base of the sliding-window layers, where it differs (ModernBERT, Gemma3).
    pub local_base: Option<f32>,
}

impl Rotary {
    pub fn new(dims: usize, base: f32) -> Rotary {
        Rotary {
            dims,
            base,
            local_base: None,
        }
    }

    /// The base a layer rotates with.
    pub fn base_of(&self, sliding: bool) -> f32 {
        match self.local_base {
            Some(local) if sliding => local,
            _ => self.base,
        }
    }
}

/// A sentence-transformers `Dense` module after pooling, `act(x @ weight^T + bias)`, or a
/// reranker's head layer, which may end in a norm (ModernBERT's prediction head).
#[derive(Clone)]
pub struct Dense {
    pub linear: Linear,
    pub act: Activation,
    pub norm: Option<Norm>,
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
    /// What query·key products are multiplied by: `1/sqrt(head_dim)`, or Gemma's
    /// `query_pre_attn_scalar^-1/2`.
    pub attention_scale: f32,
    /// A sliding layer's token attends to tokens at most this far away on either side
    /// (ModernBERT: `local_attention / 2`; bidirectional Gemma3: `sliding_window / 2`).
    pub window: Option<usize>,
    /// The sentence-transformers `Dense` modules after pooling, in order; a reranker's head
    /// (its last layer has one output: the score's logit).
    pub dense: Vec<Dense>,
    /// `[hidden]`: token-type row 1 minus row 0, added to the embeddings of tokens whose type id
    /// is 1 (a cross-encoder's document); `None` where all tokens are type 0.
    pub type_shift: Option<Tensor>,
}

impl Encoder {
    /// The vector length: the last `Dense` module's output, else the hidden size.
    pub fn dim(&self) -> usize {
        self.dense
            .last()
            .map_or(self.hidden, |d| d.linear.weight.shape[0])
    }

    /// `1/sqrt(head_dim)`, the attention scale of every architecture but Gemma.
    pub fn default_scale(head_dim: usize) -> f32 {
        1.0 / (head_dim as f32).sqrt()
    }

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
            dense: std::mem::take(&mut self.dense),
            type_shift: self.type_shift.take(),
            ..*self
        }
    }

    /// The weights of its projections and embedding tables: what a graph or a device holds.
    pub fn parameters(&self) -> usize {
        let linears = self.layers.iter().flat_map(|l| {
            let a = &l.attention;
            let ffn: Vec<&Linear> = match &l.ffn {
                FeedForward::Activation { up, down, .. } => vec![up, down],
                FeedForward::Gated { gate, up, down, .. } => vec![gate, up, down],
            };
            [&a.q, &a.k, &a.v, &a.out].into_iter().chain(ffn)
        });
        let tables = [
            Some(&self.word_embeddings),
            self.position_embeddings.as_ref(),
        ];
        let dense = self.dense.iter().map(|d| d.linear.weight.len());
        linears.map(|l| l.weight.len()).sum::<usize>()
            + dense.sum::<usize>()
            + tables.iter().flatten().map(|t| t.len()).sum::<usize>()
    }
}

/// Adds `row` to every row of `table` (`[n, dim]`): folds a constant embedding into a lookup table.
pub fn add_row(table: &mut Tensor, row: &[f32]) {
    for r in table.f32_mut().chunks_exact_mut(row.len()) {
        r.iter_mut().zip(row).for_each(|(a, b)| *a += b);
    }
}
