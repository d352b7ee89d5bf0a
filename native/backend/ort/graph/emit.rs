//! Turns an `Encoder` into an ONNX graph with its weights as initializers. Inputs `input_ids`
//! and `attention_mask` (`[batch, sequence]`, int64); output `sentence_embedding`
//! (`[batch, hidden]`), pooled: not normalised for a session (the engine normalises), normalised
//! in an exported file, which also outputs `last_hidden_state`. Each projection's precision
//! comes from `rules`; the int8 ones are built by `int8`.
use ort::editor::Model;
use ort::operator::Attribute;

use super::int8::Int8;
use super::plumbing::{float_outlet, int64_matrix, Builder, FLOAT, FLOAT16, OUTPUT, TOKEN_STATES};
use super::pool::{l2_normalize, pool};
use super::rope::{self, RopeTables};
use super::rules::{Numerics, Projection, Rule};
use crate::arch::{
    Activation, Attention, AttentionDirection, Encoder, FeedForward, Layer, Linear, Norm, NormKind,
    Residual,
};
use crate::error::Result;
use crate::pooling::Pooling;

/// With `export`, the graph of a file for other runtimes: its `sentence_embedding` normalised
/// and the final token states as `last_hidden_state` (`[batch, sequence, hidden]`), as their
/// feature-extraction pipelines expect. Takes the encoder's tensors as it goes (each layer is
/// released once it is in the graph), so that the weights are not held twice.
pub fn model(
    encoder: &mut Encoder,
    pooling: Pooling,
    max_positions: usize,
    export: bool,
    numerics: Numerics,
) -> Result<Model> {
    let half = numerics.half();
    // A pre-norm model's residual stream accumulates in float32 even in a half-precision graph,
    // and its softmax runs in float32: its sums grow layer by layer (gte-Qwen2 is reported to
    // overflow plain fp16).
    let wide_residual = half && encoder.residual == Residual::PreNorm;
    let mut g = Emitter::new(numerics, encoder.direction, wide_residual)?;
    let x = g.embeddings(encoder)?;
    encoder.word_embeddings = Default::default();
    encoder.position_embeddings = None;
    let rope = match &encoder.rotary {
        Some(rotary) => Some(rope::tables(&mut g.b, rotary, max_positions, &g.seq_len)?),
        None => None,
    };
    let mut x = if wide_residual {
        g.b.cast(&x, FLOAT)?
    } else {
        x
    };
    // each layer's tensors are released once they are in the graph
    for layer in std::mem::take(&mut encoder.layers) {
        x = match encoder.residual {
            Residual::PostNorm => g.post_norm_layer(&x, &layer, encoder, rope.as_ref())?,
            Residual::PreNorm => {
                g.pre_norm_layer(&x, &layer, encoder, rope.as_ref(), wide_residual)?
            }
        };
    }
    if let Some(norm) = &encoder.final_norm {
        x = if wide_residual {
            g.norm32(&x, norm)?
        } else {
            g.norm(&x, norm)?
        };
    }
    if half && !wide_residual {
        x = g.b.cast(&x, FLOAT)?;
    }
    let mask = g.mask.clone();
    let mut pooled = pool(&mut g.b, &x, &mask, pooling)?;
    let hidden = Some(encoder.hidden);
    let mut outputs = vec![float_outlet(OUTPUT, &["batch"], hidden)];
    if export {
        pooled = l2_normalize(&mut g.b, &pooled)?;
        g.b.identity(&x, TOKEN_STATES)?;
        outputs.push(float_outlet(TOKEN_STATES, &["batch", "sequence"], hidden));
    }
    g.b.identity(&pooled, OUTPUT)?;
    g.b.finish(outputs)
}

/// Just below GELU's least value, -0.16997 (at x = -0.75179).
const GELU_FLOOR: f32 = -0.17;

/// The transformer's graph as it is built: the builder, the values every layer reads, and the
/// int8 rules' record of the graph (int8 graphs only).
struct Emitter {
    b: Builder,
    numerics: Numerics,
    seq_len: String,
    /// The attention mask as float32.
    mask: String,
    attention_bias: String,
    /// The bias with one more axis, for grouped-query attention's 5-D scores.
    grouped_bias: Option<String>,
    /// Softmax (and the bias) in float32 in a half-precision graph.
    wide_softmax: bool,
    int8: Option<Int8>,
}

