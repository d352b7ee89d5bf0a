//! Tokenisation with the model's own `tokenizer.json`, its padding and truncation replaced by ours:
//! no padding (batches pad to their own longest), truncation at `max_length` (never rejection).
use std::path::Path;

use tokenizers::{
    Encoding, PostProcessor, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

use crate::error::{Error, Result};

pub struct TextTokenizer {
    inner: Tokenizer,
    /// The same tokenizer without truncation, made the first time a count needs it.
    whole: std::sync::OnceLock<Tokenizer>,
    /// The end-of-sequence id to append after truncation, when the tokenizer's own template
    /// does not end sequences with it.
    append: Option<u32>,
    /// Tokens kept from a text (before the appended EOS).
    keep: usize,
    /// A text longer than this many characters is cut (at a space) before tokenising: the
    /// truncated tokens come from its start, and a huge text would otherwise be tokenised whole.
    max_chars: usize,
    /// The characters of the vocabulary's longest token.
    longest: usize,
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
        let longest = inner
            .get_vocab(true)
            .keys()
            .map(|token| token.chars().count())
            .max()
            .unwrap_or(1);
        let tokenizer = TextTokenizer {
            inner,
            whole: std::sync::OnceLock::new(),
            append,
            keep: 0,
            max_chars: 0,
            longest: longest.max(1),
        };
        tokenizer.with_max_length(max_length, path)
    }

    /// The same tokenizer truncating at `max_length` tokens (`path` names it in errors).
    pub fn with_max_length(mut self, max_length: usize, path: &Path) -> Result<Self> {
        let keep = max_length.saturating_sub(usize::from(self.append.is_some()));
        if keep == 0 {
            return Err(Error::Input(format!(
                "maxLength {max_length} leaves no room for a token before the end-of-sequence token"
            )));
        }
        self.inner
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
        self.keep = keep;
        // twice what `keep` tokens of the vocabulary's longest token can span
        self.max_chars = 2 * keep * self.longest;
        Ok(self)
    }

    /// Token ids of each text (with `prefix` in front), special tokens included; encoded in parallel.
    pub fn encode(&self, texts: &[String], prefix: &str) -> Result<Vec<Vec<u32>>> {
        Ok(self.encode_counted(texts, prefix)?.ids)
    }

    /// `encode`, and how many of the texts were cut at the maximum length.
    pub fn encode_counted(&self, texts: &[String], prefix: &str) -> Result<Encoded> {
        // a chunk at a time: the tokenizer's encodings (tokens, offsets, masks) of 100,000 texts
        // would hold hundreds of MB; only the ids are kept
        let mut encoded = Encoded {
            ids: Vec::with_capacity(texts.len()),
            truncated: 0,
        };
        for chunk in texts.chunks(ENCODE_CHUNK) {
            for (ids, cut_short) in self.encode_chunk(chunk, prefix)? {
                encoded.ids.push(ids);
                encoded.truncated += usize::from(cut_short);
            }
        }
        Ok(encoded)
    }

    /// How many tokens each text (with `prefix` in front) becomes, special tokens and the
    /// appended end-of-sequence token included, before truncation: the whole text is tokenised.
    pub fn count(&self, texts: &[String], prefix: &str) -> Result<Vec<u32>> {
        let whole = self.untruncated()?;
        let mut counts = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(ENCODE_CHUNK) {
            let inputs: Vec<String> = chunk.iter().map(|t| format!("{prefix}{t}")).collect();
            let encodings = whole
                .encode_batch_fast(inputs, true)
                .map_err(|e| Error::Tokenizer(e.to_string()))?;
            let extra = usize::from(self.append.is_some());
            counts.extend(
                encodings
                    .iter()
                    .map(|e| u32::try_from(e.len() + extra).unwrap_or(u32::MAX)),
            );
        }
        Ok(counts)
    }

    fn untruncated(&self) -> Result<&Tokenizer> {
        if let Some(whole) = self.whole.get() {
            return Ok(whole);
        }
        let mut whole = self.inner.clone();
        whole
            .with_truncation(None)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(self.whole.get_or_init(|| whole))
    }

    /// Each text's ids, and whether it was cut at the maximum length.
    fn encode_chunk(&self, texts: &[String], prefix: &str) -> Result<Vec<(Vec<u32>, bool)>> {
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
                // truncation leaves the rest as the overflowing part
                let mut truncated = !e.get_overflowing().is_empty();
                if start.len() < text.len() {
                    // a cut text that did not fill `keep` tokens (words the vocabulary cannot
                    // split become one unknown token each) is tokenised whole, so the result is
                    // exact; one that filled them has more after the cut
                    truncated = true;
                    if ids.len() < self.keep {
                        let whole = self.inner.encode_fast(format!("{prefix}{text}"), true);
                        let whole = whole.map_err(|e| Error::Tokenizer(e.to_string()))?;
                        truncated = !whole.get_overflowing().is_empty();
                        ids = whole.get_ids().to_vec();
                    }
                }
                ids.extend(self.append);
                Ok((ids, truncated))
            })
            .collect()
    }

    /// Token ids and token types of each (`query`, document) pair, joined by the tokenizer's
    /// own pair template (BERT's `[CLS] q [SEP] d [SEP]`, XLM-R's `<s> q </s></s> d </s>`) and
    /// truncated `longest_first` to the maximum length, as sentence-transformers' CrossEncoder
    /// tokenises. The query is tokenised once. Only on a tokenizer made `for_pairs`.
    pub fn encode_pairs(&self, query: &str, docs: &[String]) -> Result<Vec<(Vec<u32>, Vec<u8>)>> {
        let failed = |e: tokenizers::Error| Error::Tokenizer(e.to_string());
        let whole = &self.inner;
        if whole.get_truncation().is_some() {
            return Err(Error::Internal("pairs on a truncating tokenizer".into()));
        }
        let query = whole.encode_fast(query, false).map_err(failed)?;
        let added = whole
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(true));
        let budget = self.keep.saturating_sub(added);
        let mut pairs = Vec::with_capacity(docs.len());
        for chunk in docs.chunks(ENCODE_CHUNK) {
            let starts: Vec<&str> = chunk.iter().map(|d| cut(d, self.max_chars)).collect();
            let encodings = whole
                .encode_batch_fast(starts.clone(), false)
                .map_err(failed)?;
            for ((mut doc, start), text) in encodings.into_iter().zip(starts).zip(chunk) {
                // a cut document that might rank otherwise against the query is encoded whole
                let short = doc.len() < self.keep || query.len() > budget;
                if start.len() < text.len() && short {
                    doc = whole.encode_fast(text.as_str(), false).map_err(failed)?;
                }
                let mut query = query.clone();
                let (q, d) = longest_first(query.len(), doc.len(), budget);
                query.truncate(q, 0, TruncationDirection::Right);
                doc.truncate(d, 0, TruncationDirection::Right);
                let pair = whole.post_process(query, Some(doc), true).map_err(failed)?;
                pairs.push(ids_and_types(pair));
            }
        }
        Ok(pairs)
    }

    /// The tokenizer for `encode_pairs`, which truncates pairs itself (`longest_first`).
    pub fn for_pairs(mut self) -> Result<Self> {
        self.inner
            .with_truncation(None)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(self)
    }

    /// The token ids of `text` alone, without special tokens (a prompt's fixed parts); at most
    /// the maximum length of them.
    pub fn encode_bare(&self, text: &str) -> Result<Vec<u32>> {
        self.inner
            .encode_fast(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| Error::Tokenizer(e.to_string()))
    }
}

