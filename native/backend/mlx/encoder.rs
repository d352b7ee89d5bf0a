//! The encoder of `arch::Encoder` as MLX operations: MLX's fused kernels for layer norm,
//! rotary embedding and attention, matrix products with the bias folded in (`addmm`).
use mlx_rs::error::Exception;
use mlx_rs::fast::{self, ScaledDotProductAttentionMask};
use mlx_rs::ops::indexing::take_axis;
use mlx_rs::ops::{
    abs, addmm, erf, le, logical_and, maximum, multiply, ones, reshape, sigmoid, sum_axis, tanh,
    transpose_axes, tril,
};
use mlx_rs::{Array, Dtype};

use crate::arch::{self, Activation, AttentionDirection, FeedForward, NormKind, Residual};
use crate::pooling::Pooling;
use crate::weights::{Tensor, Values};

type Result<T> = std::result::Result<T, Exception>;

/// `x @ weight^T + bias`, with the weight transposed once at load.
struct Linear {
    weight_t: Array,
    bias: Array,
}

struct Norm {
    kind: NormKind,
    weight: Array,
    bias: Option<Array>,
    eps: f32,
}

type Layer = arch::Layer<Linear, Norm>;

/// A sentence-transformers `Dense` module (or a reranker's head layer) after pooling.
struct Dense {
    linear: Linear,
    act: Activation,
    norm: Option<Norm>,
}

pub struct Encoder {
    hidden: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    word_embeddings: Array,
    position_embeddings: Option<Array>,
    embedding_norm: Option<Norm>,
    layers: Vec<Layer>,
    final_norm: Option<Norm>,
    rotary: Option<arch::Rotary>,
    residual: Residual,
    direction: AttentionDirection,
    attention_scale: f32,
    window: Option<usize>,
    dense: Vec<Dense>,
    /// `[hidden]`, added where a token's type is 1 (a cross-encoder's document).
    type_shift: Option<Array>,
    pooling: Pooling,
    dtype: Dtype,
}

/// Which tokens each token may attend to, `[rows, 1, 1 or seq, seq]`: everywhere, and within
/// the sliding window where the model has one.
struct Keep {
    full: Array,
    window: Option<Array>,
}

/// A token batch as MLX sees it: `[rows, seq]` ids and mask.
pub struct Tokens<'a> {
    pub rows: usize,
    pub seq: usize,
    pub input_ids: &'a [i64],
    pub attention_mask: &'a [i64],
    /// Each token's segment; empty: all 0.
    pub token_types: &'a [i64],
}

impl Encoder {
    /// Copies the weights of `spec` into MLX arrays of `dtype`, releasing each layer's tensors
    /// once MLX has them.
    pub fn new(mut spec: arch::Encoder, pooling: Pooling, dtype: Dtype) -> Result<Self> {
        let array = |t: &Tensor| to_array(t, dtype);
        let norm = |n: &arch::Norm| to_norm(n, dtype);
        let layers = std::mem::take(&mut spec.layers)
            .into_iter()
            .map(|l| l.try_map(|x| to_linear(x, dtype), norm))
            .collect::<Result<_>>()?;
        Ok(Encoder {
            hidden: spec.hidden,
            heads: spec.heads,
            kv_heads: spec.kv_heads,
            head_dim: spec.head_dim,
            word_embeddings: array(&spec.word_embeddings)?,
            position_embeddings: spec.position_embeddings.as_ref().map(array).transpose()?,
            embedding_norm: spec.embedding_norm.as_ref().map(norm).transpose()?,
            layers,
            final_norm: spec.final_norm.as_ref().map(norm).transpose()?,
            rotary: spec.rotary.clone(),
            residual: spec.residual,
            direction: spec.direction,
            attention_scale: spec.attention_scale,
            window: spec.window,
            dense: std::mem::take(&mut spec.dense)
                .iter()
                .map(|d| {
                    Ok(Dense {
                        // float32, as the pooled vector it follows (and as the ONNX graph does)
                        linear: to_linear(&d.linear, Dtype::Float32)?,
                        act: d.act,
                        norm: d
                            .norm
                            .as_ref()
                            .map(|n| to_norm(n, Dtype::Float32))
                            .transpose()?,
                    })
                })
                .collect::<Result<_>>()?,
            type_shift: spec.type_shift.as_ref().map(array).transpose()?,
            pooling,
            dtype,
        })
    }

