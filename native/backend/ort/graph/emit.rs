//! Turns an `Encoder` into an ONNX graph with its weights as initializers. Inputs `input_ids`
//! and `attention_mask` ([batch, sequence], int64); output `sentence_embedding` ([batch, hidden]),
//! pooled and L2-normalised inside the graph.
use ort::editor::{Graph, Model, Node, ONNX_DOMAIN};
use ort::memory::Allocator;
use ort::operator::Attribute;
use ort::value::{Shape, Tensor as OrtTensor};

use super::int8::FirstRow;
use super::plumbing::{int64_matrix, Emitter, FLOAT, FLOAT16};
use crate::arch::{
    Activation, Attention, AttentionDirection, Encoder, FeedForward, Layer, Linear, Norm, NormKind,
    Residual, Rotary,
};
use crate::error::Result;
use crate::pooling::Pooling;

pub use crate::settings::Precision;

pub const OUTPUT: &str = "sentence_embedding";
pub const TOKEN_STATES: &str = "last_hidden_state";

/// Also outputs the final token states as `last_hidden_state` ([batch, sequence, hidden]) when
/// `token_states` is set: what other runtimes' feature-extraction pipelines expect of a file.
/// Takes the encoder's tensors as it goes (each layer is released once it is in the graph), so
/// that the weights are not held twice while the graph is built.
pub fn model(
    encoder: &mut Encoder,
    pooling: Pooling,
    max_positions: usize,
    token_states: bool,
    numerics: super::Numerics,
) -> Result<Model> {
    let precision = numerics.precision;
    // A pre-norm model's residual stream accumulates in float32 even in a half-precision graph,
    // and its softmax runs in float32: its sums grow layer by layer (gte-Qwen2 is reported to
    // overflow plain fp16).
    let wide_residual = precision == Precision::Float16 && encoder.residual == Residual::PreNorm;
    let mut g = Emitter::new(numerics, encoder.direction, wide_residual)?;
    let x = g.embeddings(encoder)?;
    encoder.word_embeddings = Default::default();
    encoder.position_embeddings = None;
    let rope = match &encoder.rotary {
        Some(rotary) => Some(g.rotary_tables(rotary, encoder.head_dim, max_positions)?),
        None => None,
    };
    let mut x = if wide_residual { g.cast(&x, FLOAT)? } else { x };
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
    if precision == Precision::Float16 && !wide_residual {
        x = g.cast(&x, FLOAT)?;
    }
    let pooled = g.pool(&x, pooling)?;
    let normalized = g.l2_normalize(&pooled)?;
    g.graph.add_node(Node::new(
        "Identity",
        ONNX_DOMAIN,
        "output",
        [normalized.as_str()],
        [OUTPUT],
        [],
    )?)?;
    if token_states {
        g.graph.add_node(Node::new(
            "Identity",
            ONNX_DOMAIN,
            "token_states",
            [x.as_str()],
            [TOKEN_STATES],
            [],
        )?)?;
    }
    g.finish(encoder.hidden, token_states)
}

/// A projection's bias times `scale` (a query scaled by 1/sqrt(head size) folds it in).
pub(super) fn scaled_bias(linear: &Linear, scale: f32) -> Option<Vec<f32>> {
    let bias = linear.bias.as_ref()?;
    Some(bias.f32().iter().map(|v| v * scale).collect())
}

/// Just below GELU's least value, -0.16997 (at x = -0.75179).
const GELU_FLOOR: f32 = -0.17;

struct RopeTables {
    cos: String,
    sin: String,
    dims: usize,
}

