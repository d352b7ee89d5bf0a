//! The int8 rules: projections quantised per output column at build time; activations
//! quantised per row (token) in the graph, so that a text's vector does not depend on its
//! batch-mates; ONNX Runtime's MatMulIntegerToFloat multiplies; calibration-free smoothing of
//! norm outputs; the weights' signedness by the CPU (`Int8Scheme`); the FFN's down projection
//! in float32.
use ort::operator::Attribute;

use super::plumbing::{Emitter, MS_DOMAIN};
use crate::arch::Linear;
use crate::error::Result;
use crate::settings::{Int8Scheme, Precision};
use crate::weights::Tensor;

/// Largest weight magnitude in quantisation steps, and of a row of activations (symmetric
/// around zero, so one level of 255 is unused: the zero point of both is exact).
const INT8_LEVELS: f32 = 127.0;
/// How much of a channel's magnitude smoothing moves from the activations into the weights.
/// Measured on MiniLM over 3,000 code symbols, min / 1st-percentile cosine to float32: 0.5 gave
/// 0.99652 / 0.99734, 0.3 gives 0.99694 / 0.99734 (with 7-bit weights too, 0.3 beat 0, 0.15,
/// 0.5 and 0.7).
const SMOOTHING: f32 = 0.3;
/// ONNX's element type of uint8 tensors.
const UINT8: i64 = 2;

/// One activation tensor quantised per row: uint8 values around 128 and each row's scale.
#[derive(Clone)]
pub(super) struct QuantizedRows {
    values: String,
    /// `[batch, seq, 1]`
    scale: String,
}

impl Emitter {
    /// `x @ w + bias` for `w` (`[in, out]`) quantised symmetrically per output column, `x`
    /// per row: `(q_x @ q_w) * scale_w` by MatMulIntegerToFloat, then times each row's scale.
    pub(super) fn quantized_linear(
        &mut self,
        x: &str,
        w: &Tensor,
        bias: Option<&[f32]>,
    ) -> Result<String> {
        let cols = w.shape[1];
        let scales = column_scales(w);
        let (weight, zero) = match self.int8 {
            Int8Scheme::SignedWeights => {
                let q: Vec<i8> = quantize(w, &scales, |v| v as i8);
                (self.initializer("weight_int8", &w.shape, &q)?, None)
            }
            Int8Scheme::UnsignedWeights => {
                let q: Vec<u8> = quantize(w, &scales, |v| (v + 128.0) as u8);
                let zero = self.initializer("weight_zero", &[cols], &vec![128u8; cols])?;
                (self.initializer("weight_uint8", &w.shape, &q)?, Some(zero))
            }
        };
        let scale = self.floats("weight_scale", &[cols], &scales)?;
        let rows = self.quantized_rows(x)?;
        let one = self.scalar32(1.0)?;
        let centre = self.initializer("centre", &[], &[128u8])?;
        let mut inputs = vec![&rows.values, &weight, &one, &scale, &centre];
        inputs.extend(zero.as_ref());
        let inputs: Vec<&str> = inputs.into_iter().map(String::as_str).collect();
        let product = self
            .ops_in(MS_DOMAIN, "MatMulIntegerToFloat", &inputs, vec![], 1)?
            .remove(0);
        let y = self.op("Mul", &[&product, &rows.scale], vec![])?;
        match bias {
            Some(b) => {
                let bias = self.floats("bias", &[cols], b)?;
                self.op("Add", &[&y, &bias], vec![])
            }
            None => Ok(y),
        }
    }

