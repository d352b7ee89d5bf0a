//! Reranking's two ends: (query, document) pairs tokenised as the reranker was trained to read
//! them, and its logits turned into hits, best first.
use std::path::Path;

use napi_derive::napi;

use crate::arch::Scoring;
use crate::error::{Error, Result};
use crate::tokenize::TextTokenizer;

/// Qwen3-Reranker's prompt, from its model card: the system line and the user turn's start ...
const JUDGE_PREFIX: &str = "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n";
/// ... and the assistant's turn with an empty think block, after which it answers.
const JUDGE_SUFFIX: &str = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n";
/// The card's default instruction.
pub const DEFAULT_INSTRUCTION: &str =
    "Given a web search query, retrieve relevant passages that answer the query";

/// One call's options: `topK` (only the best K hits), `rawScores` (the logit instead of its
/// sigmoid) and `instruction` (a judge's task, Qwen3-Reranker's `<Instruct>`).
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct RerankOptions {
    /// A number, not `u32`: napi would wrap -1 and cut 1.5 without a word; `check` refuses them.
    pub top_k: Option<f64>,
    pub raw_scores: Option<bool>,
    pub instruction: Option<String>,
}

/// A document's place in the call's list and its score.
#[napi(object)]
#[derive(Debug, Clone, PartialEq)]
pub struct RerankHit {
    pub index: u32,
    pub score: f64,
}

/// How the pairs of a reranker are tokenised.
pub struct Pairs {
    scoring: Scoring,
    /// A judge's prompt around its text (empty for a cross-encoder).
    prefix: Vec<u32>,
    suffix: Vec<u32>,
}

impl Pairs {
    /// The pairs' tokenizer for `scoring` at `max_length` tokens a pair, and how to use it: a
    /// judge's text is truncated to what its prompt leaves.
    pub fn load(
        file: &Path,
        scoring: Scoring,
        max_length: usize,
    ) -> Result<(Pairs, TextTokenizer)> {
        let whole = TextTokenizer::load(file, max_length, None)?;
        if scoring == Scoring::Pair {
            let pairs = Pairs {
                scoring,
                prefix: Vec::new(),
                suffix: Vec::new(),
            };
            return Ok((pairs, whole.for_pairs()?));
        }
        let prefix = whole.encode_bare(JUDGE_PREFIX)?;
        let suffix = whole.encode_bare(JUDGE_SUFFIX)?;
        let prompt = prefix.len() + suffix.len();
        if max_length <= prompt {
            return Err(Error::Input(format!(
                "maxLength {max_length} leaves no room for the document: the reranker's prompt alone is {prompt} tokens"
            )));
        }
        let tokenizer = whole.with_max_length(max_length - prompt, file)?;
        let pairs = Pairs {
            scoring,
            prefix,
            suffix,
        };
        Ok((pairs, tokenizer))
    }

    /// Token ids and token types (0: query, 1: document) of each (`query`, document) pair.
    pub fn encode(
        &self,
        tokenizer: &TextTokenizer,
        query: &str,
        docs: &[String],
        instruction: Option<&str>,
    ) -> Result<Vec<(Vec<u32>, Vec<u8>)>> {
        match self.scoring {
            Scoring::Pair if instruction.is_some() => Err(Error::Input(
                "instruction applies to a yes/no judge (Qwen3-Reranker); this cross-encoder scores the (query, document) pair as it is".into(),
            )),
            Scoring::Pair => tokenizer.encode_pairs(query, docs),
            Scoring::Judge => {
                let instruction = instruction.unwrap_or(DEFAULT_INSTRUCTION);
                let texts: Vec<String> = docs
                    .iter()
                    .map(|d| format!("<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {d}"))
                    .collect();
                let middles = tokenizer.encode(&texts, "")?;
                Ok(middles.into_iter().map(|m| self.wrap(m)).collect())
            }
        }
    }

    fn wrap(&self, middle: Vec<u32>) -> (Vec<u32>, Vec<u8>) {
        let ids: Vec<u32> = [&self.prefix, &middle, &self.suffix]
            .into_iter()
            .flatten()
            .copied()
            .collect();
        let types = vec![0; ids.len()];
        (ids, types)
    }
}

/// The hits of `logits` (one per document, in order), best first (ties by index), the first
/// `top_k` of them; scores are sigmoid(logit) unless `raw_scores`.
pub fn rank(logits: &[f32], options: &RerankOptions) -> Vec<RerankHit> {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    let keep = options.top_k.map_or(order.len(), |k| k as usize);
    let raw = options.raw_scores.unwrap_or(false);
    order
        .into_iter()
        .take(keep)
        .map(|i| {
            let logit = f64::from(logits[i]);
            RerankHit {
                index: i as u32,
                score: if raw { logit } else { sigmoid(logit) },
            }
        })
        .collect()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// `topK` must be a positive integer.
pub fn check(options: &RerankOptions) -> Result<()> {
    match options.top_k {
        Some(k) if !(k >= 1.0 && k.fract() == 0.0 && k <= f64::from(u32::MAX)) => {
            Err(Error::Input(format!(
                "topK must be a positive integer (how many of the best documents to return), got {k}"
            )))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_are_sorted_best_first_and_cut_at_top_k() {
        let logits = [0.5, 2.0, -1.0, 2.0];
        let all = rank(&logits, &RerankOptions::default());
        let order: Vec<u32> = all.iter().map(|h| h.index).collect();
        assert_eq!(order, [1, 3, 0, 2], "ties keep the documents' order");
        assert!((all[0].score - 1.0 / (1.0 + (-2f64).exp())).abs() < 1e-12);
        let top = RerankOptions {
            top_k: Some(2.0),
            raw_scores: Some(true),
            ..Default::default()
        };
        assert_eq!(
            rank(&logits, &top),
            [
                RerankHit {
                    index: 1,
                    score: 2.0
                },
                RerankHit {
                    index: 3,
                    score: 2.0
                }
            ]
        );
        let many = RerankOptions {
            top_k: Some(10.0),
            ..Default::default()
        };
        assert_eq!(rank(&logits, &many).len(), 4);
        for bad in [0.0, -1.0, 1.5, f64::NAN] {
            let options = RerankOptions {
                top_k: Some(bad),
                ..Default::default()
            };
            assert!(check(&options).is_err(), "{bad}");
        }
    }
}
