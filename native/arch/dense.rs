//! sentence-transformers' `Dense` modules (EmbeddingGemma's two, and other snapshots'), read into
//! the encoder's description so that every backend applies them after pooling.
use super::encoder::{Activation, Dense};
use super::keys::Keys;
use crate::error::{Error, Result};
use crate::model_dir::DenseModule;
use crate::weights::Safetensors;

/// The modules' weights (`linear.weight`, `linear.bias` in each folder's `model.safetensors`),
/// each module's input the previous one's output, the first's the hidden size.
pub fn read(modules: &[DenseModule], hidden: usize) -> Result<Vec<Dense>> {
    let mut input = hidden;
    modules
        .iter()
        .map(|m| {
            let dense = read_one(m, input)?;
            input = m.out_features;
            Ok(dense)
        })
        .collect()
}

fn read_one(m: &DenseModule, input: usize) -> Result<Dense> {
    let config = m.folder.join("config.json");
    if m.in_features != input {
        return Err(Error::model_file(
            &config,
            format!(
                "gives in_features {} where the vector before it has {input} values",
                m.in_features
            ),
        ));
    }
    let act = activation(&m.activation_function).ok_or_else(|| {
        Error::unsupported(
            &config,
            format!(
                "asks for activation_function {:?} (computed here: Identity, Tanh, ReLU, GELU, SiLU)",
                m.activation_function
            ),
        )
    })?;
    let weights = Safetensors::open(&m.folder, "linear.weight")?.ok_or_else(|| {
        Error::model_file(
            &m.folder,
            "has no model.safetensors (the Dense module's weights; pytorch_model.bin is not read)",
        )
    })?;
    let linear = Keys::new(&weights).linear_b("linear", m.out_features, input, m.bias)?;
    Ok(Dense {
        linear,
        act,
        norm: None,
    })
}

/// The activation a PyTorch module path names (`torch.nn.modules.activation.Tanh`).
fn activation(module: &str) -> Option<Activation> {
    Some(match module.rsplit('.').next()? {
        "Identity" => Activation::Identity,
        "Tanh" => Activation::Tanh,
        "ReLU" => Activation::Relu,
        "GELU" => Activation::Gelu,
        "SiLU" => Activation::Silu,
        _ => return None,
    })
}