    /// Pooled, not yet normalised float32 vectors, `[rows, hidden]` row-major.
    pub fn forward(&self, tokens: &Tokens) -> Result<Vec<f32>> {
        let (rows, seq) = (tokens.rows as i32, tokens.seq as i32);
        let ids: Vec<i32> = tokens.input_ids.iter().map(|&t| t as i32).collect();
        let ids = Array::from_slice(&ids, &[rows * seq]);
        let keep: Vec<bool> = tokens.attention_mask.iter().map(|&m| m != 0).collect();
        let mut keep = Array::from_slice(&keep, &[rows, 1, 1, seq]);
        if self.direction == AttentionDirection::Causal {
            let earlier = tril(ones::<bool>(&[seq, seq])?, 0)?;
            keep = logical_and(&keep, &earlier)?; // [rows, 1, seq, seq]
        }
        let window = match self.window {
            Some(w) if self.layers.iter().any(|l| l.sliding) => {
                Some(logical_and(&keep, &near(tokens.seq, w)?)?)
            }
            _ => None,
        };
        let keep = Keep { full: keep, window };
        let mut x = self.embed(&ids, tokens)?;
        for layer in &self.layers {
            x = match self.residual {
                Residual::PostNorm => self.post_norm_layer(layer, &x, tokens, &keep)?,
                Residual::PreNorm => self.pre_norm_layer(layer, &x, tokens, &keep)?,
            };
        }
        if let Some(n) = &self.final_norm {
            x = norm(&x, n)?;
        }
        let pooled = self.pool(&x, tokens)?;
        let mut pooled = pooled.as_dtype(Dtype::Float32)?;
        for d in &self.dense {
            pooled = activate(&linear(&pooled, &d.linear)?, d.act)?;
            pooled = maybe_norm(pooled, d.norm.as_ref())?;
        }
        pooled.eval()?;
        Ok(pooled.as_slice::<f32>().to_vec())
    }

    /// `[rows * seq, hidden]`
    fn embed(&self, ids: &Array, tokens: &Tokens) -> Result<Array> {
        let seq = tokens.seq;
        let mut x = take_axis(&self.word_embeddings, ids, 0)?;
        if let (Some(shift), false) = (&self.type_shift, tokens.token_types.is_empty()) {
            let types: Vec<f32> = tokens.token_types.iter().map(|&t| t as f32).collect();
            let types = Array::from_slice(&types, &[types.len() as i32, 1]).as_dtype(self.dtype)?;
            x = x.add(&multiply(&types, shift)?)?;
        }
        if let Some(table) = &self.position_embeddings {
            let positions = Array::from_iter(0..seq as i32, &[seq as i32]);
            let positions = take_axis(table, &positions, 0)?;
            let rows = ids.shape()[0] / seq as i32;
            x = reshape(&x, &[rows, seq as i32, self.hidden as i32])?.add(&positions)?;
            x = reshape(&x, &[-1, self.hidden as i32])?;
        }
        match &self.embedding_norm {
            Some(n) => norm(&x, n),
            None => Ok(x),
        }
    }

    fn post_norm_layer(&self, l: &Layer, x: &Array, t: &Tokens, keep: &Keep) -> Result<Array> {
        let attended = self.attention(l, x, t, keep)?;
        let x = maybe_norm(x.add(&attended)?, l.norm1.as_ref())?;
        let fed = feed_forward(&l.ffn, &x)?;
        norm(&x.add(&fed)?, &l.norm2)
    }

