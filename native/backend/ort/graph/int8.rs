//! The int8 rules: projections quantised per output column at build time; activations
//! quantised per row (token) in the graph, so that a text's vector does not depend on its
//! batch-mates; ONNX Runtime's MatMulIntegerToFloat multiplies; calibration-free smoothing of
//! norm outputs; the weights' signedness and the activations' width by the CPU (`Int8Scheme`);
//! the attention's first-position rows quantised twice (the row, then what it left out); the
//! FFN's down projection after a gated activation (SwiGLU, GeGLU) in float32.
use std::collections::HashMap;

use ort::operator::Attribute;

use super::plumbing::{Builder, FLOAT, MS_DOMAIN};
use super::rules::{FirstRow, Int8Scheme};
use crate::arch::Linear;
use crate::error::Result;
use crate::weights::Tensor;

/// Largest weight magnitude in quantisation steps (symmetric around zero, so one level of 255
/// is unused: the zero point is exact).
const INT8_LEVELS: f32 = 127.0;
/// How much of a channel's magnitude smoothing moves from the activations into the weights
/// (chosen by measurement: benchmark/README.md).
const SMOOTHING: f32 = 0.3;
/// ONNX's element type of uint8 tensors.
const UINT8: i64 = 2;

/// One activation tensor quantised per row: uint8 values and each row's scale.
#[derive(Clone)]
pub(super) struct QuantizedRows {
    values: String,
    /// `[batch, seq, 1]`
    scale: String,
    /// The integer that stands for zero: 128 (64 in 7 bits) for a signed row, symmetric around
    /// zero; 0 for one bounded below, which stands for its floor.
    zero: u8,
    /// What was taken from every value before quantising (a bounded row is shifted to start at
    /// zero, so that all 256 levels cover its range); the projection adds it back to its bias.
    floor: f32,
}

/// The integers a row maps onto: `round(v / s) + zero` with `s = bound / levels`, after `floor`
/// was taken from every value.
#[derive(Clone, Copy)]
struct Grid {
    levels: u8,
    zero: u8,
    floor: f32,
}

/// A projection's weight as the integer product reads it.
struct QuantizedWeight {
    values: String,
    /// Each output column's scale.
    scale: String,
    /// The uint8 form's zero point (128); none for int8.
    zero: Option<String>,
}

/// What the int8 rules know of the graph being built: the values the emitter told them of, and
/// what they have quantised already (shared by every projection that reads the same value).
pub(super) struct Int8 {
    scheme: Int8Scheme,
    /// Per-channel magnitude bound of each norm output (for smoothing its consumers).
    norm_bounds: HashMap<String, Vec<f32>>,
    /// The least value of each activation output that has one (GELU, ReLU): quantised over
    /// [floor, max] per row.
    floors: HashMap<String, f32>,
    /// The smoothed copy of each norm output, shared by the projections that read it.
    smoothed: HashMap<String, (String, Vec<f32>)>,
    /// Each activation quantised per row.
    quantized: HashMap<String, QuantizedRows>,
    /// The second quantisation of each activation's first position (`first_row_residual`).
    first_rows: HashMap<String, QuantizedRows>,
}

impl Int8 {
    pub(super) fn new(scheme: Int8Scheme) -> Int8 {
        Int8 {
            scheme,
            norm_bounds: HashMap::new(),
            floors: HashMap::new(),
            smoothed: HashMap::new(),
            quantized: HashMap::new(),
            first_rows: HashMap::new(),
        }
    }

    /// `output` is a norm's, whose channel c stays within `bounds[c]`.
    pub(super) fn note_norm(&mut self, output: &str, bounds: Vec<f32>) {
        self.norm_bounds.insert(output.to_string(), bounds);
    }

    /// `output` never goes below `floor`.
    pub(super) fn note_floor(&mut self, output: &str, floor: f32) {
        self.floors.insert(output.to_string(), floor);
    }

    /// The int8 form of `linear` (its weight and bias times `scale`), reading `x` smoothed where
    /// it is a norm's output.
    pub(super) fn linear(
        &mut self,
        b: &mut Builder,
        x: &str,
        linear: &Linear,
        scale: f32,
        first: FirstRow,
    ) -> Result<String> {
        let bias = linear.scaled_bias(scale);
        // widened once here: the quantiser reads it twice
        let mut w = linear.weight.transposed();
        if scale != 1.0 {
            w.f32_mut().iter_mut().for_each(|v| *v *= scale);
        }
        let Some((smoothed, factors)) = self.smoothed(b, x)? else {
            return self.quantized_linear(b, x, &w, bias.as_deref(), first);
        };
        let cols = w.shape[1];
        for (row, f) in w.f32_mut().chunks_exact_mut(cols).zip(&factors) {
            row.iter_mut().for_each(|v| *v *= f);
        }
        self.quantized_linear(b, &smoothed, &w, bias.as_deref(), first)
    }

