//! Rotary position embeddings as graph operations: the cos and sin tables, and the rotation of
//! each head's first `dims` values (halves rotated, not interleaved).
use ort::operator::Attribute;

use super::plumbing::Builder;
use crate::error::Result;

#[derive(Clone)]
pub(super) struct RopeTables {
    cos: String,
    sin: String,
    dims: usize,
}

/// cos and sin tables `[positions, 1, dims]` (each frequency twice: halves layout), in f32 as
/// the reference implementations compute them, cut to the input's `seq_len` rows.
pub(super) fn tables(
    b: &mut Builder,
    dims: usize,
    base: f32,
    positions: usize,
    seq_len: &str,
) -> Result<RopeTables> {
    let half = dims / 2;
    let inv_freq: Vec<f32> = (0..half)
        .map(|i| 1.0 / base.powf((2 * i) as f32 / dims as f32))
        .collect();
    let mut cos = Vec::with_capacity(positions * dims);
    let mut sin = Vec::with_capacity(positions * dims);
    for p in 0..positions {
        let angles: Vec<f32> = inv_freq.iter().map(|f| p as f32 * f).collect();
        for _ in 0..2 {
            cos.extend(angles.iter().map(|a| a.cos()));
            sin.extend(angles.iter().map(|a| a.sin()));
        }
    }
    let shape = [positions, 1, dims];
    let cos = b.floats("rope_cos", &shape, &cos)?;
    let sin = b.floats("rope_sin", &shape, &sin)?;
    let (cos, sin) = (b.first_rows(&cos, seq_len)?, b.first_rows(&sin, seq_len)?);
    Ok(RopeTables { cos, sin, dims })
}

/// `x * cos + rotate_half(x) * sin` on the first `rope.dims` of each head of `x`
/// (`[batch, seq, heads, head_dim]`).
pub(super) fn rotate(
    b: &mut Builder,
    x: &str,
    rope: &RopeTables,
    head_dim: usize,
) -> Result<String> {
    let (rotated_part, rest) = if rope.dims < head_dim {
        let sizes = b.ints("split", &[rope.dims as i64, (head_dim - rope.dims) as i64])?;
        let parts = b.ops(
            "Split",
            &[x, &sizes],
            vec![Attribute::new("axis", -1i64)?],
            2,
        )?;
        (parts[0].clone(), Some(parts[1].clone()))
    } else {
        (x.to_string(), None)
    };
    let halves = b.ops(
        "Split",
        &[&rotated_part],
        vec![Attribute::new("axis", -1i64)?],
        2,
    )?;
    let negated = b.op("Neg", &[&halves[1]], vec![])?;
    let turned = b.op(
        "Concat",
        &[&negated, &halves[0]],
        vec![Attribute::new("axis", -1i64)?],
    )?;
    let a = b.op("Mul", &[&rotated_part, &rope.cos], vec![])?;
    let c = b.op("Mul", &[&turned, &rope.sin], vec![])?;
    let rotated = b.op("Add", &[&a, &c], vec![])?;
    match rest {
        Some(rest) => b.op(
            "Concat",
            &[&rotated, &rest],
            vec![Attribute::new("axis", -1i64)?],
        ),
        None => Ok(rotated),
    }
}
