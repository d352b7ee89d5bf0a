//! A reranker's head: what turns the encoder's final states into one relevance logit per
//! (query, document) pair, as transformers computes it. `config.json`'s `architectures` says
//! which head the checkpoint has; the head becomes the encoder's layers after pooling
//! (`Encoder::dense`), so every backend runs it as it runs a `Dense` module.
use std::path::Path;

use serde::Deserialize;

use super::encoder::{Activation, Dense, Encoder, Linear};
use super::keys::Keys;
use crate::error::{Error, Result};
use crate::pooling::Pooling;
use crate::weights::{Safetensors, Tensor};

/// Where a checkpoint keeps its head, and what it computes.
#[derive(Debug, Clone, PartialEq)]
enum Layout {
    /// BERT: `bert.pooler.dense` + tanh on [CLS], then `classifier`.
    BertPooler,
    /// RoBERTa, XLM-RoBERTa: `classifier.dense` + tanh on `<s>`, then `classifier.out_proj`.
    RobertaClassifier,
    /// ModernBERT: `head` (dense, activation, LayerNorm) on the pooled state, then `classifier`.
    ModernBert {
        act: Activation,
        bias: bool,
        norm_bias: bool,
        eps: f32,
    },
    /// Qwen's sequence classification: `score` on the last token.
    Score,
    /// A causal LM judging relevance (Qwen3-Reranker): the output projection's rows of the
    /// tokens "yes" and "no" on the last token; tied to the embedding table or `lm_head`.
    YesNo { yes: u32, no: u32, tied: bool },
}

/// What the snapshot's `config.json` (and, for a yes/no judge, its tokenizer) say of the head.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadPlan {
    layout: Layout,
    pub pooling: Pooling,
    /// `architectures[0]`, as the snapshot names it.
    pub class: String,
    /// BERT's token-type table has a row for the document's segment.
    segments: bool,
}

/// How a reranker's logit comes about: what the input looks like around the texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scoring {
    /// The pair as the tokenizer's own template joins two sequences.
    Pair,
    /// Qwen3-Reranker's chat prompt around the instruction, query and document.
    Judge,
}

#[derive(Deserialize)]
struct HeadConfig {
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    model_type: String,
    classifier_pooling: Option<String>,
    classifier_activation: Option<String>,
    #[serde(default)]
    classifier_bias: bool,
    #[serde(default)]
    norm_bias: bool,
    norm_eps: Option<f32>,
    #[serde(default)]
    type_vocab_size: usize,
    #[serde(default)]
    tie_word_embeddings: bool,
}

impl HeadPlan {
    /// The head `config.json` (`config` names it in errors) describes; `tokenizer` is read only
    /// for a yes/no judge's token ids. `pools`: the snapshot is laid out as a sentence-transformers
    /// embedding model (a Pooling module), as Qwen3-Embedding and Qodo-Embed-1 are, whose
    /// configs name a causal LM too.
    pub fn read(config: &Path, text: &str, tokenizer: &Path, pools: bool) -> Result<HeadPlan> {
        let c: HeadConfig = serde_json::from_str(text)
            .map_err(|e| Error::model_file(config, format!("has malformed head fields ({e})")))?;
        let class = c.architectures.first().cloned().unwrap_or_default();
        let family = c.model_type.as_str();
        let unsupported = |what: String| Error::unsupported(config, what);
        let (layout, pooling) = if class.ends_with("ForSequenceClassification") {
            match family {
                "bert" => (Layout::BertPooler, Pooling::Cls),
                "roberta" | "xlm-roberta" => (Layout::RobertaClassifier, Pooling::Cls),
                "modernbert" => modernbert(&c).map_err(unsupported)?,
                "qwen2" | "qwen3" => (Layout::Score, Pooling::LastToken),
                other => {
                    return Err(unsupported(format!(
                        "names {class} of model_type {other:?}, a classification head this addon does not compute (it reranks with BERT, RoBERTa, XLM-RoBERTa, ModernBERT and Qwen heads)"
                    )))
                }
            }
        } else if class == "Qwen3ForCausalLM" && family == "qwen3" && !pools {
            let (yes, no) = yes_no(tokenizer)?;
            let tied = c.tie_word_embeddings;
            (Layout::YesNo { yes, no, tied }, Pooling::LastToken)
        } else {
            let pooled = if pools {
                " and a sentence-transformers Pooling module"
            } else {
                ""
            };
            return Err(unsupported(format!(
                "names architectures {:?}{pooled}: an embedding model, with no classification head (…ForSequenceClassification) and no yes/no judgement (a Qwen3ForCausalLM laid out as Qwen3-Reranker) to score pairs with. Embed with it (Model.load, init); rerank with a reranker snapshot such as cross-encoder/ms-marco-MiniLM-L6-v2, BAAI/bge-reranker-v2-m3 or Qwen/Qwen3-Reranker-0.6B",
                c.architectures
            )));
        };
        Ok(HeadPlan {
            segments: layout == Layout::BertPooler && c.type_vocab_size >= 2,
            layout,
            pooling,
            class,
        })
    }