    /// `x @ w + bias` for `w` (`[in, out]`) quantised symmetrically per output column, `x`
    /// per row: `(q_x @ q_w) * scale_w` by MatMulIntegerToFloat, then times each row's scale.
    fn quantized_linear(
        &mut self,
        b: &mut Builder,
        x: &str,
        w: &Tensor,
        bias: Option<&[f32]>,
        first: FirstRow,
    ) -> Result<String> {
        let cols = w.shape[1];
        let scales = column_scales(w);
        let (weight, zero) = match self.scheme {
            Int8Scheme::SignedWeights | Int8Scheme::SignedWeightsNarrowActivations => {
                let q: Vec<i8> = quantize(w, &scales, |v| v as i8);
                (b.initializer("weight_int8", &w.shape, &q)?, None)
            }
            Int8Scheme::UnsignedWeights => {
                let q: Vec<u8> = quantize(w, &scales, |v| (v + 128.0) as u8);
                let zero = b.initializer("weight_zero", &[cols], &vec![128u8; cols])?;
                (b.initializer("weight_uint8", &w.shape, &q)?, Some(zero))
            }
        };
        let rows = self.quantized_rows(b, x)?;
        let bias = shifted_bias(w, &scales, bias, rows.floor);
        let scale = b.floats("weight_scale", &[cols], &scales)?;
        let weight = QuantizedWeight {
            values: weight,
            scale,
            zero,
        };
        let mut y = self.integer_product(b, &rows, &weight)?;
        if first == FirstRow::Refined {
            let residual = self.first_row_residual(b, x)?;
            let correction = self.integer_product(b, &residual, &weight)?;
            let head = positions(b, &y, 0, 1)?;
            let head = b.op("Add", &[&head, &correction], vec![])?;
            let rest = positions(b, &y, 1, i64::MAX)?;
            y = b.op(
                "Concat",
                &[&head, &rest],
                vec![Attribute::new("axis", 1i64)?],
            )?;
        }
        match bias {
            Some(values) => {
                let bias = b.floats("bias", &[cols], &values)?;
                b.op("Add", &[&y, &bias], vec![])
            }
            None => Ok(y),
        }
    }

    /// `rows @ weight` in float32: MatMulIntegerToFloat, times each row's scale.
    fn integer_product(
        &mut self,
        b: &mut Builder,
        rows: &QuantizedRows,
        weight: &QuantizedWeight,
    ) -> Result<String> {
        let one = b.scalar32(1.0)?;
        let row_zero = b.initializer("row_zero", &[], &[rows.zero])?;
        let mut inputs = vec![&rows.values, &weight.values, &one, &weight.scale, &row_zero];
        inputs.extend(weight.zero.as_ref());
        let inputs: Vec<&str> = inputs.into_iter().map(String::as_str).collect();
        let product = b
            .ops_in(MS_DOMAIN, "MatMulIntegerToFloat", &inputs, vec![], 1)?
            .remove(0);
        b.op("Mul", &[&product, &rows.scale], vec![])
    }

    /// What quantising `x`'s first position left out, `x[:, 0] - dequantised`, quantised per
    /// row in turn; shared by the projections that read `x`.
    fn first_row_residual(&mut self, b: &mut Builder, x: &str) -> Result<QuantizedRows> {
        if let Some(done) = self.first_rows.get(x) {
            return Ok(done.clone());
        }
        let rows = self.quantized_rows(b, x)?;
        let levels = positions(b, &rows.values, 0, 1)?;
        let levels = b.cast(&levels, FLOAT)?;
        let offset = b.scalar32(f32::from(rows.zero))?;
        let centred = b.op("Sub", &[&levels, &offset], vec![])?;
        let scale = positions(b, &rows.scale, 0, 1)?;
        let mut kept = b.op("Mul", &[&centred, &scale], vec![])?;
        if rows.floor != 0.0 {
            let floor = b.scalar32(rows.floor)?;
            kept = b.op("Add", &[&kept, &floor], vec![])?;
        }
        let first = positions(b, x, 0, 1)?;
        let residual = b.op("Sub", &[&first, &kept], vec![])?;
        let done = self.quantized_rows(b, &residual)?;
        self.first_rows.insert(x.to_string(), done.clone());
        Ok(done)
    }