impl Emitter {
    fn new(numerics: Numerics, direction: AttentionDirection, wide_softmax: bool) -> Result<Self> {
        let inputs = vec![int64_matrix("input_ids"), int64_matrix("attention_mask")];
        let mut b = Builder::new(inputs, numerics.half())?;
        let seq_len = b.op(
            "Shape",
            &["input_ids"],
            vec![Attribute::new("start", 1i64)?, Attribute::new("end", 2i64)?],
        )?;
        let mask = b.op(
            "Cast",
            &["attention_mask"],
            vec![Attribute::new("to", FLOAT)?],
        )?;
        // 0 for real tokens, -10000 for padding: large enough to vanish in softmax, small enough for fp16.
        let one = b.scalar32(1.0)?;
        let minus_one = b.op("Sub", &[&mask, &one], vec![])?;
        let big = b.scalar32(10000.0)?;
        let bias = b.op("Mul", &[&minus_one, &big], vec![])?;
        let axes = b.ints("axes", &[1, 2])?;
        let mut bias = b.op("Unsqueeze", &[&bias, &axes], vec![])?; // [batch, 1, 1, seq]
        if direction == AttentionDirection::Causal {
            let causal = causal_bias(&mut b, &seq_len)?;
            bias = b.op("Add", &[&bias, &causal], vec![])?; // [batch, 1, seq, seq]
        }
        if numerics.half() && !wide_softmax {
            bias = b.cast(&bias, FLOAT16)?;
        }
        Ok(Emitter {
            b,
            numerics,
            seq_len,
            mask,
            attention_bias: bias,
            grouped_bias: None,
            wide_softmax,
            int8: numerics.int8().map(Int8::new),
        })
    }

    fn embeddings(&mut self, e: &Encoder) -> Result<String> {
        let table = self.b.tensor("word_embeddings", &e.word_embeddings)?;
        let mut x = self.b.op(
            "Gather",
            &[&table, "input_ids"],
            vec![Attribute::new("axis", 0i64)?],
        )?;
        if let Some(positions) = &e.position_embeddings {
            let table = self.b.tensor("position_embeddings", positions)?;
            let here = self.b.first_rows(&table, &self.seq_len)?;
            x = self.b.op("Add", &[&x, &here], vec![])?;
        }
        match &e.embedding_norm {
            Some(norm) => self.norm(&x, norm),
            None => Ok(x),
        }
    }

    fn post_norm_layer(
        &mut self,
        x: &str,
        layer: &Layer,
        e: &Encoder,
        rope: Option<&RopeTables>,
    ) -> Result<String> {
        let attended = self.attention(x, &layer.attention, e, rope)?;
        // Add then LayerNormalization: ONNX Runtime's fused SkipLayerNormalization ran slower
        // on the CPU (benchmark/README.md).
        let sum = self.b.op("Add", &[x, &attended], vec![])?;
        let x = self.norm(&sum, &layer.norm1)?;
        let transformed = self.feed_forward(&x, &layer.ffn)?;
        let sum = self.b.op("Add", &[&x, &transformed], vec![])?;
        self.norm(&sum, &layer.norm2)
    }

    /// `x + attn(norm1(x))`, then `x + ffn(norm2(x))`; with `wide`, `x` is float32 and each
    /// block runs in the graph's half precision between its norm and its sum.
    fn pre_norm_layer(
        &mut self,
        x: &str,
        layer: &Layer,
        e: &Encoder,
        rope: Option<&RopeTables>,
        wide: bool,
    ) -> Result<String> {
        let normed = self.block_norm(x, &layer.norm1, wide)?;
        let attended = self.attention(&normed, &layer.attention, e, rope)?;
        let attended = self.widened(attended, wide)?;
        let x = self.b.op("Add", &[x, &attended], vec![])?;
        let normed = self.block_norm(&x, &layer.norm2, wide)?;
        let transformed = self.feed_forward(&normed, &layer.ffn)?;
        let transformed = self.widened(transformed, wide)?;
        self.b.op("Add", &[&x, &transformed], vec![])
    }

    /// A pre-norm block's norm: with `wide`, of a float32 `x` in float32, handed on in half
    /// precision.
    fn block_norm(&mut self, x: &str, norm: &Norm, wide: bool) -> Result<String> {
        if !wide {
            return self.norm(x, norm);
        }
        let y = self.norm32(x, norm)?;
        self.b.cast(&y, FLOAT16)
    }

    fn widened(&mut self, x: String, wide: bool) -> Result<String> {
        if wide {
            self.b.cast(&x, FLOAT)
        } else {
            Ok(x)
        }
    }

    /// A float32 `x` normalised in float32 (pre-norm models' half-precision graphs).
    fn norm32(&mut self, x: &str, norm: &Norm) -> Result<String> {
        match norm.kind {
            NormKind::RmsNorm => self.rms_norm(x, norm, 1.0, true),
            NormKind::LayerNorm => Err(crate::error::Error::Internal(
                "a pre-norm LayerNorm model in half precision has no graph yet".into(),
            )),
        }
    }

