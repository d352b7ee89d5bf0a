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
    /// Tokens kept from a text (before the appended EOS).
    keep: usize,
    /// A text longer than this many characters is cut (at a space) before tokenising: the
    /// truncated tokens come from its start, and a huge text would otherwise be tokenised whole.
    max_chars: usize,
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
        let longest = inner
            .get_vocab(true)
            .keys()
            .map(|token| token.chars().count())
            .max()
            .unwrap_or(1);
        Ok(TextTokenizer {
            inner,
            append,
            keep,
            // twice what `keep` tokens of the vocabulary's longest token can span
            max_chars: 2 * keep * longest.max(1),
        })
    }

    /// Token ids of each text (with `prefix` in front), special tokens included; encoded in parallel.
    pub fn encode(&self, texts: &[String], prefix: &str) -> Result<Vec<Vec<u32>>> {
        // a chunk at a time: the tokenizer's encodings (tokens, offsets, masks) of 100,000 texts
        // would hold hundreds of MB; only the ids are kept
        let mut ids = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(ENCODE_CHUNK) {
            ids.extend(self.encode_chunk(chunk, prefix)?);
        }
        Ok(ids)
    }

    fn encode_chunk(&self, texts: &[String], prefix: &str) -> Result<Vec<Vec<u32>>> {
        let starts: Vec<&str> = texts.iter().map(|t| cut(t, self.max_chars)).collect();
        let inputs: Vec<String> = starts.iter().map(|s| format!("{prefix}{s}")).collect();
        let encodings = self
            .inner
            .encode_batch_fast(inputs, true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        encodings
            .into_iter()
            .zip(texts.iter().zip(starts))
            .map(|(e, (text, start))| {
                let mut ids = e.get_ids().to_vec();
                // a cut text that did not fill `keep` tokens (words the vocabulary cannot split
                // become one unknown token each) is tokenised whole, so the result is exact
                if ids.len() < self.keep && start.len() < text.len() {
                    ids = self.encode_one(&format!("{prefix}{text}"))?;
                }
                ids.extend(self.append);
                Ok(ids)
            })
            .collect()
    }

    fn encode_one(&self, text: &str) -> Result<Vec<u32>> {
        self.inner
            .encode_fast(text, true)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| Error::Tokenizer(e.to_string()))
    }
}

/// Texts tokenised at once (in parallel).
const ENCODE_CHUNK: usize = 2048;

/// The start of `text` up to `max_chars` characters, ending at whitespace so that no word is
/// split (every pre-tokenizer this addon meets splits there): at the first whitespace after the
/// limit, else the last before it; a text with no whitespace at all is cut at the limit (the
/// tokens kept end long before it: `max_chars` is twice what they can span).
fn cut(text: &str, max_chars: usize) -> &str {
    let Some((at, _)) = text.char_indices().nth(max_chars) else {
        return text;
    };
    let after = text[at..]
        .char_indices()
        .take(1024)
        .find(|(_, c)| c.is_whitespace())
        .map(|(i, _)| at + i);
    let before = || text[..at].rfind(char::is_whitespace).filter(|&i| i > 0);
    &text[..after.or_else(before).unwrap_or(at)]
}

/// Whether the tokenizer's post-processor ends a sequence with `eos` (probed on a plain word).
fn ends_with(tokenizer: &Tokenizer, eos: u32) -> Result<bool> {
    let probe = tokenizer
        .encode_fast("a", true)
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
    Ok(probe.get_ids().last() == Some(&eos))
}

#[cfg(test)]
mod tests {
    use super::cut;

    #[test]
    fn long_texts_are_cut_at_whitespace() {
        assert_eq!(cut("short text", 100), "short text");
        assert_eq!(cut("abc def ghi", 5), "abc def");
        let no_space_after = format!("ab {}", "x".repeat(5000));
        assert_eq!(cut(&no_space_after, 10), "ab");
        let one_word = "y".repeat(50);
        assert_eq!(cut(&one_word, 10), "y".repeat(10));
        assert_eq!(cut("ééé ééé", 2), "ééé", "character, not byte, positions");
    }
}