impl Emitter {
    fn new(
        numerics: super::Numerics,
        attention: AttentionDirection,
        wide_softmax: bool,
    ) -> Result<Self> {
        let precision = numerics.precision;
        let mut graph = Graph::new()?;
        graph.set_inputs([int64_matrix("input_ids"), int64_matrix("attention_mask")])?;
        let mut g = Emitter {
            graph,
            precision,
            count: 0,
            seq_len: String::new(),
            mask: String::new(),
            attention_bias: String::new(),
            grouped_bias: None,
            wide_softmax,
            int_constants: Default::default(),
            norm_bounds: Default::default(),
            floors: Default::default(),
            smoothed: Default::default(),
            int8: numerics.int8,
            quantized: Default::default(),
            first_rows: Default::default(),
        };
        g.seq_len = g.op(
            "Shape",
            &["input_ids"],
            vec![Attribute::new("start", 1i64)?, Attribute::new("end", 2i64)?],
        )?;
        g.mask = g.op(
            "Cast",
            &["attention_mask"],
            vec![Attribute::new("to", FLOAT)?],
        )?;
        // 0 for real tokens, -10000 for padding: large enough to vanish in softmax, small enough for fp16.
        let one = g.scalar32(1.0)?;
        let minus_one = g.op("Sub", &[&g.mask.clone(), &one], vec![])?;
        let big = g.scalar32(10000.0)?;
        let bias = g.op("Mul", &[&minus_one, &big], vec![])?;
        let axes = g.ints("axes", &[1, 2])?;
        let mut bias = g.op("Unsqueeze", &[&bias, &axes], vec![])?; // [batch, 1, 1, seq]
        if attention == AttentionDirection::Causal {
            let causal = g.causal_bias()?;
            bias = g.op("Add", &[&bias, &causal], vec![])?; // [batch, 1, seq, seq]
        }
        if precision == Precision::Float16 && !wide_softmax {
            bias = g.cast(&bias, FLOAT16)?;
        }
        g.attention_bias = bias;
        Ok(g)
    }

    /// `[seq, seq]`: -10000 above the diagonal (a later token), 0 on and below it.
    fn causal_bias(&mut self) -> Result<String> {
        let seq_len = self.seq_len.clone();
        let square = self.op(
            "Concat",
            &[&seq_len, &seq_len],
            vec![Attribute::new("axis", 0i64)?],
        )?;
        let minus = self.scalar32(-10000.0)?;
        let full = self.op("Expand", &[&minus, &square], vec![])?;
        let one = self.initializer("one", &[], &[1i64])?;
        self.op(
            "Trilu",
            &[&full, &one],
            vec![Attribute::new("upper", 1i64)?],
        )
    }

    fn embeddings(&mut self, e: &Encoder) -> Result<String> {
        let table = self.tensor("word_embeddings", &e.word_embeddings)?;
        let mut x = self.op(
            "Gather",
            &[&table, "input_ids"],
            vec![Attribute::new("axis", 0i64)?],
        )?;
        if let Some(positions) = &e.position_embeddings {
            let table = self.tensor("position_embeddings", positions)?;
            let here = self.first_rows(&table)?;
            x = self.op("Add", &[&x, &here], vec![])?;
        }
        match &e.embedding_norm {
            Some(norm) => self.norm(&x, norm),
            None => Ok(x),
        }
    }

    /// The first `sequence` rows of a position table: a Slice, not a Shape/Range/Gather chain,
    /// which ONNX Runtime's optimiser has been seen to crash on.
    fn first_rows(&mut self, table: &str) -> Result<String> {
        let zero = self.ints("zero", &[0])?;
        let seq_len = self.seq_len.clone();
        self.op("Slice", &[table, &zero, &seq_len, &zero], vec![])
    }