    /// `x + post1(attn(norm1(x)))`, then `x + post2(ffn(norm2(x)))`, each norm where the layer
    /// has it.
    fn pre_norm_layer(&self, l: &Layer, x: &Array, t: &Tokens, keep: &Keep) -> Result<Array> {
        let normed = maybe_norm(x.clone(), l.norm1.as_ref())?;
        let attended = self.attention(l, &normed, t, keep)?;
        let x = x.add(&maybe_norm(attended, l.post_attention_norm.as_ref())?)?;
        let fed = feed_forward(&l.ffn, &norm(&x, &l.norm2)?)?;
        x.add(&maybe_norm(fed, l.post_ffn_norm.as_ref())?)
    }

    fn attention(&self, l: &Layer, x: &Array, t: &Tokens, keep: &Keep) -> Result<Array> {
        let head_dim = self.head_dim as i32;
        // [rows, heads, seq, head_dim]; MLX's attention reads grouped key/value heads as they are
        let heads = |a: Array, n: usize, per_head: Option<&Norm>| -> Result<Array> {
            let mut a = reshape(&a, &[t.rows as i32, t.seq as i32, n as i32, head_dim])?;
            if let Some(n) = per_head {
                a = norm(&a, n)?;
            }
            transpose_axes(&a, &[0, 2, 1, 3])
        };
        let a = &l.attention;
        let mut q = heads(linear(x, &a.q)?, self.heads, a.q_norm.as_ref())?;
        let mut k = heads(linear(x, &a.k)?, self.kv_heads, a.k_norm.as_ref())?;
        let v = heads(linear(x, &a.v)?, self.kv_heads, None)?;
        if let Some(rotary) = &self.rotary {
            let (dims, base) = (rotary.dims as i32, rotary.base_of(l.sliding));
            q = fast::rope(&q, dims, false, base, 1.0, 0, None)?;
            k = fast::rope(&k, dims, false, base, 1.0, 0, None)?;
        }
        let scale = self.attention_scale;
        let keep = match (&keep.window, l.sliding) {
            (Some(window), true) => window,
            _ => &keep.full,
        };
        let mask = ScaledDotProductAttentionMask::Array(keep);
        let o = fast::scaled_dot_product_attention(&q, &k, &v, scale, mask, None)?;
        let o = reshape(
            &transpose_axes(&o, &[0, 2, 1, 3])?,
            &[-1, self.heads as i32 * head_dim],
        )?;
        linear(&o, &a.out)
    }

    /// CLS: the first token of each row; last token: the last real one; mean: the average over
    /// real (unmasked) tokens, in f32.
    fn pool(&self, x: &Array, t: &Tokens) -> Result<Array> {
        let rows = || reshape(x, &[t.rows as i32, t.seq as i32, self.hidden as i32]);
        match self.pooling {
            Pooling::LastToken => take_axis(x, last_rows(t), 0),
            Pooling::Cls => take_axis(&rows()?, Array::from_int(0), 1)
                .and_then(|pooled| pooled.as_dtype(self.dtype)),
            Pooling::Mean => {
                let mask: Vec<f32> = t.attention_mask.iter().map(|&m| m as f32).collect();
                let mask = Array::from_slice(&mask, &[t.rows as i32, t.seq as i32, 1]);
                let x = rows()?.as_dtype(Dtype::Float32)?;
                let total = sum_axis(&multiply(&x, &mask)?, 1, false)?;
                total
                    .divide(&sum_axis(&mask, 1, false)?)
                    .and_then(|pooled| pooled.as_dtype(self.dtype))
            }
        }
    }
}

/// The index of each row's last real token among the `[rows * seq]` token states.
fn last_rows(t: &Tokens) -> Array {
    let last: Vec<i32> = t
        .attention_mask
        .chunks_exact(t.seq)
        .enumerate()
        .map(|(row, mask)| {
            (row * t.seq + mask.iter().filter(|&&m| m != 0).count().max(1) - 1) as i32
        })
        .collect();
    Array::from_slice(&last, &[t.rows as i32])
}