    /// `x @ weight^T * scale + bias * scale` as `rules` says this projection multiplies.
    fn project(
        &mut self,
        x: &str,
        linear: &Linear,
        scale: f32,
        projection: Projection,
    ) -> Result<String> {
        match (self.numerics.rule(projection), &mut self.int8) {
            (Rule::Int8 { first_row }, Some(int8)) => {
                int8.linear(&mut self.b, x, linear, scale, first_row)
            }
            _ => self.float_linear(x, linear, scale),
        }
    }

    /// In the graph's float precision; the weight is transposed once, here.
    fn float_linear(&mut self, x: &str, linear: &Linear, scale: f32) -> Result<String> {
        let bias = linear.scaled_bias(scale);
        let w = &linear.weight;
        let shape = [w.shape[1], w.shape[0]];
        let weight = self
            .b
            .floats_with("weight", &shape, |out| w.transpose_into(scale, out))?;
        let y = self.b.op("MatMul", &[x, &weight], vec![])?;
        match bias {
            Some(bias) => {
                let bias = self.b.floats("bias", &[bias.len()], &bias)?;
                self.b.op("Add", &[&y, &bias], vec![])
            }
            None => Ok(y),
        }
    }

    fn norm(&mut self, x: &str, norm: &Norm) -> Result<String> {
        match norm.kind {
            NormKind::LayerNorm => self.layer_norm(x, norm),
            NormKind::RmsNorm => self.rms_norm(x, norm, 1.0, false),
        }
    }

    /// `x / sqrt(mean(x^2) + eps) * weight * scale` over the last axis, in float32 (a half
    /// precision `x` is widened for it), as the ops ONNX Runtime fuses into
    /// SimplifiedLayerNormalization. `wide`: `x` is float32 already and the result stays so.
    fn rms_norm(&mut self, x: &str, norm: &Norm, scale: f32, wide: bool) -> Result<String> {
        let half = self.numerics.half() && !wide;
        let b = &mut self.b;
        let x32 = if half {
            b.cast(x, FLOAT)?
        } else {
            x.to_string()
        };
        let two = b.scalar32(2.0)?;
        let squares = b.op("Pow", &[&x32, &two], vec![])?;
        let mean = b.op(
            "ReduceMean",
            &[&squares],
            vec![
                Attribute::new("axes", vec![-1i64])?,
                Attribute::new("keepdims", 1i64)?,
            ],
        )?;
        let eps = b.scalar32(norm.eps)?;
        let shifted = b.op("Add", &[&mean, &eps], vec![])?;
        let rms = b.op("Sqrt", &[&shifted], vec![])?;
        let normalised = b.op("Div", &[&x32, &rms], vec![])?;
        let gamma = norm.weight.f32();
        let weight: Vec<f32> = gamma.iter().map(|w| w * scale).collect();
        let weight = b.initializer("norm_weight", &norm.weight.shape, &weight)?;
        let y = b.op("Mul", &[&normalised, &weight], vec![])?;
        let y = if half { b.cast(&y, FLOAT16)? } else { y };
        if let Some(int8) = &mut self.int8 {
            // A normalised value rarely leaves [-4, 4], so channel c stays within 4|gamma|.
            int8.note_norm(&y, gamma.iter().map(|g| 4.0 * g.abs()).collect());
        }
        Ok(y)
    }

    fn layer_norm(&mut self, x: &str, norm: &Norm) -> Result<String> {
        let gamma = norm.weight.f32();
        let weight = self.b.floats("norm_weight", &norm.weight.shape, &gamma)?;
        let beta = match &norm.bias {
            Some(b) => b.f32().into_owned(),
            None => vec![0.0; gamma.len()],
        };
        let bias = self.b.floats("norm_bias", &norm.weight.shape, &beta)?;
        let y = self.b.op(
            "LayerNormalization",
            &[x, &weight, &bias],
            vec![
                Attribute::new("axis", -1i64)?,
                Attribute::new("epsilon", norm.eps)?,
            ],
        )?;
        if let Some(int8) = &mut self.int8 {
            // A normalised value rarely leaves [-4, 4], so channel c stays within 4|gamma| + |beta|.
            let bounds = gamma
                .iter()
                .zip(&beta)
                .map(|(g, b)| 4.0 * g.abs() + b.abs());
            int8.note_norm(&y, bounds.collect());
        }
        Ok(y)
    }

