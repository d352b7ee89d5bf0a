//! BERT (all-MiniLM, bge, e5, arctic-embed) and RoBERTa / XLM-RoBERTa (bge-m3, multilingual-e5,
//! arctic-embed-l-v2): absolute positions, biases, GELU, post-norm. RoBERTa's positions start
//! after the padding id (`pad_token_id + 1`, as transformers' `create_position_ids_from_input_ids`
//! counts them for right-padded input), so its position table is read from that row on.
use serde::Deserialize;

use super::architecture::Architecture;
use super::encoder::{
    add_row, Activation, Attention, AttentionDirection, Encoder, FeedForward, Layer, Residual,
};
use super::keys::Keys;
use super::sizes::Sizes;
use crate::error::{Error, Result};
use crate::weights::Safetensors;

/// `config.json` of a BERT model.
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f32,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    /// `absolute` is the only one built here (jina-embeddings-v2's `alibi` is refused).
    pub position_embedding_type: Option<String>,
    pub pad_token_id: Option<usize>,
    /// jina-embeddings-v3's task adapters, which only its ONNX file applies.
    pub lora_adaptations: Option<serde_json::Value>,
    #[serde(skip)]
    kind: Kind,
}

/// Which of the two position layouts, and the `model_type` the snapshot gave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Kind {
    #[default]
    Bert,
    Roberta,
    XlmRoberta,
}

fn two() -> usize {
    2
}
fn default_eps() -> f32 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}

pub fn parse(text: &str) -> serde_json::Result<Box<dyn Architecture>> {
    parse_kind(text, Kind::Bert)
}

pub fn parse_roberta(text: &str) -> serde_json::Result<Box<dyn Architecture>> {
    parse_kind(text, Kind::Roberta)
}

pub fn parse_xlm_roberta(text: &str) -> serde_json::Result<Box<dyn Architecture>> {
    parse_kind(text, Kind::XlmRoberta)
}

fn parse_kind(text: &str, kind: Kind) -> serde_json::Result<Box<dyn Architecture>> {
    let config: BertConfig = serde_json::from_str(text)?;
    Ok(Box::new(BertConfig { kind, ..config }))
}

impl BertConfig {
    /// The first row of the position table a sequence uses: `pad_token_id + 1` for RoBERTa.
    /// Absolute positions only: jina-embeddings-v3 (`rotary`, run from its ONNX file) has none.
    fn position_offset(&self) -> usize {
        let absolute = matches!(
            self.position_embedding_type.as_deref(),
            None | Some("absolute")
        );
        match self.kind {
            Kind::Roberta | Kind::XlmRoberta if absolute => self.pad_token_id.unwrap_or(1) + 1,
            _ => 0,
        }
    }

    /// What in the config this addon would compute wrongly, named.
    fn unsupported(&self) -> Option<String> {
        if let Some(kind) = self.position_embedding_type.as_deref() {
            if kind != "absolute" {
                return Some(format!(
                    "asks for position_embedding_type \"{kind}\" (built here: \"absolute\")"
                ));
            }
        }
        if self.lora_adaptations.is_some() {
            return Some("has LoRA task adapters (lora_adaptations)".into());
        }
        if self.position_offset() >= self.max_position_embeddings {
            return Some(format!(
                "gives pad_token_id {} with {} positions (RoBERTa's positions start after the padding id)",
                self.position_offset() - 1,
                self.max_position_embeddings
            ));
        }
        if Activation::from_hf(&self.hidden_act).is_none() {
            return Some(format!(
                "asks for hidden_act \"{}\" (built here: \"gelu\", \"gelu_new\", \"relu\", \"silu\")",
                self.hidden_act
            ));
        }
        None
    }
}

impl Architecture for BertConfig {
    fn model_type(&self) -> &str {
        match self.kind {
            Kind::Bert => "bert",
            Kind::Roberta => "roberta",
            Kind::XlmRoberta => "xlm-roberta",
        }
    }

    fn sizes(&self) -> Option<Sizes> {
        Some(Sizes {
            hidden: self.hidden_size,
            layers: self.num_hidden_layers,
            heads: self.num_attention_heads,
            kv_heads: self.num_attention_heads,
            head_dim: self.hidden_size / self.num_attention_heads.max(1),
            inner: self.intermediate_size,
            vocab: self.vocab_size,
            positions: self.max_position_embeddings,
            rotary: false,
            free_head_dim: false,
        })
    }

    fn max_trained_tokens(&self) -> usize {
        self.max_position_embeddings
            .saturating_sub(self.position_offset())
            .max(1)
    }

    fn not_buildable(&self) -> Option<String> {
        self.unsupported()
    }

    fn anchor(&self) -> Option<&'static str> {
        Some("embeddings.word_embeddings.weight")
    }

    fn describe(&self, w: &Safetensors, _: AttentionDirection) -> Result<Encoder> {
        let c = self;
        let act = Activation::from_hf(&c.hidden_act)
            .ok_or_else(|| Error::unsupported(&w.source, "hidden_act".to_string()))?;
        let (h, eps) = (c.hidden_size, c.layer_norm_eps);
        let keys = Keys::new(w);
        let embeddings = keys.pp("embeddings");
        let mut word_embeddings =
            embeddings.tensor("word_embeddings.weight", &[c.vocab_size, h])?;
        let token_types =
            embeddings.tensor("token_type_embeddings.weight", &[c.type_vocab_size, h])?;
        add_row(&mut word_embeddings, &token_types.f32()[..h]);
        let layers = (0..c.num_hidden_layers)
            .map(|i| c.layer(&keys.pp("encoder.layer").pp(i), act))
            .collect::<Result<_>>()?;
        let positions = embeddings.tensor(
            "position_embeddings.weight",
            &[c.max_position_embeddings, h],
        )?;
        let head_dim = h / c.num_attention_heads;
        Ok(Encoder {
            hidden: h,
            heads: c.num_attention_heads,
            kv_heads: c.num_attention_heads,
            head_dim,
            word_embeddings,
            position_embeddings: Some(
                positions.rows(c.position_offset(), c.max_position_embeddings),
            ),
            embedding_norm: Some(embeddings.layer_norm("LayerNorm", h, eps)?),
            layers,
            final_norm: None,
            rotary: None,
            residual: Residual::PostNorm,
            direction: AttentionDirection::Bidirectional,
            attention_scale: Encoder::default_scale(head_dim),
            window: None,
            dense: Vec::new(),
            type_shift: None,
        })
    }
}

impl BertConfig {
    fn layer(&self, keys: &Keys, act: Activation) -> Result<Layer> {
        let (h, i, eps) = (
            self.hidden_size,
            self.intermediate_size,
            self.layer_norm_eps,
        );
        let (attention, output) = (keys.pp("attention.self"), keys.pp("attention.output"));
        Ok(Layer {
            attention: Attention {
                q: attention.linear("query", h, h)?,
                k: attention.linear("key", h, h)?,
                v: attention.linear("value", h, h)?,
                out: output.linear("dense", h, h)?,
                q_norm: None,
                k_norm: None,
            },
            norm1: Some(output.layer_norm("LayerNorm", h, eps)?),
            ffn: FeedForward::Activation {
                up: keys.linear("intermediate.dense", i, h)?,
                act,
                down: keys.linear("output.dense", h, i)?,
            },
            norm2: keys.layer_norm("output.LayerNorm", h, eps)?,
            post_attention_norm: None,
            post_ffn_norm: None,
            sliding: false,
        })
    }
}
