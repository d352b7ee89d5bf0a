//! Turns an `Encoder` into an ONNX graph with its weights as initializers. Inputs `input_ids`
//! and `attention_mask` ([batch, sequence], int64); output `sentence_embedding` ([batch, hidden]),
//! pooled and L2-normalised inside the graph.
use ort::editor::{Graph, Model, Node, Opset, ONNX_DOMAIN};
use ort::memory::Allocator;
use ort::operator::Attribute;
use ort::value::{
    Outlet, Shape, SymbolicDimensions, Tensor as OrtTensor, TensorElementType, ValueType,
};

use crate::arch::{Activation, Attention, Encoder, FeedForward, Layer, Linear, Norm, Rotary};
use crate::error::Result;
use crate::pooling::Pooling;
use crate::weights::Tensor;

const OPSET: u32 = 17;
/// ONNX's TensorProto data types, for Cast.
const FLOAT: i64 = 1;
const FLOAT16: i64 = 10;
/// ONNX Runtime's contrib operators (DynamicQuantizeMatMul).
const MS_DOMAIN: &str = "com.microsoft";
/// Largest weight magnitude around the zero point 128 of the uint8 weights. uint8, not int8:
/// ONNX Runtime's uint8 x int8 kernels on x86 without VNNI sum pairs of products in 16 bits,
/// which saturate unless weights keep to 7 bits; 7-bit int8 weights measured less faithful (min
/// cosine to float32 0.9948 against 0.9959 over 600 code symbols) and no faster (1.13x both).
const INT8_LEVELS: f32 = 127.0;

pub use crate::settings::Precision;

pub const OUTPUT: &str = "sentence_embedding";
pub const TOKEN_STATES: &str = "last_hidden_state";

