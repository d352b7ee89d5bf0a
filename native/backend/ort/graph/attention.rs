//! Attention as graph operations, with the masks of `masks.rs`.
use ort::operator::Attribute;

use super::emit::Emitter;
use super::plumbing::{FLOAT, FLOAT16};
use super::rope;
use super::rules::Projection;
use crate::arch::{Encoder, Layer};
use crate::error::Result;

impl Emitter {
    /// The layer's attention over `x`, with its rotary tables and, on a sliding layer, the
    /// window's mask.
    pub(super) fn attention(&mut self, x: &str, layer: &Layer, e: &Encoder) -> Result<String> {
        let a = &layer.attention;
        let (heads, kv_heads, head_dim) = (e.heads as i64, e.kv_heads as i64, e.head_dim as i64);
        // The scale folded into the query projection (rotary is linear, so it commutes), or
        // into q's per-head norm when there is one (a norm after the projection would undo it).
        // Three products, not one of the stacked weights and a Split, and plain ops, not
        // com.microsoft.MultiHeadAttention: both measured slower (benchmark/README.md).
        let scale = e.attention_scale;
        let sliding = layer.sliding && self.masks.window.is_some();
        let q_scale = if a.q_norm.is_some() { 1.0 } else { scale };
        let q = self.project(x, &a.q, q_scale, Projection::AttentionInput)?;
        let k = self.project(x, &a.k, 1.0, Projection::AttentionInput)?;
        let v = self.project(x, &a.v, 1.0, Projection::AttentionInput)?;
        let q_heads = self.b.ints("shape", &[0, 0, heads, head_dim])?;
        let kv_shape = self.b.ints("shape", &[0, 0, kv_heads, head_dim])?;
        let mut q = self.b.op("Reshape", &[&q, &q_heads], vec![])?; // [batch, seq, heads, head_dim]
        let mut k = self.b.op("Reshape", &[&k, &kv_shape], vec![])?;
        let v = self.b.op("Reshape", &[&v, &kv_shape], vec![])?;
        if let Some(norm) = &a.q_norm {
            q = self.rms_norm(&q, norm, scale, false)?;
        }
        if let Some(norm) = &a.k_norm {
            k = self.rms_norm(&k, norm, 1.0, false)?;
        }
        if let Some(rope) = self.rope_of(layer.sliding).cloned() {
            q = rope::rotate(&mut self.b, &q, &rope, e.head_dim)?;
            k = rope::rotate(&mut self.b, &k, &rope, e.head_dim)?;
        }
        let context = if kv_heads == heads {
            let q = self.b.transpose(&q, &[0, 2, 1, 3])?; // [batch, heads, seq, head_dim]
            let k = self.b.transpose(&k, &[0, 2, 3, 1])?; // [batch, heads, head_dim, seq]
            let v = self.b.transpose(&v, &[0, 2, 1, 3])?;
            let bias = self.masks.bias(&mut self.b, sliding, false)?;
            let context = self.attend(&q, &k, &v, &bias)?;
            self.b.transpose(&context, &[0, 2, 1, 3])?
        } else {
            let bias = self.masks.bias(&mut self.b, sliding, true)?;
            self.grouped(&q, &k, &v, &bias, [heads / kv_heads, kv_heads, head_dim])?
        };
        let merge_heads = self.b.ints("shape", &[0, 0, heads * head_dim])?;
        let context = self.b.op("Reshape", &[&context, &merge_heads], vec![])?;
        self.project(&context, &a.out, 1.0, Projection::AttentionOutput)
    }

    /// `softmax(q k + bias) v`; with `wide_softmax` the scores' softmax runs in float32.
    fn attend(&mut self, q: &str, k: &str, v: &str, bias: &str) -> Result<String> {
        let mut scores = self.b.op("MatMul", &[q, k], vec![])?;
        if self.wide_softmax {
            scores = self.b.cast(&scores, FLOAT)?;
        }
        let scores = self.b.op("Add", &[&scores, bias], vec![])?;
        let mut probs = self
            .b
            .op("Softmax", &[&scores], vec![Attribute::new("axis", -1i64)?])?;
        if self.wide_softmax {
            probs = self.b.cast(&probs, FLOAT16)?;
        }
        self.b.op("MatMul", &[&probs, v], vec![])
    }

    /// Grouped-query attention without copying k and v per query head: q as
    /// `[batch, kv_heads, groups, seq, head_dim]` against k and v with a broadcast group axis
    /// (query head h reads key/value head h / groups, as transformers' `repeat_kv` lays it out).
    /// Returns `[batch, seq, kv_heads, groups, head_dim]`.
    fn grouped(
        &mut self,
        q: &str,
        k: &str,
        v: &str,
        bias: &str,
        [groups, kv_heads, head_dim]: [i64; 3],
    ) -> Result<String> {
        let b = &mut self.b;
        let split = b.ints("shape", &[0, 0, kv_heads, groups, head_dim])?;
        let q = b.op("Reshape", &[q, &split], vec![])?;
        let q = b.transpose(&q, &[0, 2, 3, 1, 4])?;
        let axis = b.ints("axes", &[2])?;
        let k = b.transpose(k, &[0, 2, 3, 1])?; // [batch, kv_heads, head_dim, seq]
        let k = b.op("Unsqueeze", &[&k, &axis], vec![])?;
        let v = b.transpose(v, &[0, 2, 1, 3])?; // [batch, kv_heads, seq, head_dim]
        let v = b.op("Unsqueeze", &[&v, &axis], vec![])?;
        let context = self.attend(&q, &k, &v, bias)?;
        self.b.transpose(&context, &[0, 3, 1, 2, 4])
    }
}
