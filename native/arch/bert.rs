//! BERT (all-MiniLM, bge, e5, arctic-embed): absolute positions, biases, GELU, post-norm.
use super::{
    add_row, Activation, Attention, Encoder, FeedForward, Layer, Linear, Mask, Norm, Residual,
};
use crate::config::BertConfig;
use crate::error::{Error, Result};
use crate::weights::Safetensors;

pub fn load(w: &Safetensors, c: &BertConfig) -> Result<Encoder> {
    let act = match c.hidden_act.as_str() {
        "gelu" => Activation::Gelu,
        "relu" => Activation::Relu,
        other => {
            return Err(Error::unsupported(
                &w.source,
                format!(
                    "config.json asks for hidden_act \"{other}\"; supported: \"gelu\", \"relu\""
                ),
            ))
        }
    };
    let (h, eps) = (c.hidden_size, c.layer_norm_eps);
    let mut word_embeddings =
        w.get_shaped("embeddings.word_embeddings.weight", &[c.vocab_size, h])?;
    let token_types = w.get_shaped(
        "embeddings.token_type_embeddings.weight",
        &[c.type_vocab_size, h],
    )?;
    add_row(&mut word_embeddings, &token_types.f32()[..h]);
    let layers = (0..c.num_hidden_layers)
        .map(|i| layer(w, c, act, &format!("encoder.layer.{i}")))
        .collect::<Result<_>>()?;
    Ok(Encoder {
        hidden: h,
        heads: c.num_attention_heads,
        kv_heads: c.num_attention_heads,
        head_dim: h / c.num_attention_heads,
        word_embeddings,
        position_embeddings: Some(w.get_shaped(
            "embeddings.position_embeddings.weight",
            &[c.max_position_embeddings, h],
        )?),
        embedding_norm: Some(Norm::load(w, "embeddings.LayerNorm", h, eps)?),
        layers,
        final_norm: None,
        rotary: None,
        residual: Residual::PostNorm,
        mask: Mask::Bidirectional,
    })
}

fn layer(w: &Safetensors, c: &BertConfig, act: Activation, p: &str) -> Result<Layer> {
    let (h, i, eps) = (c.hidden_size, c.intermediate_size, c.layer_norm_eps);
    Ok(Layer {
        attention: Attention {
            q: Linear::load(w, &format!("{p}.attention.self.query"), h, h, true)?,
            k: Linear::load(w, &format!("{p}.attention.self.key"), h, h, true)?,
            v: Linear::load(w, &format!("{p}.attention.self.value"), h, h, true)?,
            out: Linear::load(w, &format!("{p}.attention.output.dense"), h, h, true)?,
            q_norm: None,
            k_norm: None,
        },
        norm1: Norm::load(w, &format!("{p}.attention.output.LayerNorm"), h, eps)?,
        ffn: FeedForward::Activation {
            up: Linear::load(w, &format!("{p}.intermediate.dense"), i, h, true)?,
            act,
            down: Linear::load(w, &format!("{p}.output.dense"), h, i, true)?,
        },
        norm2: Norm::load(w, &format!("{p}.output.LayerNorm"), h, eps)?,
    })
}
