//! The norms of the graph: LayerNormalization, and RMSNorm as the ops ONNX Runtime fuses; in a
//! half-precision graph, a pre-norm model's float32 residual stream is normalised in float32.
use ort::operator::Attribute;

use super::emit::Emitter;
use super::plumbing::{FLOAT, FLOAT16};
use crate::arch::{Norm, NormKind};
use crate::error::Result;

impl Emitter {
    /// A pre-norm block's input, `norm(x)` (or `x` with no norm): with `wide`, `x` is float32,
    /// normalised in float32 and handed on in half precision.
    pub(super) fn block_input(
        &mut self,
        x: &str,
        norm: Option<&Norm>,
        wide: bool,
    ) -> Result<String> {
        let y = match norm {
            Some(norm) => self.norm_of(x, norm, wide)?,
            None => x.to_string(),
        };
        match wide {
            true => self.b.cast(&y, FLOAT16),
            false => Ok(y),
        }
    }

    pub(super) fn widened(&mut self, x: String, wide: bool) -> Result<String> {
        if wide {
            self.b.cast(&x, FLOAT)
        } else {
            Ok(x)
        }
    }

    /// `norm(x)`; with `wide`, `x` is float32 (the residual stream of a pre-norm model's
    /// half-precision graph), normalised in float32, and the result stays float32.
    pub(super) fn norm_of(&mut self, x: &str, norm: &Norm, wide: bool) -> Result<String> {
        match norm.kind {
            NormKind::LayerNorm => self.layer_norm(x, norm, wide),
            NormKind::RmsNorm => self.rms_norm(x, norm, 1.0, wide),
        }
    }

    /// `norm(x)` in the graph's precision.
    pub(super) fn norm(&mut self, x: &str, norm: &Norm) -> Result<String> {
        self.norm_of(x, norm, false)
    }

    /// `x / sqrt(mean(x^2) + eps) * weight * scale` over the last axis, in float32 (a half
    /// precision `x` is widened for it), as the ops ONNX Runtime fuses into
    /// SimplifiedLayerNormalization. `wide`: `x` is float32 already and the result stays so.
    pub(super) fn rms_norm(
        &mut self,
        x: &str,
        norm: &Norm,
        scale: f32,
        wide: bool,
    ) -> Result<String> {
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

    /// ONNX's LayerNormalization; `wide`: of a float32 `x` in a half-precision graph, with
    /// float32 weights.
    fn layer_norm(&mut self, x: &str, norm: &Norm, wide: bool) -> Result<String> {
        let gamma = norm.weight.f32();
        let beta = match &norm.bias {
            Some(b) => b.f32().into_owned(),
            None => vec![0.0; gamma.len()],
        };
        let shape = &norm.weight.shape;
        let (weight, bias) = match wide {
            true => (
                self.b.initializer("norm_weight", shape, &gamma)?,
                self.b.initializer("norm_bias", shape, &beta)?,
            ),
            false => (
                self.b.floats("norm_weight", shape, &gamma)?,
                self.b.floats("norm_bias", shape, &beta)?,
            ),
        };
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
}
