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

const OPSET: u32 = 17;
pub const OUTPUT: &str = "sentence_embedding";
pub const TOKEN_STATES: &str = "last_hidden_state";

/// Also outputs the final token states as `last_hidden_state` ([batch, sequence, hidden]) when
/// `token_states` is set: what other runtimes' feature-extraction pipelines expect of a file.
pub fn model(
    encoder: &Encoder,
    pooling: Pooling,
    max_positions: usize,
    token_states: bool,
) -> Result<Model> {
    let mut g = Emitter::new()?;
    let x = g.embeddings(encoder)?;
    let rope = match &encoder.rotary {
        Some(rotary) => Some(g.rotary_tables(rotary, encoder.head_dim(), max_positions)?),
        None => None,
    };
    let mut x = x;
    for layer in &encoder.layers {
        x = g.layer(&x, layer, encoder, rope.as_ref())?;
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
    count: usize,
    seq_len: String,
    mask: String,
    attention_bias: String,
    int_constants: std::collections::HashMap<Vec<i64>, String>,
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
    fn new() -> Result<Self> {
        let mut graph = Graph::new()?;
        graph.set_inputs([int64_matrix("input_ids"), int64_matrix("attention_mask")])?;
        let mut g = Emitter {
            graph,
            count: 0,
            seq_len: String::new(),
            mask: String::new(),
            attention_bias: String::new(),
            int_constants: Default::default(),
        };
        g.seq_len = g.op(
            "Shape",
            &["input_ids"],
            vec![Attribute::new("start", 1i64)?, Attribute::new("end", 2i64)?],
        )?;
        g.mask = g.op(
            "Cast",
            &["attention_mask"],
            vec![Attribute::new("to", 1i64)?],
        )?; // 1: FLOAT
            // 0 for real tokens, -10000 for padding: large enough to vanish in softmax, small enough for fp16.
        let one = g.scalar(1.0)?;
        let minus_one = g.op("Sub", &[&g.mask.clone(), &one], vec![])?;
        let big = g.scalar(10000.0)?;
        let bias = g.op("Mul", &[&minus_one, &big], vec![])?;
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
        let mut model = Model::new([Opset::new(ONNX_DOMAIN, OPSET)?])?;
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
        let node = self.name(op);
        let names: Vec<String> = (0..outputs).map(|i| format!("{node}:{i}")).collect();
        self.graph.add_node(Node::new(
            op,
            ONNX_DOMAIN,
            &node,
            inputs,
            &names,
            attributes,
        )?)?;
        Ok(names)
    }

    fn floats(&mut self, hint: &str, shape: &[usize], data: &[f32]) -> Result<String> {
        let name = self.name(hint);
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let mut tensor = OrtTensor::<f32>::new(&Allocator::default(), Shape::new(dims))?;
        tensor.extract_tensor_mut().1.copy_from_slice(data);
        // External: ONNX Runtime keeps using this buffer instead of copying it into the model
        // (it accepts that only from 128 bytes up).
        self.graph
            .add_initializer(&name, tensor, data.len() * 4 >= 128)?;
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
        let weight = self.floats("weight", &w.shape, &w.data)?;
        let y = self.op("MatMul", &[x, &weight], vec![])?;
        match &linear.bias {
            Some(b) => {
                let scaled: Vec<f32> = b.data.iter().map(|v| v * scale).collect();
                let bias = self.floats("bias", &b.shape, &scaled)?;
                self.op("Add", &[&y, &bias], vec![])
            }
            None => Ok(y),
        }
    }

    fn layer_norm(&mut self, x: &str, norm: &Norm) -> Result<String> {
        let weight = self.floats("norm_weight", &norm.weight.shape, &norm.weight.data)?;
        let bias = self.floats("norm_bias", &norm.bias.shape, &norm.bias.data)?;
        self.op(
            "LayerNormalization",
            &[x, &weight, &bias],
            vec![
                Attribute::new("axis", -1i64)?,
                Attribute::new("epsilon", norm.eps)?,
            ],
        )
    }

    fn attention(
        &mut self,
        x: &str,
        a: &Attention,
        e: &Encoder,
        rope: Option<&RopeTables>,
    ) -> Result<String> {
        let (heads, head_dim) = (e.heads as i64, e.head_dim() as i64);
        // 1/sqrt(head_dim) folded into the query projection (rotary is linear, so it commutes)
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
                self.linear(&h, down, 1.0)
            }
            FeedForward::SwiGlu { up, gate, down } => {
                let u = self.linear(x, up, 1.0)?;
                let g = self.linear(x, gate, 1.0)?;
                let sigmoid = self.op("Sigmoid", &[&g], vec![])?;
                let silu = self.op("Mul", &[&g, &sigmoid], vec![])?;
                let h = self.op("Mul", &[&u, &silu], vec![])?;
                self.linear(&h, down, 1.0)
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
        let floor = self.scalar(1e-12)?;
        let norm = self.op("Max", &[&norm, &floor], vec![])?;
        self.op("Div", &[x, &norm], vec![])
    }
}
