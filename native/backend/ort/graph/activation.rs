//! Activation functions as graph operations, in the forms ONNX Runtime fuses.
use super::plumbing::Builder;
use crate::arch::Activation;
use crate::error::Result;

/// `act(x)`, in the precision of `x`.
pub(super) fn activate(b: &mut Builder, x: &str, act: Activation) -> Result<String> {
    match act {
        Activation::Gelu => gelu(b, x),
        Activation::GeluTanh => gelu_tanh(b, x),
        Activation::Relu => b.op("Relu", &[x], vec![]),
        Activation::Silu => {
            let sigmoid = b.op("Sigmoid", &[x], vec![])?;
            b.op("Mul", &[x, &sigmoid], vec![])
        }
        Activation::Tanh => b.op("Tanh", &[x], vec![]),
        Activation::Identity => Ok(x.to_string()),
    }
}

/// A value `act` never goes below (for the int8 rules), where it has one.
pub(super) fn floor(act: Activation) -> Option<f32> {
    match act {
        // just below GELU's least value, -0.16997 (at x = -0.75179), and its tanh form's
        Activation::Gelu | Activation::GeluTanh => Some(-0.17),
        Activation::Relu => Some(0.0),
        // SiLU's least value is -0.27846 (at x = -1.27846)
        Activation::Silu => Some(-0.28),
        Activation::Tanh => Some(-1.0),
        Activation::Identity => None,
    }
}

/// `x * 0.5 * (1 + erf(x / sqrt 2))`, in the form ONNX Runtime fuses into one Gelu kernel.
fn gelu(b: &mut Builder, x: &str) -> Result<String> {
    let sqrt2 = b.scalar(std::f32::consts::SQRT_2)?;
    let one = b.scalar(1.0)?;
    let half = b.scalar(0.5)?;
    let d = b.op("Div", &[x, &sqrt2], vec![])?;
    let e = b.op("Erf", &[&d], vec![])?;
    let a = b.op("Add", &[&e, &one], vec![])?;
    let m = b.op("Mul", &[x, &a], vec![])?;
    b.op("Mul", &[&m, &half], vec![])
}

/// `0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))`, PyTorch's `approximate='tanh'`.
fn gelu_tanh(b: &mut Builder, x: &str) -> Result<String> {
    let c = b.scalar(0.044715)?;
    let k = b.scalar((2.0 / std::f32::consts::PI).sqrt())?;
    let one = b.scalar(1.0)?;
    let half = b.scalar(0.5)?;
    let square = b.op("Mul", &[x, x], vec![])?;
    let cube = b.op("Mul", &[&square, x], vec![])?;
    let term = b.op("Mul", &[&cube, &c], vec![])?;
    let inner = b.op("Add", &[x, &term], vec![])?;
    let scaled = b.op("Mul", &[&inner, &k], vec![])?;
    let t = b.op("Tanh", &[&scaled], vec![])?;
    let a = b.op("Add", &[&t, &one], vec![])?;
    let m = b.op("Mul", &[x, &a], vec![])?;
    b.op("Mul", &[&m, &half], vec![])
}