    pub fn scoring(&self) -> Scoring {
        match self.layout {
            Layout::YesNo { .. } => Scoring::Judge,
            _ => Scoring::Pair,
        }
    }

    /// What `info()` says of the head (and what the graph cache keys it by).
    pub fn describe(&self) -> String {
        let head = match &self.layout {
            Layout::BertPooler => "pooler dense + tanh on [CLS], classifier".into(),
            Layout::RobertaClassifier => "classifier dense + tanh on <s>, out_proj".into(),
            Layout::ModernBert { act, .. } => {
                format!(
                    "{:?} pooling, head dense + {act:?} + LayerNorm, classifier",
                    self.pooling
                )
            }
            Layout::Score => "score on the last token".into(),
            Layout::YesNo { yes, no, .. } => {
                format!("logit of 'yes' ({yes}) minus 'no' ({no}) on the last token")
            }
        };
        format!("{}: {head}", self.class)
    }

    /// Puts the head's layers after pooling in `encoder` (and BERT's segment shift), from the
    /// checkpoint's head tensors.
    pub fn attach(&self, encoder: &mut Encoder, weights: &Safetensors) -> Result<()> {
        let h = encoder.hidden;
        let (root, inner) = (Keys::root(weights), Keys::new(weights));
        let tanh = |linear| Dense {
            linear,
            act: Activation::Tanh,
            norm: None,
        };
        encoder.dense = match &self.layout {
            Layout::BertPooler => vec![
                tanh(inner.linear("pooler.dense", h, h)?),
                logit(one_label(&root, "classifier", h, true)?),
            ],
            Layout::RobertaClassifier => vec![
                tanh(root.linear("classifier.dense", h, h)?),
                logit(one_label(&root, "classifier.out_proj", h, true)?),
            ],
            Layout::ModernBert {
                act,
                bias,
                norm_bias,
                eps,
            } => {
                let head = root.pp("head");
                let norm = match norm_bias {
                    true => head.layer_norm("norm", h, *eps)?,
                    false => head.layer_norm_no_bias("norm", h, *eps)?,
                };
                let dense = Dense {
                    linear: head.linear_b("dense", h, h, *bias)?,
                    act: *act,
                    norm: Some(norm),
                };
                vec![dense, logit(one_label(&root, "classifier", h, true)?)]
            }
            Layout::Score => vec![logit(one_label(&root, "score", h, false)?)],
            Layout::YesNo { yes, no, tied } => {
                let (yes, no) = match tied {
                    true => {
                        let table = &encoder.word_embeddings;
                        let row = |id| table_row(table, id, &weights.source);
                        (row(*yes)?, row(*no)?)
                    }
                    false => {
                        let row = |id: &u32| weights.get_key_row("lm_head.weight", *id as usize);
                        (row(yes)?, row(no)?)
                    }
                };
                vec![logit(judge_row(&yes, &no, h, &weights.source)?)]
            }
        };
        if self.segments {
            let types = inner.tensor("embeddings.token_type_embeddings.weight", &[2, h])?;
            let rows = types.f32();
            let shift: Vec<f32> = (0..h).map(|i| rows[h + i] - rows[i]).collect();
            encoder.type_shift = Some(Tensor::new(vec![h], shift));
        }
        Ok(())
    }
}

