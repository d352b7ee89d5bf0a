//! NomicBert (CodeRankEmbed, nomic-embed-text): fused Wqkv, rotary positions, SwiGLU, post-norm.
use super::{
    add_row, Attention, Encoder, FeedForward, Layer, Linear, Mask, Norm, Residual, Rotary,
};
use crate::config::NomicBertConfig;
use crate::error::{Error, Result};
use crate::weights::Safetensors;

pub fn load(w: &Safetensors, c: &NomicBertConfig) -> Result<Encoder> {
    check_supported(w, c)?;
    let h = c.n_embd;
    let mut word_embeddings =
        w.get_shaped("embeddings.word_embeddings.weight", &[c.vocab_size, h])?;
    if c.type_vocab_size > 0 {
        let token_types = w.get_shaped(
            "embeddings.token_type_embeddings.weight",
            &[c.type_vocab_size, h],
        )?;
        add_row(&mut word_embeddings, &token_types.f32()[..h]);
    }
    let head_dim = h / c.n_head;
    let layers = (0..c.n_layer)
        .map(|i| layer(w, c, &format!("encoder.layers.{i}")))
        .collect::<Result<_>>()?;
    Ok(Encoder {
        hidden: h,
        heads: c.n_head,
        kv_heads: c.n_head,
        head_dim,
        word_embeddings,
        position_embeddings: None,
        embedding_norm: Some(Norm::load(w, "emb_ln", h, c.layer_norm_epsilon)?),
        layers,
        final_norm: None,
        residual: Residual::PostNorm,
        mask: Mask::Bidirectional,
        rotary: Some(Rotary {
            dims: (head_dim as f32 * c.rotary_emb_fraction) as usize,
            base: c.rotary_emb_base,
        }),
    })
}

fn check_supported(w: &Safetensors, c: &NomicBertConfig) -> Result<()> {
    let refuse = |what: &str| {
        Err(Error::unsupported(
            &w.source,
            format!("config.json asks for {what}, which this addon does not support"),
        ))
    };
    if c.prenorm {
        return refuse("prenorm: true");
    }
    if c.rotary_emb_interleaved {
        return refuse("rotary_emb_interleaved: true");
    }
    if c.activation_function != "swiglu" {
        return refuse(&format!(
            "activation_function \"{}\" (supported: \"swiglu\")",
            c.activation_function
        ));
    }
    if !c.n_embd.is_multiple_of(c.n_head) {
        return refuse("a hidden size that the heads do not divide");
    }
    Ok(())
}

fn layer(w: &Safetensors, c: &NomicBertConfig, p: &str) -> Result<Layer> {
    let (h, eps) = (c.n_embd, c.layer_norm_epsilon);
    let inner = c.n_inner.unwrap_or(4 * h);
    // Wqkv stacks all of q, then all of k, then all of v along its output rows.
    let qkv = Linear::load(w, &format!("{p}.attn.Wqkv"), 3 * h, h, c.qkv_proj_bias)?;
    let part = |n: usize| Linear {
        weight: qkv.weight.rows(n * h, (n + 1) * h),
        bias: qkv.bias.as_ref().map(|b| b.span(n * h, (n + 1) * h)),
    };
    Ok(Layer {
        attention: Attention {
            q: part(0),
            k: part(1),
            v: part(2),
            out: Linear::load(w, &format!("{p}.attn.out_proj"), h, h, c.qkv_proj_bias)?,
            q_norm: None,
            k_norm: None,
        },
        norm1: Norm::load(w, &format!("{p}.norm1"), h, eps)?,
        ffn: FeedForward::SwiGlu {
            up: Linear::load(w, &format!("{p}.mlp.fc11"), inner, h, c.mlp_fc1_bias)?,
            gate: Linear::load(w, &format!("{p}.mlp.fc12"), inner, h, c.mlp_fc1_bias)?,
            down: Linear::load(w, &format!("{p}.mlp.fc2"), h, inner, c.mlp_fc2_bias)?,
        },
        norm2: Norm::load(w, &format!("{p}.norm2"), h, eps)?,
    })
}
