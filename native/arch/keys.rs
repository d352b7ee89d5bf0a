//! Checkpoint keys under a prefix (`keys.pp("attention")`), and the tensors an architecture
//! loads through them, each checked against the shape its config implies.
use super::encoder::{Linear, Norm, NormKind};
use crate::error::Result;
use crate::weights::{Safetensors, Tensor};

#[derive(Clone)]
pub struct Keys<'a> {
    weights: &'a Safetensors,
    prefix: String,
    /// Keys are full keys, not under the checkpoint's encoder prefix (a task head's
    /// `classifier.weight` beside `bert.`).
    full: bool,
}

impl<'a> Keys<'a> {
    pub fn new(weights: &'a Safetensors) -> Keys<'a> {
        Keys {
            weights,
            prefix: String::new(),
            full: false,
        }
    }

    /// The file that names the weights in errors.
    pub fn source(&self) -> &'a std::path::Path {
        &self.weights.source
    }

    /// Full keys, from the checkpoint's root.
    pub fn root(weights: &'a Safetensors) -> Keys<'a> {
        Keys {
            full: true,
            ..Keys::new(weights)
        }
    }

    /// The keys under `name.`.
    pub fn pp(&self, name: impl std::fmt::Display) -> Keys<'a> {
        Keys {
            weights: self.weights,
            prefix: self.key(&name.to_string()) + ".",
            full: self.full,
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub fn has(&self, name: &str) -> bool {
        match self.full {
            true => self.weights.has_key(&self.key(name)),
            false => self.weights.has(&self.key(name)),
        }
    }

    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        match self.full {
            true => self.weights.get_key_shaped(&self.key(name), shape),
            false => self.weights.get_shaped(&self.key(name), shape),
        }
    }

    /// The tensor `name` in whatever shape it has (a head's label count is read from it).
    pub fn any_shape(&self, name: &str) -> Result<Tensor> {
        match self.full {
            true => self.weights.get_key(&self.key(name)),
            false => self.weights.get(&self.key(name)),
        }
    }

    /// A PyTorch `nn.Linear` `name` with a bias: `weight` `[out, input]`, `bias` `[out]`.
    pub fn linear(&self, name: &str, out: usize, input: usize) -> Result<Linear> {
        self.linear_b(name, out, input, true)
    }

    pub fn linear_no_bias(&self, name: &str, out: usize, input: usize) -> Result<Linear> {
        self.linear_b(name, out, input, false)
    }

    /// A linear whose bias the config switches on or off.
    pub fn linear_b(&self, name: &str, out: usize, input: usize, bias: bool) -> Result<Linear> {
        let at = self.pp(name);
        Ok(Linear {
            weight: at.tensor("weight", &[out, input])?,
            bias: bias.then(|| at.tensor("bias", &[out])).transpose()?,
        })
    }

    /// A LayerNorm with bias: `name.weight`/`name.bias`, or the `gamma`/`beta` of older
    /// TensorFlow-converted checkpoints.
    pub fn layer_norm(&self, name: &str, dim: usize, eps: f32) -> Result<Norm> {
        let at = self.pp(name);
        let (weight, bias) = if at.has("gamma") {
            ("gamma", "beta")
        } else {
            ("weight", "bias")
        };
        Ok(Norm {
            kind: NormKind::LayerNorm,
            weight: at.tensor(weight, &[dim])?,
            bias: Some(at.tensor(bias, &[dim])?),
            eps,
        })
    }

    /// A LayerNorm without a bias (`bias=False`: ModernBERT's `norm_bias`).
    pub fn layer_norm_no_bias(&self, name: &str, dim: usize, eps: f32) -> Result<Norm> {
        Ok(Norm {
            kind: NormKind::LayerNorm,
            weight: self.pp(name).tensor("weight", &[dim])?,
            bias: None,
            eps,
        })
    }

    /// Gemma's RMSNorm, `x / rms(x) * (1 + weight)`: the 1 is added here, once.
    pub fn gemma_rms_norm(&self, name: &str, dim: usize, eps: f32) -> Result<Norm> {
        let mut norm = self.rms_norm(name, dim, eps)?;
        let plus_one: Vec<f32> = norm.weight.f32().iter().map(|w| 1.0 + w).collect();
        norm.weight = Tensor::new(vec![dim], plus_one);
        Ok(norm)
    }

    /// An RMSNorm: `name.weight` only.
    pub fn rms_norm(&self, name: &str, dim: usize, eps: f32) -> Result<Norm> {
        Ok(Norm {
            kind: NormKind::RmsNorm,
            weight: self.pp(name).tensor("weight", &[dim])?,
            bias: None,
            eps,
        })
    }
}