    fn post_norm_layer(
        &mut self,
        x: &str,
        layer: &Layer,
        e: &Encoder,
        rope: Option<&RopeTables>,
    ) -> Result<String> {
        let attended = self.attention(x, &layer.attention, e, rope)?;
        // Add then LayerNormalization: ONNX Runtime's fused SkipLayerNormalization measured
        // slower on the CPU (0.54 s against about 0.2 s for the pair, `npm run bench:profile`).
        let sum = self.op("Add", &[x, &attended], vec![])?;
        let x = self.norm(&sum, &layer.norm1)?;
        let transformed = self.feed_forward(&x, &layer.ffn)?;
        let sum = self.op("Add", &[&x, &transformed], vec![])?;
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
        let normed = if wide {
            self.norm_wide(x, &layer.norm1)?
        } else {
            self.norm(x, &layer.norm1)?
        };
        let attended = self.attention(&normed, &layer.attention, e, rope)?;
        let attended = if wide {
            self.cast(&attended, FLOAT)?
        } else {
            attended
        };
        let x = self.op("Add", &[x, &attended], vec![])?;
        let normed = if wide {
            self.norm_wide(&x, &layer.norm2)?
        } else {
            self.norm(&x, &layer.norm2)?
        };
        let transformed = self.feed_forward(&normed, &layer.ffn)?;
        let transformed = if wide {
            self.cast(&transformed, FLOAT)?
        } else {
            transformed
        };
        self.op("Add", &[&x, &transformed], vec![])
    }

