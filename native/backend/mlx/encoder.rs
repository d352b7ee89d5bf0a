//! The encoder of `arch::Encoder` as MLX operations: MLX's fused kernels for layer norm,
//! rotary embedding and attention, matrix products with the bias folded in (`addmm`).
use mlx_rs::error::Exception;
use mlx_rs::fast::{self, ScaledDotProductAttentionMask};
use mlx_rs::ops::indexing::take_axis;
use mlx_rs::ops::{addmm, erf, maximum, multiply, reshape, sigmoid, sum_axis, transpose_axes};
use mlx_rs::{Array, Dtype};

use crate::arch::{self, Activation, FeedForward};
use crate::pooling::Pooling;
use crate::weights::Tensor;

type Result<T> = std::result::Result<T, Exception>;

/// `x @ weight^T + bias`, with the weight transposed once at load.
struct Linear {
    weight_t: Array,
    bias: Array,
}

struct Norm {
    weight: Array,
    bias: Array,
    eps: f32,
}

struct Layer {
    attention: arch::Attention<Linear>,
    norm1: Norm,
    ffn: FeedForward<Linear>,
    norm2: Norm,
}

pub struct Encoder {
    hidden: usize,
    heads: usize,
    word_embeddings: Array,
    position_embeddings: Option<Array>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    rotary: Option<arch::Rotary>,
    pooling: Pooling,
    dtype: Dtype,
}

/// A token batch as MLX sees it: `[rows, seq]` ids and mask.
pub struct Tokens<'a> {
    pub rows: usize,
    pub seq: usize,
    pub input_ids: &'a [i64],
    pub attention_mask: &'a [i64],
}