fn modernbert(c: &HeadConfig) -> std::result::Result<(Layout, Pooling), String> {
    let pooling = match c.classifier_pooling.as_deref().unwrap_or("cls") {
        "cls" => Pooling::Cls,
        "mean" => Pooling::Mean,
        other => {
            return Err(format!(
                "asks for classifier_pooling {other:?} (computed here: \"cls\", \"mean\")"
            ))
        }
    };
    let name = c.classifier_activation.as_deref().unwrap_or("gelu");
    let act = Activation::from_hf(name)
        .ok_or_else(|| format!("asks for classifier_activation {name:?}, not computed here"))?;
    let layout = Layout::ModernBert {
        act,
        bias: c.classifier_bias,
        norm_bias: c.norm_bias,
        eps: c.norm_eps.unwrap_or(1e-5),
    };
    Ok((layout, pooling))
}

/// The last layer: the logit, as it is.
fn logit(linear: Linear) -> Dense {
    Dense {
        linear,
        act: Activation::Identity,
        norm: None,
    }
}

/// A classifier of one label (`[1, input]`); more labels are refused by count.
fn one_label(keys: &Keys, name: &str, input: usize, bias: bool) -> Result<Linear> {
    let at = keys.pp(name);
    let weight = at.any_shape("weight")?;
    if weight.shape.len() == 2 && weight.shape[0] != 1 {
        return Err(Error::unsupported(
            keys.source(),
            format!(
                "has {name}.weight for {} labels; a reranker scores one (a relevance logit)",
                weight.shape[0]
            ),
        ));
    }
    keys.linear_b(name, 1, input, bias)
}

/// Row `id` of the embedding table, `[1, hidden]`.
fn table_row(table: &Tensor, id: u32, source: &Path) -> Result<Tensor> {
    let vocab = table.shape.first().copied().unwrap_or(0);
    if table.shape.len() != 2 || id as usize >= vocab {
        return Err(Error::model_file(
            source,
            format!(
                "has an embedding table of shape {:?}, which has no row for token {id}",
                table.shape
            ),
        ));
    }
    Ok(table.rows(id as usize, id as usize + 1))
}

/// `yes - no`, two rows of the output projection: its product with the last state is
/// logit(yes) - logit(no), the judge's raw score, without the vocabulary.
fn judge_row(yes: &Tensor, no: &Tensor, h: usize, source: &Path) -> Result<Linear> {
    if yes.shape != [1, h] || no.shape != [1, h] {
        return Err(Error::model_file(
            source,
            format!(
                "has output projection rows of shape {:?}, where the hidden size is {h}",
                yes.shape
            ),
        ));
    }
    let (yes, no) = (yes.f32(), no.f32());
    let difference: Vec<f32> = yes.iter().zip(no.iter()).map(|(y, n)| y - n).collect();
    Ok(Linear {
        weight: Tensor::new(vec![1, h], difference),
        bias: None,
    })
}

/// The ids of the tokens "yes" and "no" in the snapshot's vocabulary.
fn yes_no(tokenizer: &Path) -> Result<(u32, u32)> {
    let t = tokenizers::Tokenizer::from_file(tokenizer).map_err(|e| {
        Error::model_file(
            tokenizer,
            format!("is not a valid Hugging Face tokenizer ({e})"),
        )
    })?;
    match (t.token_to_id("yes"), t.token_to_id("no")) {
        (Some(yes), Some(no)) => Ok((yes, no)),
        _ => Err(Error::unsupported(
            tokenizer,
            "has no tokens \"yes\" and \"no\": a causal LM reranks here only as a yes/no judge (Qwen3-Reranker); this looks like an embedding or chat model",
        )),
    }
}
