//! The int8 rules: projections quantised per output column at build time and multiplied by
//! ONNX Runtime's DynamicQuantizeMatMul, calibration-free smoothing of norm outputs, and the
//! FFN's down projection kept in float32.
use super::plumbing::{Emitter, MS_DOMAIN};
use crate::arch::Linear;
use crate::error::Result;
use crate::settings::Precision;
use crate::weights::Tensor;

/// Largest weight magnitude around the zero point 128 of the uint8 weights. uint8, not int8:
/// ONNX Runtime's uint8 x int8 kernels on x86 without VNNI sum pairs of products in 16 bits,
/// which saturate unless weights keep to 7 bits; 7-bit int8 weights measured less faithful (min
/// cosine to float32 0.9948 against 0.9959 over 600 code symbols) and no faster (1.13x both).
const INT8_LEVELS: f32 = 127.0;

impl Emitter {
    /// `x @ w + bias` for `w` (`[in, out]`) quantised symmetrically per output column; ONNX
    /// Runtime's DynamicQuantizeMatMul quantises `x` to uint8 per call (one scale per tensor),
    /// multiplies in integers and adds the bias.
    pub(super) fn quantized_linear(
        &mut self,
        x: &str,
        w: &Tensor,
        bias: Option<&[f32]>,
    ) -> Result<String> {
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

    /// SmoothQuant without calibration: divides channel c of a LayerNorm output by
    /// sqrt(bound_c) (the weights' rows are multiplied back), so that the few channels with large
    /// gammas no longer set the one int8 scale of the whole activation tensor.
    pub(super) fn smoothed(&mut self, x: &str) -> Result<Option<(String, Vec<f32>)>> {
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

    /// The FFN's down projection stays float32 under int8: its input (after GELU or SwiGLU) is
    /// heavy-tailed, and one int8 scale per tensor for it cost the most fidelity (measured on 300
    /// code symbols: min cosine to float32 0.987 with it quantised, 0.996 without).
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
