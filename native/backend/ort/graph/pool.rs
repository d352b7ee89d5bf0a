//! Pooling of the final token states into one vector per text, and the L2 normalisation of an
//! exported file's output, as graph operations.
use ort::memory::Allocator;
use ort::operator::Attribute;
use ort::value::{Shape, Tensor as OrtTensor};

use super::plumbing::Builder;
use crate::error::Result;
use crate::pooling::Pooling;

/// `x` (`[batch, seq, hidden]`, float32) pooled to `[batch, hidden]`; `mask` is the attention
/// mask as float32.
pub(super) fn pool(b: &mut Builder, x: &str, mask: &str, pooling: Pooling) -> Result<String> {
    match pooling {
        Pooling::Cls => {
            let name = b.name("first");
            let mut index = OrtTensor::<i64>::new(&Allocator::default(), Shape::new([]))?;
            index.extract_tensor_mut().1[0] = 0;
            b.graph.add_initializer(&name, index, false)?;
            b.op("Gather", &[x, &name], vec![Attribute::new("axis", 1i64)?])
        }
        Pooling::Mean => {
            let axis2 = b.ints("axes", &[2])?;
            let weights = b.op("Unsqueeze", &[mask, &axis2], vec![])?; // [batch, seq, 1]
            let masked = b.op("Mul", &[x, &weights], vec![])?;
            let axis1 = b.ints("axes", &[1])?;
            let sum = b.op(
                "ReduceSum",
                &[&masked, &axis1],
                vec![Attribute::new("keepdims", 0i64)?],
            )?;
            let count = b.op(
                "ReduceSum",
                &[mask, &axis1],
                vec![Attribute::new("keepdims", 1i64)?],
            )?;
            b.op("Div", &[&sum, &count], vec![])
        }
        Pooling::LastToken => {
            // the last real token of each row: index (real tokens - 1), whatever the padding
            let axis1 = b.ints("axes", &[1])?;
            let count = b.op(
                "ReduceSum",
                &["attention_mask", &axis1],
                vec![Attribute::new("keepdims", 1i64)?],
            )?;
            let one = b.initializer("one", &[], &[1i64])?;
            let last = b.op("Sub", &[&count, &one], vec![])?; // [batch, 1]
            b.op(
                "GatherND",
                &[x, &last],
                vec![Attribute::new("batch_dims", 1i64)?],
            )
        }
    }
}

/// Each row of `x` (`[batch, hidden]`) scaled to unit length.
pub(super) fn l2_normalize(b: &mut Builder, x: &str) -> Result<String> {
    let squares = b.op("Mul", &[x, x], vec![])?;
    let axis1 = b.ints("axes", &[1])?;
    let sum = b.op(
        "ReduceSum",
        &[&squares, &axis1],
        vec![Attribute::new("keepdims", 1i64)?],
    )?;
    let norm = b.op("Sqrt", &[&sum], vec![])?;
    let floor = b.scalar32(1e-12)?;
    let norm = b.op("Max", &[&norm, &floor], vec![])?;
    b.op("Div", &[x, &norm], vec![])
}