    /// A float32 `x` normalised in float32, then handed on in half precision.
    fn norm_wide(&mut self, x: &str, norm: &Norm) -> Result<String> {
        let y = self.norm32(x, norm)?;
        self.cast(&y, FLOAT16)
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

    /// `x @ weight^T * scale + bias * scale`; the weight is transposed once, here.
    pub(super) fn linear(&mut self, x: &str, linear: &Linear, scale: f32) -> Result<String> {
        if self.precision == Precision::Int8 {
            return self.int8_linear(x, linear, scale, FirstRow::AsTheRest);
        }
        let bias = scaled_bias(linear, scale);
        let w = &linear.weight;
        let shape = [w.shape[1], w.shape[0]];
        let weight = self.floats_with("weight", &shape, |out| w.transpose_into(scale, out))?;
        let y = self.op("MatMul", &[x, &weight], vec![])?;
        match bias {
            Some(b) => {
                let bias = self.floats("bias", &[b.len()], &b)?;
                self.op("Add", &[&y, &bias], vec![])
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
        let half = self.precision == Precision::Float16 && !wide;
        let x32 = if half {
            self.cast(x, FLOAT)?
        } else {
            x.to_string()
        };
        let two = self.scalar32(2.0)?;
        let squares = self.op("Pow", &[&x32, &two], vec![])?;
        let mean = self.op(
            "ReduceMean",
            &[&squares],
            vec![
                Attribute::new("axes", vec![-1i64])?,
                Attribute::new("keepdims", 1i64)?,
            ],
        )?;
        let eps = self.scalar32(norm.eps)?;
        let shifted = self.op("Add", &[&mean, &eps], vec![])?;
        let rms = self.op("Sqrt", &[&shifted], vec![])?;
        let normalised = self.op("Div", &[&x32, &rms], vec![])?;
        let gamma = norm.weight.f32();
        let weight: Vec<f32> = gamma.iter().map(|w| w * scale).collect();
        let weight = self.initializer("norm_weight", &norm.weight.shape, &weight)?;
        let y = self.op("Mul", &[&normalised, &weight], vec![])?;
        let y = if half { self.cast(&y, FLOAT16)? } else { y };
        // A normalised value rarely leaves [-4, 4], so channel c stays within 4|gamma|.
        let bounds = gamma.iter().map(|g| 4.0 * g.abs()).collect();
        self.norm_bounds.insert(y.clone(), bounds);
        Ok(y)
    }

    fn layer_norm(&mut self, x: &str, norm: &Norm) -> Result<String> {
        let gamma = norm.weight.f32();
        let weight = self.floats("norm_weight", &norm.weight.shape, &gamma)?;
        let bias_data = match &norm.bias {
            Some(b) => b.f32().into_owned(),
            None => vec![0.0; gamma.len()],
        };
        let bias = self.floats("norm_bias", &norm.weight.shape, &bias_data)?;
        let y = self.op(
            "LayerNormalization",
            &[x, &weight, &bias],
            vec![
                Attribute::new("axis", -1i64)?,
                Attribute::new("epsilon", norm.eps)?,
            ],
        )?;
        // A normalised value rarely leaves [-4, 4], so channel c stays within 4|gamma| + |beta|.
        let bounds = gamma
            .iter()
            .zip(&bias_data)
            .map(|(g, b)| 4.0 * g.abs() + b.abs())
            .collect();
        self.norm_bounds.insert(y.clone(), bounds);
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
        // Three products, not one of the stacked weights and a Split (measured 5 % slower); plain
        // ops, not com.microsoft.MultiHeadAttention (0.79x to 1.36x their speed by shape, alone).
        let scale = 1.0 / (head_dim as f32).sqrt();
        let q_scale = if a.q_norm.is_some() { 1.0 } else { scale };
        let q = self.attention_projection(x, &a.q, q_scale)?;
        let k = self.attention_projection(x, &a.k, 1.0)?;
        let v = self.attention_projection(x, &a.v, 1.0)?;
        let q_heads = self.ints("shape", &[0, 0, heads, head_dim])?;
        let kv_shape = self.ints("shape", &[0, 0, kv_heads, head_dim])?;
        let mut q = self.op("Reshape", &[&q, &q_heads], vec![])?; // [batch, seq, heads, head_dim]
        let mut k = self.op("Reshape", &[&k, &kv_shape], vec![])?;
        let v = self.op("Reshape", &[&v, &kv_shape], vec![])?;
        if let Some(norm) = &a.q_norm {
            q = self.rms_norm(&q, norm, scale, false)?;
        }
        if let Some(norm) = &a.k_norm {
            k = self.rms_norm(&k, norm, 1.0, false)?;
        }
        if let Some(rope) = rope {
            q = self.rotate(&q, rope, e.head_dim)?;
            k = self.rotate(&k, rope, e.head_dim)?;
        }
        let context = if kv_heads == heads {
            let q = self.transpose(&q, &[0, 2, 1, 3])?; // [batch, heads, seq, head_dim]
            let k = self.transpose(&k, &[0, 2, 3, 1])?; // [batch, heads, head_dim, seq]
            let v = self.transpose(&v, &[0, 2, 1, 3])?;
            let bias = self.attention_bias.clone();
            let context = self.attend(&q, &k, &v, &bias)?;
            self.transpose(&context, &[0, 2, 1, 3])?
        } else {
            self.grouped(&q, &k, &v, heads / kv_heads, kv_heads, head_dim)?
        };
        let merge_heads = self.ints("shape", &[0, 0, heads * head_dim])?;
        let context = self.op("Reshape", &[&context, &merge_heads], vec![])?;
        self.linear(&context, &a.out, 1.0)
    }

    /// `softmax(q k + bias) v`; with `wide_softmax` the scores' softmax runs in float32.
    fn attend(&mut self, q: &str, k: &str, v: &str, bias: &str) -> Result<String> {
        let mut scores = self.op("MatMul", &[q, k], vec![])?;
        if self.wide_softmax {
            scores = self.cast(&scores, FLOAT)?;
        }
        let scores = self.op("Add", &[&scores, bias], vec![])?;
        let mut probs = self.op("Softmax", &[&scores], vec![Attribute::new("axis", -1i64)?])?;
        if self.wide_softmax {
            probs = self.cast(&probs, FLOAT16)?;
        }
        self.op("MatMul", &[&probs, v], vec![])
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
        let split = self.ints("shape", &[0, 0, kv_heads, groups, head_dim])?;
        let q = self.op("Reshape", &[q, &split], vec![])?;
        let q = self.transpose(&q, &[0, 2, 3, 1, 4])?;
        let axis = self.ints("axes", &[2])?;
        let k = self.transpose(k, &[0, 2, 3, 1])?; // [batch, kv_heads, head_dim, seq]
        let k = self.op("Unsqueeze", &[&k, &axis], vec![])?;
        let v = self.transpose(v, &[0, 2, 1, 3])?; // [batch, kv_heads, seq, head_dim]
        let v = self.op("Unsqueeze", &[&v, &axis], vec![])?;
        let bias = match self.grouped_bias.clone() {
            Some(bias) => bias,
            None => {
                let one = self.ints("axes", &[1])?;
                let bias = self.attention_bias.clone();
                let bias = self.op("Unsqueeze", &[&bias, &one], vec![])?;
                self.grouped_bias = Some(bias.clone());
                bias
            }
        };
        let context = self.attend(&q, &k, &v, &bias)?;
        self.transpose(&context, &[0, 3, 1, 2, 4])
    }

    /// cos and sin tables `[positions, 1, dims]` (each frequency twice: halves layout), in f32
    /// as the reference implementations compute them.
    fn rotary_tables(
        &mut self,
        rotary: &Rotary,
        head_dim: usize,
        positions: usize,
    ) -> Result<RopeTables> {
        let half = rotary.dims / 2;
        let inv_freq: Vec<f32> = (0..half)
            .map(|i| 1.0 / rotary.base.powf((2 * i) as f32 / rotary.dims as f32))
            .collect();
        let mut cos = Vec::with_capacity(positions * rotary.dims);
        let mut sin = Vec::with_capacity(positions * rotary.dims);
        for p in 0..positions {
            let angles: Vec<f32> = inv_freq.iter().map(|f| p as f32 * f).collect();
            for _ in 0..2 {
                cos.extend(angles.iter().map(|a| a.cos()));
                sin.extend(angles.iter().map(|a| a.sin()));
            }
        }
        debug_assert!(rotary.dims <= head_dim);
        let shape = [positions, 1, rotary.dims];
        let cos = self.floats("rope_cos", &shape, &cos)?;
        let sin = self.floats("rope_sin", &shape, &sin)?;
        let (cos, sin) = (self.first_rows(&cos)?, self.first_rows(&sin)?);
        Ok(RopeTables {
            cos,
            sin,
            dims: rotary.dims,
        })
    }

    /// `x * cos + rotate_half(x) * sin` on the first `rope.dims` of each head of `x` ([batch, seq, heads, head_dim]).
    fn rotate(&mut self, x: &str, rope: &RopeTables, head_dim: usize) -> Result<String> {
        let (rotated_part, rest) = if rope.dims < head_dim {
            let sizes = self.ints("split", &[rope.dims as i64, (head_dim - rope.dims) as i64])?;
            let parts = self.ops(
                "Split",
                &[x, &sizes],
                vec![Attribute::new("axis", -1i64)?],
                2,
            )?;
            (parts[0].clone(), Some(parts[1].clone()))
        } else {
            (x.to_string(), None)
        };
        let halves = self.ops(
            "Split",
            &[&rotated_part],
            vec![Attribute::new("axis", -1i64)?],
            2,
        )?;
        let negated = self.op("Neg", &[&halves[1]], vec![])?;
        let turned = self.op(
            "Concat",
            &[&negated, &halves[0]],
            vec![Attribute::new("axis", -1i64)?],
        )?;
        let a = self.op("Mul", &[&rotated_part, &rope.cos], vec![])?;
        let b = self.op("Mul", &[&turned, &rope.sin], vec![])?;
        let rotated = self.op("Add", &[&a, &b], vec![])?;
        match rest {
            Some(rest) => self.op(
                "Concat",
                &[&rotated, &rest],
                vec![Attribute::new("axis", -1i64)?],
            ),
            None => Ok(rotated),
        }
    }

    fn feed_forward(&mut self, x: &str, ffn: &FeedForward) -> Result<String> {
        match ffn {
            FeedForward::Activation { up, act, down } => {
                let h = self.linear(x, up, 1.0)?;
                let (h, floor) = match act {
                    Activation::Gelu => (self.gelu(&h)?, GELU_FLOOR),
                    Activation::Relu => (self.op("Relu", &[&h], vec![])?, 0.0),
                };
                self.floors.insert(h.clone(), floor);
                self.down_projection(&h, down)
            }
            FeedForward::SwiGlu { up, gate, down } => {
                let u = self.linear(x, up, 1.0)?;
                let g = self.linear(x, gate, 1.0)?;
                let sigmoid = self.op("Sigmoid", &[&g], vec![])?;
                let silu = self.op("Mul", &[&g, &sigmoid], vec![])?;
                let h = self.op("Mul", &[&u, &silu], vec![])?;
                self.down_projection(&h, down)
            }
        }
    }

    /// `x * 0.5 * (1 + erf(x / sqrt 2))`, in the form ONNX Runtime fuses into one Gelu kernel.
    fn gelu(&mut self, x: &str) -> Result<String> {
        let sqrt2 = self.scalar(std::f32::consts::SQRT_2)?;
        let one = self.scalar(1.0)?;
        let half = self.scalar(0.5)?;
        let d = self.op("Div", &[x, &sqrt2], vec![])?;
        let e = self.op("Erf", &[&d], vec![])?;
        let a = self.op("Add", &[&e, &one], vec![])?;
        let m = self.op("Mul", &[x, &a], vec![])?;
        self.op("Mul", &[&m, &half], vec![])
    }

    fn pool(&mut self, x: &str, pooling: Pooling) -> Result<String> {
        match pooling {
            Pooling::Cls => {
                let name = self.name("first");
                let mut index = OrtTensor::<i64>::new(&Allocator::default(), Shape::new([]))?;
                index.extract_tensor_mut().1[0] = 0;
                self.graph.add_initializer(&name, index, false)?;
                self.op("Gather", &[x, &name], vec![Attribute::new("axis", 1i64)?])
            }
            Pooling::Mean => {
                let mask = self.mask.clone();
                let axis2 = self.ints("axes", &[2])?;
                let weights = self.op("Unsqueeze", &[&mask, &axis2], vec![])?; // [batch, seq, 1]
                let masked = self.op("Mul", &[x, &weights], vec![])?;
                let axis1 = self.ints("axes", &[1])?;
                let sum = self.op(
                    "ReduceSum",
                    &[&masked, &axis1],
                    vec![Attribute::new("keepdims", 0i64)?],
                )?;
                let count = self.op(
                    "ReduceSum",
                    &[&mask, &axis1],
                    vec![Attribute::new("keepdims", 1i64)?],
                )?;
                self.op("Div", &[&sum, &count], vec![])
            }
            Pooling::LastToken => {
                // the last real token of each row: index (real tokens - 1), whatever the padding
                let axis1 = self.ints("axes", &[1])?;
                let count = self.op(
                    "ReduceSum",
                    &["attention_mask", &axis1],
                    vec![Attribute::new("keepdims", 1i64)?],
                )?;
                let one = self.initializer("one", &[], &[1i64])?;
                let last = self.op("Sub", &[&count, &one], vec![])?; // [batch, 1]
                self.op(
                    "GatherND",
                    &[x, &last],
                    vec![Attribute::new("batch_dims", 1i64)?],
                )
            }
        }
    }

    fn l2_normalize(&mut self, x: &str) -> Result<String> {
        let squares = self.op("Mul", &[x, x], vec![])?;
        let axis1 = self.ints("axes", &[1])?;
        let sum = self.op(
            "ReduceSum",
            &[&squares, &axis1],
            vec![Attribute::new("keepdims", 1i64)?],
        )?;
        let norm = self.op("Sqrt", &[&sum], vec![])?;
        let floor = self.scalar32(1e-12)?;
        let norm = self.op("Max", &[&norm, &floor], vec![])?;
        self.op("Div", &[x, &norm], vec![])
    }
}