    /// `x` (`[batch, seq, k]`) as uint8 `round(x / s) + 128` with `s = max|x| / 127` per row
    /// (`+ 64` and `/ 63` in 7 bits); shared by every projection that reads `x`.
    fn quantized_rows(&mut self, b: &mut Builder, x: &str) -> Result<QuantizedRows> {
        if let Some(done) = self.quantized.get(x) {
            return Ok(done.clone());
        }
        if let Some(&floor) = self.floors.get(x) {
            return self.bounded_rows(b, x, floor);
        }
        let high = b.op("ReduceMax", &[x], last_axis()?)?;
        let low = b.op("ReduceMin", &[x], last_axis()?)?;
        let low = b.op("Neg", &[&low], vec![])?;
        let centre = 1u8 << (self.scheme.activation_bits() - 1);
        let bound = b.op("Max", &[&high, &low], vec![])?;
        let grid = Grid {
            levels: centre - 1,
            zero: centre,
            floor: 0.0,
        };
        self.quantize_rows(b, x, x, &bound, grid)
    }

    /// `x` (`[batch, seq, k]`, never below `floor`) as uint8 `round((x - floor) / s)` with
    /// `s = max(x - floor) / 255` per row (`/ 127` in 7 bits): twice the resolution of the
    /// symmetric form, which leaves the negative half of its levels unused on a GELU or ReLU
    /// output.
    fn bounded_rows(&mut self, b: &mut Builder, x: &str, floor: f32) -> Result<QuantizedRows> {
        let shifted = if floor == 0.0 {
            x.to_string()
        } else {
            let floor = b.scalar32(floor)?;
            b.op("Sub", &[x, &floor], vec![])?
        };
        let bound = b.op("ReduceMax", &[&shifted], last_axis()?)?;
        let top = (1u16 << self.scheme.activation_bits()) - 1;
        let grid = Grid {
            levels: top as u8,
            zero: 0,
            floor,
        };
        self.quantize_rows(b, x, &shifted, &bound, grid)
    }

    /// `values` (`x`, or `x` shifted down by `floor`) as uint8 `round(v / s) + zero` with
    /// `s = bound / levels` per row (`bound`: `[batch, seq, 1]`), remembered as `x`'s. Per-axis
    /// QuantizeLinear over the rows of a `[rows, k]` view: one pass, where Div, Round, Add and
    /// Cast took four.
    fn quantize_rows(
        &mut self,
        b: &mut Builder,
        x: &str,
        values: &str,
        bound: &str,
        grid: Grid,
    ) -> Result<QuantizedRows> {
        let Grid {
            levels,
            zero,
            floor,
        } = grid;
        let tiny = b.scalar32(f32::MIN_POSITIVE)?;
        let bound = b.op("Max", &[bound, &tiny], vec![])?;
        let step = b.scalar32(1.0 / f32::from(levels))?;
        let scale = b.op("Mul", &[&bound, &step], vec![])?; // [batch, seq, 1]
        let flat = b.ints("shape", &[-1])?;
        let row_scale = b.op("Reshape", &[&scale, &flat], vec![])?; // [rows]
        let mut inputs = vec![row_scale.clone()];
        if zero != 0 {
            // the zero point must have the scale's shape: `zero` for every row
            let nought = b.scalar32(0.0)?;
            let zeroed = b.op("Mul", &[&row_scale, &nought], vec![])?;
            let zero = b.scalar32(f32::from(zero))?;
            let zero = b.op("Add", &[&zeroed, &zero], vec![])?;
            inputs.push(b.cast(&zero, UINT8)?);
        }
        let last = vec![Attribute::new("axis", -1i64)?];
        let rows = b.op("Flatten", &[values], last)?; // [rows, k]
        let mut operands = vec![rows.as_str()];
        operands.extend(inputs.iter().map(String::as_str));
        // without a zero point, QuantizeLinear makes uint8 with zero at 0
        let quantized = b.op(
            "QuantizeLinear",
            &operands,
            vec![Attribute::new("axis", 0i64)?],
        )?;
        let shape = b.op("Shape", &[x], vec![])?;
        let values = b.op("Reshape", &[&quantized, &shape], vec![])?;
        let done = QuantizedRows {
            values,
            scale,
            zero,
            floor,
        };
        self.quantized.insert(x.to_string(), done.clone());
        Ok(done)
    }

