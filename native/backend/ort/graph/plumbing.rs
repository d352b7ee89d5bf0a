//! Graph plumbing, a leaf: nodes with generated names, initializers (half precision where the
//! graph is), shared int constants, and the graph's inputs and outputs. It knows nothing of
//! transformers or of quantisation.
use ort::editor::{Graph, Model, Node, Opset, ONNX_DOMAIN};
use ort::memory::Allocator;
use ort::operator::Attribute;
use ort::value::{
    Outlet, Shape, SymbolicDimensions, Tensor as OrtTensor, TensorElementType, ValueType,
};

use crate::error::Result;
use crate::weights::{Tensor, Values};

const OPSET: u32 = 17;
/// The pooled vectors, `[batch, hidden]`.
pub const OUTPUT: &str = "sentence_embedding";
/// A reranker's raw scores, `[batch, 1]` (exported files only).
pub const LOGITS: &str = "logits";
/// The final token states, `[batch, sequence, hidden]` (exported files only).
pub const TOKEN_STATES: &str = "last_hidden_state";
/// A cross-encoder's segment of each token (0: query, 1: document), `[batch, sequence]`.
pub const TOKEN_TYPES: &str = "token_type_ids";
/// ONNX's TensorProto data types, for Cast.
pub const FLOAT: i64 = 1;
pub const FLOAT16: i64 = 10;
/// ONNX Runtime's contrib operators (DynamicQuantizeMatMul).
pub const MS_DOMAIN: &str = "com.microsoft";

/// A graph being built, with its nodes' names and its float initializers' precision.
pub(super) struct Builder {
    pub(super) graph: Graph,
    /// Float weights and constants in half precision (a Float16 graph).
    half: bool,
    count: usize,
    int_constants: std::collections::HashMap<Vec<i64>, String>,
}