/// How many tokens of a pair's first and second text `longest_first` keeps within `budget`: a
/// text within its share stays whole and the other takes the rest; else each gets half, the
/// longer text the odd token. (Python's tokenizers 0.22 and 0.23.3, which sentence-transformers
/// runs, do this; the Rust crate 0.23.2 gives the odd token to the second text.)
fn longest_first(first: usize, second: usize, budget: usize) -> (usize, usize) {
    if first + second <= budget {
        return (first, second);
    }
    let (short, long) = (first.min(second), first.max(second));
    let mut kept = (short, budget.saturating_sub(short).max(short));
    if short > budget || kept.0 + kept.1 > budget {
        kept = (budget / 2, budget / 2 + budget % 2);
    }
    match first > second {
        true => (kept.1.min(long), kept.0),
        false => (kept.0, kept.1.min(long)),
    }
}

fn ids_and_types(e: Encoding) -> (Vec<u32>, Vec<u8>) {
    let types = e.get_type_ids().iter().map(|&t| u8::from(t != 0)).collect();
    (e.get_ids().to_vec(), types)
}

/// Token ids of texts, and how many were cut at the maximum length.
pub struct Encoded {
    pub ids: Vec<Vec<u32>>,
    pub truncated: usize,
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
    fn longest_first_keeps_the_short_text_and_halves_two_long_ones() {
        use super::longest_first;
        assert_eq!(longest_first(5, 10, 20), (5, 10), "both fit");
        assert_eq!(
            longest_first(5, 30, 20),
            (5, 15),
            "the long one takes the rest"
        );
        assert_eq!(longest_first(30, 5, 20), (15, 5));
        assert_eq!(
            longest_first(42, 40, 37),
            (19, 18),
            "the longer text gets the odd token"
        );
        assert_eq!(longest_first(40, 42, 37), (18, 19));
        assert_eq!(longest_first(40, 40, 37), (18, 19), "equal: the second");
        assert_eq!(longest_first(12, 30, 20), (10, 10));
    }

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
