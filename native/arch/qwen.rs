//! The Qwen embedding family: Qwen2 (Qodo-Embed-1, gte-Qwen2: biased q/k/v) and Qwen3
//! (Qwen3-Embedding: per-head q/k RMSNorm, `head_dim` from the config). Pre-norm RMSNorm blocks,
//! grouped-query attention, rotary positions on whole heads, SwiGLU, a final norm.
use super::{Attention, Encoder, FeedForward, Layer, Linear, Mask, Norm, Residual, Rotary};
use crate::config::QwenConfig;
use crate::error::{Error, Result};
use crate::weights::Safetensors;

/// The key every Qwen checkpoint has; what stands before it is the checkpoint's prefix
/// (`model.` in gte-Qwen2, none in Qodo-Embed-1).
pub const ANCHOR: &str = "embed_tokens.weight";

pub fn load(w: &Safetensors, c: &QwenConfig, qk_norm: bool, mask: Mask) -> Result<Encoder> {
    check_supported(w, c)?;
    let (h, eps) = (c.hidden_size, c.rms_norm_eps);
    let layers = (0..c.num_hidden_layers)
        .map(|i| layer(w, c, qk_norm, &format!("layers.{i}")))
        .collect::<Result<_>>()?;
    Ok(Encoder {
        hidden: h,
        heads: c.num_attention_heads,
        kv_heads: c.kv_heads(),
        head_dim: c.head_dim(),
        word_embeddings: w.get_shaped(ANCHOR, &[c.vocab_size, h])?,
        position_embeddings: None,
        embedding_norm: None,
        layers,
        final_norm: Some(Norm::rms(w, "norm", h, eps)?),
        rotary: Some(Rotary {
            dims: c.head_dim(),
            base: c.rope_theta,
        }),
        residual: Residual::PreNorm,
        mask,
    })
}

fn check_supported(w: &Safetensors, c: &QwenConfig) -> Result<()> {
    let refuse = |what: String| {
        Err(Error::unsupported(
            &w.source,
            format!("config.json asks for {what}, which this addon does not support"),
        ))
    };
    if c.hidden_act != "silu" {
        return refuse(format!(
            "hidden_act \"{}\" (supported: \"silu\")",
            c.hidden_act
        ));
    }
    if c.rope_scaling.as_ref().is_some_and(|s| !s.is_null()) {
        return refuse("rope_scaling".into());
    }
    if c.kv_heads() == 0 || !c.num_attention_heads.is_multiple_of(c.kv_heads()) {
        return refuse(format!(
            "{} key/value heads for {} query heads (they must divide them)",
            c.kv_heads(),
            c.num_attention_heads
        ));
    }
    if !c.head_dim().is_multiple_of(2) {
        return refuse(format!("an odd head_dim ({})", c.head_dim()));
    }
    Ok(())
}

fn layer(w: &Safetensors, c: &QwenConfig, qk_norm: bool, p: &str) -> Result<Layer> {
    let (h, i, eps, d) = (
        c.hidden_size,
        c.intermediate_size,
        c.rms_norm_eps,
        c.head_dim(),
    );
    let (q_out, kv_out) = (c.num_attention_heads * d, c.kv_heads() * d);
    let bias = c.qkv_bias();
    let a = format!("{p}.self_attn");
    let head_norm = |name: &str| -> Result<Option<Norm>> {
        qk_norm
            .then(|| Norm::rms(w, &format!("{a}.{name}"), d, eps))
            .transpose()
    };
    Ok(Layer {
        attention: Attention {
            q: Linear::load(w, &format!("{a}.q_proj"), q_out, h, bias)?,
            k: Linear::load(w, &format!("{a}.k_proj"), kv_out, h, bias)?,
            v: Linear::load(w, &format!("{a}.v_proj"), kv_out, h, bias)?,
            out: Linear::load(w, &format!("{a}.o_proj"), h, q_out, false)?,
            q_norm: head_norm("q_norm")?,
            k_norm: head_norm("k_norm")?,
        },
        norm1: Norm::rms(w, &format!("{p}.input_layernorm"), h, eps)?,
        ffn: FeedForward::SwiGlu {
            up: Linear::load(w, &format!("{p}.mlp.up_proj"), i, h, false)?,
            gate: Linear::load(w, &format!("{p}.mlp.gate_proj"), i, h, false)?,
            down: Linear::load(w, &format!("{p}.mlp.down_proj"), h, i, false)?,
        },
        norm2: Norm::rms(w, &format!("{p}.post_attention_layernorm"), h, eps)?,
    })
}
