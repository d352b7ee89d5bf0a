//! Tokenisation with the model's own `tokenizer.json`, its padding and truncation replaced by ours:
//! no padding (batches pad to their own longest), truncation at `max_length` (never rejection).
use std::path::Path;

use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::{Error, Result};

pub struct TextTokenizer {
    inner: Tokenizer,
}

impl TextTokenizer {
    pub fn load(path: &Path, max_length: usize) -> Result<Self> {
        let mut inner = Tokenizer::from_file(path).map_err(|e| {
            Error::model_file(path, format!("is not a valid Hugging Face tokenizer ({e})"))
        })?;
        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams {
                max_length,
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
        Ok(TextTokenizer { inner })
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
            .map(|e| e.get_ids().to_vec())
            .collect())
    }
}
