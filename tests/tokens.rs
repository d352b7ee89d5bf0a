//! Token counts for chunkers: `count_tokens` is the length a text's ids would have without
//! truncation (prompt and special tokens included), and `stats().truncated_texts` counts the
//! texts cut at `maxLength`.
mod common;

use common::*;
use semantic_search_native::engine::Options;
use semantic_search_native::task::EmbedOptions;
use semantic_search_native::tokenize::TextTokenizer;

fn texts() -> Vec<String> {
    vec![
        "fn add(a: i32, b: i32) -> i32 { a + b }".into(),
        "x".into(),
        "word ".repeat(40),
        // past the characters the tokenizer is handed at once: still counted whole
        "the ".repeat(5000),
    ]
}

#[test]
fn counts_are_the_untruncated_lengths_and_truncated_texts_are_counted() {
    let options = Options {
        backend: Some(named("cpu")),
        max_length: Some(16),
        query_prefix: Some("query: ".into()),
        ..Options::default()
    };
    let engine = load_with(&minilm_dir(), options);
    let texts = texts();
    let documents = engine
        .count_tokens(&texts, false, &EmbedOptions::default())
        .unwrap();
    let whole = TextTokenizer::load(&minilm_dir().join("tokenizer.json"), 100_000, None).unwrap();
    let expected: Vec<u32> = whole
        .encode(&texts, "")
        .unwrap()
        .iter()
        .map(|ids| ids.len() as u32)
        .collect();
    assert_eq!(documents, expected);
    assert_eq!(documents[1], 3, "[CLS] x [SEP]");
    assert_eq!(documents[3], 5002, "5,000 words and the two special tokens");
    let queries = engine
        .count_tokens(&texts, true, &EmbedOptions::default())
        .unwrap();
    let prefixed: Vec<u32> = documents.iter().map(|n| n + 2).collect();
    assert_eq!(queries, prefixed, "'query: ' is two tokens");

    let past = |counts: &[u32]| counts.iter().filter(|&&n| n > 16).count() as i64;
    engine.embed(&texts, false).unwrap();
    assert_eq!(engine.stats().truncated_texts, past(&documents));
    engine.embed(&texts[..2], true).unwrap();
    let both = past(&documents) + past(&queries[..2]);
    assert_eq!(engine.stats().truncated_texts, both);
    assert_eq!(
        both, 4,
        "25, 42 and 5,002 tokens as documents; 27 as a query"
    );
}