    /// `x` (`[batch, seq, k]`) as uint8 `round(x / s) + 128` with `s = max|x| / 127` per row;
    /// shared by every projection that reads `x`. Per-axis QuantizeLinear over the rows of a
    /// `[rows, k]` view: one pass, where Div, Round, Add and Cast took four (measured 8 % slower
    /// per product at CodeRankEmbed's shapes).
    fn quantized_rows(&mut self, x: &str) -> Result<QuantizedRows> {
        if let Some(done) = self.quantized.get(x) {
            return Ok(done.clone());
        }
        let high = self.op("ReduceMax", &[x], last_axis()?)?;
        let low = self.op("ReduceMin", &[x], last_axis()?)?;
        let low = self.op("Neg", &[&low], vec![])?;
        let tiny = self.scalar32(f32::MIN_POSITIVE)?;
        let bound = self.op("Max", &[&high, &low, &tiny], vec![])?;
        let step = self.scalar32(1.0 / INT8_LEVELS)?;
        let scale = self.op("Mul", &[&bound, &step], vec![])?; // [batch, seq, 1]
        let flat = self.ints("shape", &[-1])?;
        let row_scale = self.op("Reshape", &[&scale, &flat], vec![])?; // [rows]
                                                                       // the zero point must have the scale's shape: 128 for every row
        let nought = self.scalar32(0.0)?;
        let zeroed = self.op("Mul", &[&row_scale, &nought], vec![])?;
        let centre = self.scalar32(128.0)?;
        let centred = self.op("Add", &[&zeroed, &centre], vec![])?;
        let zero_point = self.cast(&centred, UINT8)?;
        let last = vec![Attribute::new("axis", -1i64)?];
        let rows = self.op("Flatten", &[x], last)?; // [rows, k]
        let values = self.op(
            "QuantizeLinear",
            &[&rows, &row_scale, &zero_point],
            vec![Attribute::new("axis", 0i64)?],
        )?;
        let shape = self.op("Shape", &[x], vec![])?;
        let values = self.op("Reshape", &[&values, &shape], vec![])?;
        let done = QuantizedRows { values, scale };
        self.quantized.insert(x.to_string(), done.clone());
        Ok(done)
    }

    /// SmoothQuant without calibration: divides channel c of a LayerNorm output by
    /// bound_c^SMOOTHING (the weights' rows are multiplied back), so that the few channels with
    /// large gammas no longer set the int8 scale of their rows.
    pub(super) fn smoothed(&mut self, x: &str) -> Result<Option<(String, Vec<f32>)>> {
        if let Some(done) = self.smoothed.get(x) {
            return Ok(Some(done.clone()));
        }
        let Some(bounds) = self.norm_bounds.get(x) else {
            return Ok(None);
        };
        let factors: Vec<f32> = bounds.iter().map(|b| b.max(1e-3).powf(SMOOTHING)).collect();
        let inverse: Vec<f32> = factors.iter().map(|f| 1.0 / f).collect();
        let inverse = self.floats("smooth", &[inverse.len()], &inverse)?;
        let y = self.op("Mul", &[x, &inverse], vec![])?;
        self.smoothed
            .insert(x.to_string(), (y.clone(), factors.clone()));
        Ok(Some((y, factors)))
    }

    /// The FFN's down projection stays float32 under int8: its input (after GELU or SwiGLU) is
    /// heavy-tailed within each row. Measured on 600 code symbols (MiniLM, int8 weights, per-row
    /// scales): quantised, min cosine to float32 0.9957 and 1st percentile 0.9965 at 2.2x float32
    /// speed; float32, 0.9967 and 0.9972 at 1.6x. Calibration-free smoothing of the hidden
    /// channels (bounds from the up weights) and per-block row scales did not close the gap, or
    /// cost the speed (8 blocks: 0.9970 at 1.07x).
    pub(super) fn down_projection(&mut self, h: &str, down: &Linear) -> Result<String> {
        if self.precision != Precision::Int8 {
            return self.linear(h, down, 1.0);
        }
        self.precision = Precision::Float32;
        let y = self.linear(h, down, 1.0);
        self.precision = Precision::Int8;
        y
    }
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

fn quantize<T>(w: &Tensor, scales: &[f32], to: impl Fn(f32) -> T) -> Vec<T> {
    let cols = scales.len();
    w.f32()
        .iter()
        .enumerate()
        .map(|(i, v)| to((v / scales[i % cols]).round()))
        .collect()
}