    /// SmoothQuant without calibration: divides channel c of a LayerNorm output by
    /// bound_c^SMOOTHING (the weights' rows are multiplied back), so that the few channels with
    /// large gammas no longer set the int8 scale of their rows.
    pub(super) fn smoothed(
        &mut self,
        b: &mut Builder,
        x: &str,
    ) -> Result<Option<(String, Vec<f32>)>> {
        if let Some(done) = self.smoothed.get(x) {
            return Ok(Some(done.clone()));
        }
        let Some(bounds) = self.norm_bounds.get(x) else {
            return Ok(None);
        };
        let factors: Vec<f32> = bounds
            .iter()
            .map(|bound| bound.max(1e-3).powf(SMOOTHING))
            .collect();
        let inverse: Vec<f32> = factors.iter().map(|f| 1.0 / f).collect();
        let inverse = b.floats("smooth", &[inverse.len()], &inverse)?;
        let y = b.op("Mul", &[x, &inverse], vec![])?;
        self.smoothed
            .insert(x.to_string(), (y.clone(), factors.clone()));
        Ok(Some((y, factors)))
    }
}

/// Positions `start..end` of `x` (`[batch, seq, ..]`).
fn positions(b: &mut Builder, x: &str, start: i64, end: i64) -> Result<String> {
    let start = b.ints("start", &[start])?;
    let end = b.ints("end", &[end])?;
    let axis = b.ints("axes", &[1])?;
    b.op("Slice", &[x, &start, &end, &axis], vec![])
}

/// A reduction over the last axis that keeps it.
fn last_axis() -> Result<Vec<Attribute>> {
    Ok(vec![
        Attribute::new("axes", vec![-1i64])?,
        Attribute::new("keepdims", 1i64)?,
    ])
}

/// max |w| / 127 of each output column (1 for a column of zeros).
fn column_scales(w: &Tensor) -> Vec<f32> {
    let cols = w.shape[1];
    let mut scales = vec![0f32; cols];
    for row in w.f32().chunks_exact(cols) {
        for (s, v) in scales.iter_mut().zip(row) {
            *s = s.max(v.abs());
        }
    }
    scales
        .iter()
        .map(|&s| if s > 0.0 { s / INT8_LEVELS } else { 1.0 })
        .collect()
}

/// The bias of a projection whose input was shifted down by `floor`: `x @ w = (x - floor) @ w +
/// floor * (column sums of w)`, with `w` as the integer product sees it (quantised).
fn shifted_bias(w: &Tensor, scales: &[f32], bias: Option<&[f32]>, floor: f32) -> Option<Vec<f32>> {
    if floor == 0.0 {
        return bias.map(<[f32]>::to_vec);
    }
    let cols = scales.len();
    let mut sums = vec![0f64; cols];
    for row in w.f32().chunks_exact(cols) {
        for ((sum, v), s) in sums.iter_mut().zip(row).zip(scales) {
            *sum += f64::from((v / s).round() * s);
        }
    }
    let base = bias.map_or_else(|| vec![0.0; cols], <[f32]>::to_vec);
    Some(
        base.iter()
            .zip(&sums)
            .map(|(b, sum)| b + floor * *sum as f32)
            .collect(),
    )
}

fn quantize<T>(w: &Tensor, scales: &[f32], to: impl Fn(f32) -> T) -> Vec<T> {
    let cols = scales.len();
    w.f32()
        .iter()
        .enumerate()
        .map(|(i, v)| to((v / scales[i % cols]).round()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(x - floor) @ w + shifted bias` is `x @ w + bias` for `w` as quantised.
    #[test]
    fn a_shifted_input_keeps_its_product_through_the_bias() {
        let w = Tensor::new(vec![3, 2], vec![0.5, -1.0, 0.25, 2.0, -0.75, 0.1]);
        let scales = column_scales(&w);
        let q: Vec<f32> = quantize(&w, &scales, |v| v);
        let x = [0.3f32, -0.17, 2.0];
        let floor = -0.17;
        let bias = [0.1f32, -0.2];
        let shifted = shifted_bias(&w, &scales, Some(&bias), floor).expect("a bias");
        for col in 0..2 {
            let product =
                |x: &[f32]| -> f32 { (0..3).map(|r| x[r] * q[r * 2 + col] * scales[col]).sum() };
            let moved: Vec<f32> = x.iter().map(|v| v - floor).collect();
            let want = product(&x) + bias[col];
            let got = product(&moved) + shifted[col];
            assert!(
                (want - got).abs() < 1e-6,
                "column {col}: {got} against {want}"
            );
        }
        assert_eq!(shifted_bias(&w, &scales, None, 0.0), None);
    }
}
