//! Tokenisation with the model's own `tokenizer.json`, its padding and truncation replaced by ours:
//! no padding (batches pad to their own longest), truncation at `max_length` (never rejection).
use std::path::Path;

use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::{Error, Result};

pub struct TextTokenizer {
    inner: Tokenizer,
    /// The end-of-sequence id to append after truncation, when the tokenizer's own template
    /// does not end sequences with it.
    append: Option<u32>,
}

impl TextTokenizer {
    /// `eos`: the token every sequence must end with (last-token pooling pools it); appended
    /// exactly once, after truncating to `max_length - 1`, unless the tokenizer does it itself.
    pub fn load(path: &Path, max_length: usize, eos: Option<u32>) -> Result<Self> {
        let mut inner = Tokenizer::from_file(path).map_err(|e| {
            Error::model_file(path, format!("is not a valid Hugging Face tokenizer ({e})"))
        })?;
        inner.with_padding(None);
        let append = match eos {
            Some(id) if !ends_with(&inner, id)? => Some(id),
            _ => None,
        };
        let keep = max_length - usize::from(append.is_some());
        if keep == 0 {
            return Err(Error::Input(format!(
                "maxLength {max_length} leaves no room for a token before the end-of-sequence token"
            )));
        }
        inner
            .with_truncation(Some(TruncationParams {
                max_length: keep,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| {
                Error::Input(format!(
                    "maxLength {max_length} cannot be used with {}: {e}",
                    path.display()
                ))
            })?;
        Ok(TextTokenizer { inner, append })
    }

    /// Token ids of each text (with `prefix` in front), special tokens included; encoded in parallel.
    pub fn encode(&self, texts: &[String], prefix: &str) -> Result<Vec<Vec<u32>>> {
        let encodings = if prefix.is_empty() {
            self.inner
                .encode_batch_fast(texts.iter().map(String::as_str).collect(), true)
        } else {
            let prefixed: Vec<String> = texts.iter().map(|t| format!("{prefix}{t}")).collect();
            self.inner.encode_batch_fast(prefixed, true)
        };
        let encodings = encodings.map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(encodings
            .into_iter()
            .map(|e| {
                let mut ids = e.get_ids().to_vec();
                ids.extend(self.append);
                ids
            })
            .collect())
    }
}

/// Whether the tokenizer's post-processor ends a sequence with `eos` (probed on a plain word).
fn ends_with(tokenizer: &Tokenizer, eos: u32) -> Result<bool> {
    let probe = tokenizer
        .encode_fast("a", true)
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
    Ok(probe.get_ids().last() == Some(&eos))
}