impl Encoder {
    /// Copies the weights of `spec` into MLX arrays of `dtype` (float32 or float16).
    pub fn new(spec: arch::Encoder, pooling: Pooling, dtype: Dtype) -> Result<Self> {
        let array = |t: &Tensor| to_array(t, dtype);
        let layers = spec
            .layers
            .iter()
            .map(|l| layer(l, dtype))
            .collect::<Result<_>>()?;
        Ok(Encoder {
            hidden: spec.hidden,
            heads: spec.heads,
            word_embeddings: array(&spec.word_embeddings)?,
            position_embeddings: spec.position_embeddings.as_ref().map(array).transpose()?,
            embedding_norm: norm(&spec.embedding_norm, dtype)?,
            layers,
            rotary: spec.rotary,
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
        let keep = Array::from_slice(&keep, &[rows, 1, 1, seq]);
        let mut x = self.embed(&ids, tokens.seq)?;
        for layer in &self.layers {
            x = self.layer(layer, &x, tokens, &keep)?;
        }
        let pooled = self.pool(&x, tokens)?.as_dtype(Dtype::Float32)?;
        pooled.eval()?;
        Ok(pooled.as_slice::<f32>().to_vec())
    }

    /// `[rows * seq, hidden]`
    fn embed(&self, ids: &Array, seq: usize) -> Result<Array> {
        let mut x = take_axis(&self.word_embeddings, ids, 0)?;
        if let Some(table) = &self.position_embeddings {
            let positions = Array::from_iter(0..seq as i32, &[seq as i32]);
            let positions = take_axis(table, &positions, 0)?;
            let rows = ids.shape()[0] / seq as i32;
            x = reshape(&x, &[rows, seq as i32, self.hidden as i32])?.add(&positions)?;
            x = reshape(&x, &[-1, self.hidden as i32])?;
        }
        layer_norm(&x, &self.embedding_norm)
    }

    fn layer(&self, l: &Layer, x: &Array, t: &Tokens, keep: &Array) -> Result<Array> {
        let attended = self.attention(l, x, t, keep)?;
        let x = layer_norm(&x.add(&attended)?, &l.norm1)?;
        let fed = feed_forward(&l.ffn, &x)?;
        layer_norm(&x.add(&fed)?, &l.norm2)
    }

    fn attention(&self, l: &Layer, x: &Array, t: &Tokens, keep: &Array) -> Result<Array> {
        let head_dim = (self.hidden / self.heads) as i32;
        let heads = |a: Array| -> Result<Array> {
            let a = reshape(
                &a,
                &[t.rows as i32, t.seq as i32, self.heads as i32, head_dim],
            )?;
            transpose_axes(&a, &[0, 2, 1, 3])
        };
        let (mut q, mut k) = (
            heads(linear(x, &l.attention.q)?)?,
            heads(linear(x, &l.attention.k)?)?,
        );
        let v = heads(linear(x, &l.attention.v)?)?;
        if let Some(r) = &self.rotary {
            q = fast::rope(&q, r.dims as i32, false, r.base, 1.0, 0, None)?;
            k = fast::rope(&k, r.dims as i32, false, r.base, 1.0, 0, None)?;
        }
        let scale = 1.0 / (head_dim as f32).sqrt();
        let mask = ScaledDotProductAttentionMask::Array(keep);
        let o = fast::scaled_dot_product_attention(&q, &k, &v, scale, mask, None)?;
        let o = reshape(
            &transpose_axes(&o, &[0, 2, 1, 3])?,
            &[-1, self.hidden as i32],
        )?;
        linear(&o, &l.attention.out)
    }

    /// CLS: the first token of each row; mean: the average over real (unmasked) tokens, in f32.
    fn pool(&self, x: &Array, t: &Tokens) -> Result<Array> {
        let x = reshape(x, &[t.rows as i32, t.seq as i32, self.hidden as i32])?;
        match self.pooling {
            Pooling::Cls => take_axis(&x, Array::from_int(0), 1),
            Pooling::Mean => {
                let mask: Vec<f32> = t.attention_mask.iter().map(|&m| m as f32).collect();
                let mask = Array::from_slice(&mask, &[t.rows as i32, t.seq as i32, 1]);
                let x = x.as_dtype(Dtype::Float32)?;
                let total = sum_axis(&multiply(&x, &mask)?, 1, false)?;
                total.divide(&sum_axis(&mask, 1, false)?)
            }
        }
        .and_then(|pooled| pooled.as_dtype(self.dtype))
    }
}

fn linear(x: &Array, l: &Linear) -> Result<Array> {
    addmm(&l.bias, x, &l.weight_t, 1.0, 1.0)
}

fn layer_norm(x: &Array, n: &Norm) -> Result<Array> {
    fast::layer_norm(x, &n.weight, &n.bias, n.eps)
}

fn feed_forward(ffn: &FeedForward<Linear>, x: &Array) -> Result<Array> {
    match ffn {
        FeedForward::Activation { up, act, down } => {
            let h = linear(x, up)?;
            let h = match act {
                Activation::Gelu => {
                    let inner = erf(h.multiply(Array::from_f32(std::f32::consts::FRAC_1_SQRT_2))?)?;
                    h.multiply(Array::from_f32(0.5))?
                        .multiply(inner.add(Array::from_f32(1.0))?)?
                }
                Activation::Relu => maximum(&h, Array::from_f32(0.0))?,
            };
            linear(&h, down)
        }
        FeedForward::SwiGlu { up, gate, down } => {
            let g = linear(x, gate)?;
            let silu = g.multiply(sigmoid(&g)?)?;
            linear(&linear(x, up)?.multiply(&silu)?, down)
        }
    }
}

fn layer(l: &arch::Layer, dtype: Dtype) -> Result<Layer> {
    let linear = |x: &arch::Linear| to_linear(x, dtype);
    Ok(Layer {
        attention: l.attention.try_map(linear)?,
        norm1: norm(&l.norm1, dtype)?,
        ffn: l.ffn.try_map(linear)?,
        norm2: norm(&l.norm2, dtype)?,
    })
}

/// A missing bias becomes zeros, so that every projection is one `addmm`.
fn to_linear(l: &arch::Linear, dtype: Dtype) -> Result<Linear> {
    let out = l.weight.shape[0];
    let zeros = Tensor {
        shape: vec![out],
        data: vec![0.0; out],
    };
    Ok(Linear {
        weight_t: to_array(&l.weight.transposed(), dtype)?,
        bias: to_array(l.bias.as_ref().unwrap_or(&zeros), dtype)?,
    })
}

fn norm(n: &arch::Norm, dtype: Dtype) -> Result<Norm> {
    Ok(Norm {
        weight: to_array(&n.weight, dtype)?,
        bias: to_array(&n.bias, dtype)?,
        eps: n.eps,
    })
}

fn to_array(t: &Tensor, dtype: Dtype) -> Result<Array> {
    let shape: Vec<i32> = t.shape.iter().map(|&d| d as i32).collect();
    Array::from_slice(&t.data, &shape).as_dtype(dtype)
}