    fn attention(
        &mut self,
        x: &str,
        a: &Attention,
        e: &Encoder,
        rope: Option<&RopeTables>,
    ) -> Result<String> {
        let (heads, kv_heads, head_dim) = (e.heads as i64, e.kv_heads as i64, e.head_dim as i64);
        // 1/sqrt(head_dim) folded into the query projection (rotary is linear, so it commutes),
        // or into q's per-head norm when there is one (a norm after the projection would undo it).
        // Three products, not one of the stacked weights and a Split, and plain ops, not
        // com.microsoft.MultiHeadAttention: both measured slower (benchmark/README.md).
        let scale = 1.0 / (head_dim as f32).sqrt();
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
        if let Some(rope) = rope {
            q = rope::rotate(&mut self.b, &q, rope, e.head_dim)?;
            k = rope::rotate(&mut self.b, &k, rope, e.head_dim)?;
        }
        let context = if kv_heads == heads {
            let q = self.b.transpose(&q, &[0, 2, 1, 3])?; // [batch, heads, seq, head_dim]
            let k = self.b.transpose(&k, &[0, 2, 3, 1])?; // [batch, heads, head_dim, seq]
            let v = self.b.transpose(&v, &[0, 2, 1, 3])?;
            let bias = self.attention_bias.clone();
            let context = self.attend(&q, &k, &v, &bias)?;
            self.b.transpose(&context, &[0, 2, 1, 3])?
        } else {
            self.grouped(&q, &k, &v, heads / kv_heads, kv_heads, head_dim)?
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
        groups: i64,
        kv_heads: i64,
        head_dim: i64,
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
        let bias = match self.grouped_bias.clone() {
            Some(bias) => bias,
            None => {
                let one = self.b.ints("axes", &[1])?;
                let bias = self.attention_bias.clone();
                let bias = self.b.op("Unsqueeze", &[&bias, &one], vec![])?;
                self.grouped_bias = Some(bias.clone());
                bias
            }
        };
        let context = self.attend(&q, &k, &v, &bias)?;
        self.b.transpose(&context, &[0, 3, 1, 2, 4])
    }

    fn feed_forward(&mut self, x: &str, ffn: &FeedForward) -> Result<String> {
        match ffn {
            FeedForward::Activation { up, act, down } => {
                let h = self.project(x, up, 1.0, Projection::FeedForwardUp)?;
                let (h, floor) = match act {
                    Activation::Gelu => (self.gelu(&h)?, GELU_FLOOR),
                    Activation::Relu => (self.b.op("Relu", &[&h], vec![])?, 0.0),
                };
                if let Some(int8) = &mut self.int8 {
                    int8.note_floor(&h, floor);
                }
                let down_rule = Projection::FeedForwardDown { bounded: true };
                self.project(&h, down, 1.0, down_rule)
            }
            FeedForward::SwiGlu { up, gate, down } => {
                let u = self.project(x, up, 1.0, Projection::FeedForwardUp)?;
                let g = self.project(x, gate, 1.0, Projection::FeedForwardUp)?;
                let sigmoid = self.b.op("Sigmoid", &[&g], vec![])?;
                let silu = self.b.op("Mul", &[&g, &sigmoid], vec![])?;
                let h = self.b.op("Mul", &[&u, &silu], vec![])?;
                let down_rule = Projection::FeedForwardDown { bounded: false };
                self.project(&h, down, 1.0, down_rule)
            }
        }
    }

    /// `x * 0.5 * (1 + erf(x / sqrt 2))`, in the form ONNX Runtime fuses into one Gelu kernel.
    fn gelu(&mut self, x: &str) -> Result<String> {
        let b = &mut self.b;
        let sqrt2 = b.scalar(std::f32::consts::SQRT_2)?;
        let one = b.scalar(1.0)?;
        let half = b.scalar(0.5)?;
        let d = b.op("Div", &[x, &sqrt2], vec![])?;
        let e = b.op("Erf", &[&d], vec![])?;
        let a = b.op("Add", &[&e, &one], vec![])?;
        let m = b.op("Mul", &[x, &a], vec![])?;
        b.op("Mul", &[&m, &half], vec![])
    }
}

/// `[seq, seq]`: -10000 above the diagonal (a later token), 0 on and below it.
fn causal_bias(b: &mut Builder, seq_len: &str) -> Result<String> {
    let square = b.op(
        "Concat",
        &[seq_len, seq_len],
        vec![Attribute::new("axis", 0i64)?],
    )?;
    let minus = b.scalar32(-10000.0)?;
    let full = b.op("Expand", &[&minus, &square], vec![])?;
    let one = b.initializer("one", &[], &[1i64])?;
    b.op(
        "Trilu",
        &[&full, &one],
        vec![Attribute::new("upper", 1i64)?],
    )
}