pub(super) fn int64_matrix(name: &str) -> Outlet {
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

/// A float32 tensor whose dimensions are symbolic (`-1`) but for the last, `last` when given.
pub(super) fn float_outlet(name: &str, symbols: &[&str], last: Option<usize>) -> Outlet {
    let mut shape: Vec<i64> = symbols.iter().map(|_| -1).collect();
    let mut symbols: Vec<String> = symbols.iter().map(|d| d.to_string()).collect();
    if let Some(last) = last {
        shape.push(last as i64);
        symbols.push(String::new());
    }
    Outlet::new(
        name,
        ValueType::Tensor {
            ty: TensorElementType::Float32,
            shape: Shape::new(shape),
            dimension_symbols: SymbolicDimensions::new(symbols),
        },
    )
}

impl Builder {
    /// A graph of these inputs; `half`: float weights and constants in float16.
    pub(super) fn new(inputs: Vec<Outlet>, half: bool) -> Result<Builder> {
        let mut graph = Graph::new()?;
        graph.set_inputs(inputs)?;
        Ok(Builder {
            graph,
            half,
            count: 0,
            int_constants: Default::default(),
        })
    }

    /// The model of the graph built, with these outputs.
    pub(super) fn finish(mut self, outputs: Vec<Outlet>) -> Result<Model> {
        self.graph.set_outputs(outputs)?;
        let mut model = Model::new([Opset::new(ONNX_DOMAIN, OPSET)?, Opset::new(MS_DOMAIN, 1)?])?;
        model.set_graph(self.graph)?;
        Ok(model)
    }

    /// Names the value `x` as the graph output `output`.
    pub(super) fn identity(&mut self, x: &str, output: &str) -> Result<()> {
        let node = self.name("output");
        self.graph.add_node(Node::new(
            "Identity",
            ONNX_DOMAIN,
            &node,
            [x],
            [output],
            [],
        )?)?;
        Ok(())
    }

    pub(super) fn name(&mut self, hint: &str) -> String {
        self.count += 1;
        format!("{hint}_{}", self.count)
    }

    /// Adds a one-output node and returns its output's name.
    pub(super) fn op(
        &mut self,
        op: &str,
        inputs: &[&str],
        attributes: Vec<Attribute>,
    ) -> Result<String> {
        Ok(self.ops(op, inputs, attributes, 1)?.remove(0))
    }

    pub(super) fn ops(
        &mut self,
        op: &str,
        inputs: &[&str],
        attributes: Vec<Attribute>,
        outputs: usize,
    ) -> Result<Vec<String>> {
        self.ops_in(ONNX_DOMAIN, op, inputs, attributes, outputs)
    }

    pub(super) fn ops_in(
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
    pub(super) fn floats(&mut self, hint: &str, shape: &[usize], data: &[f32]) -> Result<String> {
        if self.half {
            let halves: Vec<half::f16> = data.iter().map(|&v| half::f16::from_f32(v)).collect();
            return self.initializer(hint, shape, &halves);
        }
        self.initializer(hint, shape, data)
    }

    /// A checkpoint's tensor in the graph's precision: a half tensor goes into a Float16 graph
    /// without being widened.
    pub(super) fn tensor(&mut self, hint: &str, t: &Tensor) -> Result<String> {
        if !self.half {
            return self.floats(hint, &t.shape, &t.f32());
        }
        let halves: Vec<half::f16> = match &t.values {
            Values::F16(v) => return self.initializer(hint, &t.shape, v),
            Values::Bf16(v) => v.iter().map(|x| half::f16::from_f32(x.to_f32())).collect(),
            Values::F32(v) => v.iter().map(|&x| half::f16::from_f32(x)).collect(),
        };
        self.initializer(hint, &t.shape, &halves)
    }

    /// A float32 initializer (half precision in a Float16 graph) that `fill` writes in place,
    /// saving a copy of every weight matrix.
    pub(super) fn floats_with(
        &mut self,
        hint: &str,
        shape: &[usize],
        fill: impl FnOnce(&mut [f32]),
    ) -> Result<String> {
        if self.half {
            let mut wide = vec![0f32; shape.iter().product()];
            fill(&mut wide);
            return self.floats(hint, shape, &wide);
        }
        let name = self.name(hint);
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let mut tensor = OrtTensor::<f32>::new(&Allocator::default(), Shape::new(dims))?;
        fill(tensor.extract_tensor_mut().1);
        let external = shape.iter().product::<usize>() * 4 >= 128;
        self.graph.add_initializer(&name, tensor, external)?;
        Ok(name)
    }

    pub(super) fn initializer<T>(
        &mut self,
        hint: &str,
        shape: &[usize],
        data: &[T],
    ) -> Result<String>
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
    pub(super) fn ints(&mut self, hint: &str, data: &[i64]) -> Result<String> {
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

    pub(super) fn scalar(&mut self, value: f32) -> Result<String> {
        self.floats("const", &[], &[value])
    }

    /// A float32 constant whatever the precision: for the mask, pooling and normalisation.
    pub(super) fn scalar32(&mut self, value: f32) -> Result<String> {
        self.initializer("const", &[], &[value])
    }

    /// The first `count` rows of `table` (`count`: a 1-D int64 value): a Slice, not a
    /// Shape/Range/Gather chain, which ONNX Runtime's optimiser has been seen to crash on.
    pub(super) fn first_rows(&mut self, table: &str, count: &str) -> Result<String> {
        let zero = self.ints("zero", &[0])?;
        self.op("Slice", &[table, &zero, count, &zero], vec![])
    }

    /// The data type of the graph's float activations.
    pub(super) fn float_type(&self) -> i64 {
        if self.half {
            FLOAT16
        } else {
            FLOAT
        }
    }

    pub(super) fn cast(&mut self, x: &str, to: i64) -> Result<String> {
        self.op("Cast", &[x], vec![Attribute::new("to", to)?])
    }

    pub(super) fn transpose(&mut self, x: &str, perm: &[i64]) -> Result<String> {
        self.op(
            "Transpose",
            &[x],
            vec![Attribute::new("perm", perm.to_vec())?],
        )
    }
}