fn linear(x: &Array, l: &Linear) -> Result<Array> {
    addmm(&l.bias, x, &l.weight_t, 1.0, 1.0)
}

/// `[seq, seq]`: true where |i - j| <= `window`.
fn near(seq: usize, window: usize) -> Result<Array> {
    let positions = Array::from_iter(0..seq as i32, &[seq as i32]);
    let i = reshape(&positions, &[seq as i32, 1])?;
    let j = reshape(&positions, &[1, seq as i32])?;
    le(abs(i.subtract(&j)?)?, Array::from_int(window as i32))
}

fn maybe_norm(x: Array, n: Option<&Norm>) -> Result<Array> {
    match n {
        Some(n) => norm(&x, n),
        None => Ok(x),
    }
}

fn norm(x: &Array, n: &Norm) -> Result<Array> {
    match n.kind {
        NormKind::LayerNorm => fast::layer_norm(x, &n.weight, n.bias.as_ref(), n.eps),
        NormKind::RmsNorm => fast::rms_norm(x, Some(&n.weight), n.eps),
    }
}

fn feed_forward(ffn: &FeedForward<Linear>, x: &Array) -> Result<Array> {
    match ffn {
        FeedForward::Activation { up, act, down } => {
            linear(&activate(&linear(x, up)?, *act)?, down)
        }
        FeedForward::Gated {
            gate,
            up,
            act,
            down,
        } => {
            let activated = activate(&linear(x, gate)?, *act)?;
            linear(&linear(x, up)?.multiply(&activated)?, down)
        }
    }
}

fn activate(h: &Array, act: Activation) -> Result<Array> {
    let f = Array::from_f32;
    match act {
        Activation::Gelu => {
            let inner = erf(h.multiply(f(std::f32::consts::FRAC_1_SQRT_2))?)?;
            h.multiply(f(0.5))?.multiply(inner.add(f(1.0))?)
        }
        Activation::GeluTanh => {
            let cube = h.multiply(h)?.multiply(h)?;
            let inner = h.add(cube.multiply(f(0.044715))?)?;
            let t = tanh(&inner.multiply(f((2.0 / std::f32::consts::PI).sqrt()))?)?;
            h.multiply(f(0.5))?.multiply(t.add(f(1.0))?)
        }
        Activation::Relu => maximum(h, f(0.0)),
        Activation::Silu => h.multiply(sigmoid(h)?),
        Activation::Tanh => tanh(h),
        Activation::Identity => Ok(h.clone()),
    }
}

/// A missing bias becomes zeros, so that every projection is one `addmm`.
fn to_linear(l: &arch::Linear, dtype: Dtype) -> Result<Linear> {
    let out = l.weight.shape[0];
    let zeros = Tensor::new(vec![out], vec![0.0; out]);
    Ok(Linear {
        weight_t: to_array(&l.weight.transposed(), dtype)?,
        bias: to_array(l.bias.as_ref().unwrap_or(&zeros), dtype)?,
    })
}

fn to_norm(n: &arch::Norm, dtype: Dtype) -> Result<Norm> {
    Ok(Norm {
        kind: n.kind,
        weight: to_array(&n.weight, dtype)?,
        bias: n.bias.as_ref().map(|b| to_array(b, dtype)).transpose()?,
        eps: n.eps,
    })
}

fn to_array(t: &Tensor, dtype: Dtype) -> Result<Array> {
    let shape: Vec<i32> = t.shape.iter().map(|&d| d as i32).collect();
    // a half checkpoint goes to the device as it is stored: no f32 copy of the model
    let stored = match &t.values {
        Values::F32(v) => Array::from_slice(v, &shape),
        Values::F16(v) => Array::from_slice(v, &shape),
        Values::Bf16(v) => Array::from_slice(v, &shape),
    };
    // evaluated now, so that a converted tensor's source is freed here, not at the first call
    let array = stored.as_dtype(dtype)?;
    array.eval()?;
    Ok(array)
}