/// Also outputs the final token states as `last_hidden_state` ([batch, sequence, hidden]) when
/// `token_states` is set: what other runtimes' feature-extraction pipelines expect of a file.
pub fn model(
    encoder: &Encoder,
    pooling: Pooling,
    max_positions: usize,
    token_states: bool,
    precision: Precision,
) -> Result<Model> {
    let mut g = Emitter::new(precision)?;
    let x = g.embeddings(encoder)?;
    let rope = match &encoder.rotary {
        Some(rotary) => Some(g.rotary_tables(rotary, encoder.head_dim(), max_positions)?),
        None => None,
    };
    let mut x = x;
    for layer in &encoder.layers {
        x = g.layer(&x, layer, encoder, rope.as_ref())?;
    }
    if precision == Precision::Float16 {
        x = g.op("Cast", &[&x], vec![Attribute::new("to", FLOAT)?])?;
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

struct Emitter {
    graph: Graph,
    precision: Precision,
    count: usize,
    seq_len: String,
    mask: String,
    attention_bias: String,
    int_constants: std::collections::HashMap<Vec<i64>, String>,
    /// Per-channel magnitude bound of each LayerNorm output (int8: smoothing its consumers).
    norm_bounds: std::collections::HashMap<String, Vec<f32>>,
    /// The smoothed copy of each LayerNorm output, shared by the projections that read it.
    smoothed: std::collections::HashMap<String, (String, Vec<f32>)>,
}

struct RopeTables {
    cos: String,
    sin: String,
    dims: usize,
}

fn int64_matrix(name: &str) -> Outlet {
    Outlet::new(
        name,
        ValueType::Tensor {
            ty: TensorElementType::Int64,
            shape: Shape::new([-1, -1]),
            dimension_symbols: SymbolicDimensions::new([
                "batch".to_string(),
                "sequence".to_string(),
            ]),
        },
    )
}

impl Emitter {
    fn new(precision: Precision) -> Result<Self> {
        let mut graph = Graph::new()?;
        graph.set_inputs([int64_matrix("input_ids"), int64_matrix("attention_mask")])?;
        let mut g = Emitter {
            graph,
            precision,
            count: 0,
            seq_len: String::new(),
            mask: String::new(),
            attention_bias: String::new(),
            int_constants: Default::default(),
            norm_bounds: Default::default(),
            smoothed: Default::default(),
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
        let mut bias = g.op("Mul", &[&minus_one, &big], vec![])?;
        if precision == Precision::Float16 {
            bias = g.op("Cast", &[&bias], vec![Attribute::new("to", FLOAT16)?])?;
        }
        let axes = g.ints("axes", &[1, 2])?;
        g.attention_bias = g.op("Unsqueeze", &[&bias, &axes], vec![])?; // [batch, 1, 1, seq]
        Ok(g)
    }

    fn finish(mut self, hidden: usize, token_states: bool) -> Result<Model> {
        let floats = |name: &str, dims: &[&str]| {
            let mut shape: Vec<i64> = dims.iter().map(|_| -1).collect();
            shape.push(hidden as i64);
            let mut symbols: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
            symbols.push(String::new());
            Outlet::new(
                name,
                ValueType::Tensor {
                    ty: TensorElementType::Float32,
                    shape: Shape::new(shape),
                    dimension_symbols: SymbolicDimensions::new(symbols),
                },
            )
        };
        let mut outputs = vec![floats(OUTPUT, &["batch"])];
        if token_states {
            outputs.push(floats(TOKEN_STATES, &["batch", "sequence"]));
        }
        self.graph.set_outputs(outputs)?;
        let mut model = Model::new([Opset::new(ONNX_DOMAIN, OPSET)?, Opset::new(MS_DOMAIN, 1)?])?;
        model.set_graph(self.graph)?;
        Ok(model)
    }

    fn name(&mut self, hint: &str) -> String {
        self.count += 1;
        format!("{hint}_{}", self.count)
    }

    /// Adds a one-output node and returns its output's name.
    fn op(&mut self, op: &str, inputs: &[&str], attributes: Vec<Attribute>) -> Result<String> {
        Ok(self.ops(op, inputs, attributes, 1)?.remove(0))
    }

    fn ops(
        &mut self,
        op: &str,
        inputs: &[&str],
        attributes: Vec<Attribute>,
        outputs: usize,
    ) -> Result<Vec<String>> {
        self.ops_in(ONNX_DOMAIN, op, inputs, attributes, outputs)
    }

    fn ops_in(
        &mut self,
        domain: &str,
        op: &str,
        inputs: &[&str],
        attributes: Vec<Attribute>,
        outputs: usize,
    ) -> Result<Vec<String>> {
        let node = self.name(op);
        let names: Vec<String> = (0..outputs).map(|i| format!("{node}:{i}")).collect();
        self.graph
            .add_node(Node::new(op, domain, &node, inputs, &names, attributes)?)?;
        Ok(names)
    }

    /// Weights and constants that meet the activations: half precision in a Float16 graph.
    fn floats(&mut self, hint: &str, shape: &[usize], data: &[f32]) -> Result<String> {
        if self.precision == Precision::Float16 {
            let halves: Vec<half::f16> = data.iter().map(|&v| half::f16::from_f32(v)).collect();
            return self.initializer(hint, shape, &halves);
        }
        self.initializer(hint, shape, data)
    }

    fn initializer<T>(&mut self, hint: &str, shape: &[usize], data: &[T]) -> Result<String>
    where
        T: ort::value::PrimitiveTensorElementType + Copy + std::fmt::Debug + 'static,
    {
        let name = self.name(hint);
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let mut tensor = OrtTensor::<T>::new(&Allocator::default(), Shape::new(dims))?;
        tensor.extract_tensor_mut().1.copy_from_slice(data);
        // External: ONNX Runtime keeps using this buffer instead of copying it into the model
        // (it accepts that only from 128 bytes up).
        let external = std::mem::size_of_val(data) >= 128;
        self.graph.add_initializer(&name, tensor, external)?;
        Ok(name)
    }

    /// A 1-D int64 constant; each distinct value is one initializer, shared by every layer.
    fn ints(&mut self, hint: &str, data: &[i64]) -> Result<String> {
        if let Some(name) = self.int_constants.get(data) {
            return Ok(name.clone());
        }
        let name = self.name(hint);
        let mut tensor =
            OrtTensor::<i64>::new(&Allocator::default(), Shape::new([data.len() as i64]))?;
        tensor.extract_tensor_mut().1.copy_from_slice(data);
        self.graph.add_initializer(&name, tensor, false)?;
        self.int_constants.insert(data.to_vec(), name.clone());
        Ok(name)
    }

    fn scalar(&mut self, value: f32) -> Result<String> {
        self.floats("const", &[], &[value])
    }

    /// A float32 constant whatever the precision: for the mask, pooling and normalisation.
    fn scalar32(&mut self, value: f32) -> Result<String> {
        self.initializer("const", &[], &[value])
    }

    fn embeddings(&mut self, e: &Encoder) -> Result<String> {
        let table = self.floats(
            "word_embeddings",
            &e.word_embeddings.shape,
            &e.word_embeddings.data,
        )?;
        let mut x = self.op(
            "Gather",
            &[&table, "input_ids"],
            vec![Attribute::new("axis", 0i64)?],
        )?;
        if let Some(positions) = &e.position_embeddings {
            let table = self.floats("position_embeddings", &positions.shape, &positions.data)?;
            let here = self.first_rows(&table)?;
            x = self.op("Add", &[&x, &here], vec![])?;
        }
        self.layer_norm(&x, &e.embedding_norm)
    }

    /// The first `sequence` rows of a position table: a Slice, not a Shape/Range/Gather chain,
    /// which ONNX Runtime's optimiser has been seen to crash on.
    fn first_rows(&mut self, table: &str) -> Result<String> {
        let zero = self.ints("zero", &[0])?;
        let seq_len = self.seq_len.clone();
        self.op("Slice", &[table, &zero, &seq_len, &zero], vec![])
    }

    fn layer(
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
        let x = self.layer_norm(&sum, &layer.norm1)?;
        let transformed = self.feed_forward(&x, &layer.ffn)?;
        let sum = self.op("Add", &[&x, &transformed], vec![])?;
        self.layer_norm(&sum, &layer.norm2)
    }

    /// `x @ weight^T * scale + bias * scale`; the weight is transposed once, here.
    fn linear(&mut self, x: &str, linear: &Linear, scale: f32) -> Result<String> {
        let mut w = linear.weight.transposed();
        if scale != 1.0 {
            w.data.iter_mut().for_each(|v| *v *= scale);
        }
        let bias: Option<Vec<f32>> = linear
            .bias
            .as_ref()
            .map(|b| b.data.iter().map(|v| v * scale).collect());
        if self.precision == Precision::Int8 {
            if let Some((smoothed, factors)) = self.smoothed(x)? {
                let cols = w.shape[1];
                for (row, f) in w.data.chunks_exact_mut(cols).zip(&factors) {
                    row.iter_mut().for_each(|v| *v *= f);
                }
                return self.quantized_linear(&smoothed, &w, bias.as_deref());
            }
            return self.quantized_linear(x, &w, bias.as_deref());
        }
        let weight = self.floats("weight", &w.shape, &w.data)?;
        let y = self.op("MatMul", &[x, &weight], vec![])?;
        match bias {
            Some(b) => {
                let bias = self.floats("bias", &[b.len()], &b)?;
                self.op("Add", &[&y, &bias], vec![])
            }
            None => Ok(y),
        }
    }

    /// `x @ w + bias` for `w` (`[in, out]`) quantised symmetrically per output column; ONNX
    /// Runtime's DynamicQuantizeMatMul quantises `x` to uint8 per call (one scale per tensor),
    /// multiplies in integers and adds the bias.
    fn quantized_linear(&mut self, x: &str, w: &Tensor, bias: Option<&[f32]>) -> Result<String> {
        let cols = w.shape[1];
        let mut scales = vec![0f32; cols];
        for row in w.data.chunks_exact(cols) {
            for (s, v) in scales.iter_mut().zip(row) {
                *s = s.max(v.abs());
            }
        }
        scales
            .iter_mut()
            .for_each(|s| *s = if *s > 0.0 { *s / INT8_LEVELS } else { 1.0 });
        let quantized: Vec<u8> = w
            .data
            .iter()
            .enumerate()
            .map(|(i, v)| ((v / scales[i % cols]).round() + 128.0) as u8)
            .collect();
        let weight = self.initializer("weight_uint8", &w.shape, &quantized)?;
        let scale = self.floats("weight_scale", &[cols], &scales)?;
        let zero = self.initializer("weight_zero", &[cols], &vec![128u8; cols])?;
        let mut inputs = vec![x.to_string(), weight, scale, zero];
        if let Some(b) = bias {
            inputs.push(self.floats("bias", &[cols], b)?);
        }
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        Ok(self
            .ops_in(MS_DOMAIN, "DynamicQuantizeMatMul", &inputs, vec![], 1)?
            .remove(0))
    }

    fn layer_norm(&mut self, x: &str, norm: &Norm) -> Result<String> {
        let weight = self.floats("norm_weight", &norm.weight.shape, &norm.weight.data)?;
        let bias = self.floats("norm_bias", &norm.bias.shape, &norm.bias.data)?;
        let y = self.op(
            "LayerNormalization",
            &[x, &weight, &bias],
            vec![
                Attribute::new("axis", -1i64)?,
                Attribute::new("epsilon", norm.eps)?,
            ],
        )?;
        // A normalised value rarely leaves [-4, 4], so channel c stays within 4|gamma| + |beta|.
        let bounds = norm
            .weight
            .data
            .iter()
            .zip(&norm.bias.data)
            .map(|(g, b)| 4.0 * g.abs() + b.abs())
            .collect();
        self.norm_bounds.insert(y.clone(), bounds);
        Ok(y)
    }

    /// SmoothQuant without calibration: divides channel c of a LayerNorm output by
    /// sqrt(bound_c) (the weights' rows are multiplied back), so that the few channels with large
    /// gammas no longer set the one int8 scale of the whole activation tensor.
    fn smoothed(&mut self, x: &str) -> Result<Option<(String, Vec<f32>)>> {
        if let Some(done) = self.smoothed.get(x) {
            return Ok(Some(done.clone()));
        }
        let Some(bounds) = self.norm_bounds.get(x) else {
            return Ok(None);
        };
        let factors: Vec<f32> = bounds.iter().map(|b| b.max(1e-3).sqrt()).collect();
        let inverse: Vec<f32> = factors.iter().map(|f| 1.0 / f).collect();
        let inverse = self.floats("smooth", &[inverse.len()], &inverse)?;
        let y = self.op("Mul", &[x, &inverse], vec![])?;
        self.smoothed
            .insert(x.to_string(), (y.clone(), factors.clone()));
        Ok(Some((y, factors)))
    }

    fn attention(
        &mut self,
        x: &str,
        a: &Attention,
        e: &Encoder,
        rope: Option<&RopeTables>,
    ) -> Result<String> {
        let (heads, head_dim) = (e.heads as i64, e.head_dim() as i64);
        // 1/sqrt(head_dim) folded into the query projection (rotary is linear, so it commutes).
        // Three products, not one of the stacked weights and a Split (measured 5 % slower); plain
        // ops, not com.microsoft.MultiHeadAttention (0.79x to 1.36x their speed by shape, alone).
        let q = self.linear(x, &a.q, 1.0 / (head_dim as f32).sqrt())?;
        let k = self.linear(x, &a.k, 1.0)?;
        let v = self.linear(x, &a.v, 1.0)?;
        let split_heads = self.ints("shape", &[0, 0, heads, head_dim])?;
        let mut q = self.op("Reshape", &[&q, &split_heads], vec![])?; // [batch, seq, heads, head_dim]
        let mut k = self.op("Reshape", &[&k, &split_heads], vec![])?;
        let v = self.op("Reshape", &[&v, &split_heads], vec![])?;
        if let Some(rope) = rope {
            q = self.rotate(&q, rope, e.head_dim())?;
            k = self.rotate(&k, rope, e.head_dim())?;
        }
        let q = self.transpose(&q, &[0, 2, 1, 3])?; // [batch, heads, seq, head_dim]
        let k = self.transpose(&k, &[0, 2, 3, 1])?; // [batch, heads, head_dim, seq]
        let v = self.transpose(&v, &[0, 2, 1, 3])?;
        let scores = self.op("MatMul", &[&q, &k], vec![])?;
        let bias = self.attention_bias.clone();
        let scores = self.op("Add", &[&scores, &bias], vec![])?;
        let probs = self.op("Softmax", &[&scores], vec![Attribute::new("axis", -1i64)?])?;
        let context = self.op("MatMul", &[&probs, &v], vec![])?;
        let context = self.transpose(&context, &[0, 2, 1, 3])?;
        let merge_heads = self.ints("shape", &[0, 0, heads * head_dim])?;
        let context = self.op("Reshape", &[&context, &merge_heads], vec![])?;
        self.linear(&context, &a.out, 1.0)
    }

    fn transpose(&mut self, x: &str, perm: &[i64]) -> Result<String> {
        self.op(
            "Transpose",
            &[x],
            vec![Attribute::new("perm", perm.to_vec())?],
        )
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
                let h = match act {
                    Activation::Gelu => self.gelu(&h)?,
                    Activation::Relu => self.op("Relu", &[&h], vec![])?,
                };
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

    /// The FFN's down projection stays float32 under int8: its input (after GELU or SwiGLU) is
    /// heavy-tailed, and one int8 scale per tensor for it cost the most fidelity (measured on 300
    /// code symbols: min cosine to float32 0.987 with it quantised, 0.996 without).
    fn down_projection(&mut self, h: &str, down: &Linear) -> Result<String> {
        if self.precision != Precision::Int8 {
            return self.linear(h, down, 1.0);
        }
        self.precision = Precision::Float32;
        let y = self.linear(h, down, 1.0);
        self.precision = Precision::Int8;
        y
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
