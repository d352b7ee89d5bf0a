//! Rerankers built from safetensors, held to PyTorch (fixtures made by
//! scripts/make-reranker-fixtures.py: F16 weights computed in float32, each pair alone):
//! cross-encoders through sentence-transformers' CrossEncoder over transformers'
//! `BertForSequenceClassification`, `XLMRobertaForSequenceClassification` and
//! `ModernBertForSequenceClassification`, and a Qwen3-Reranker-shaped `Qwen3ForCausalLM` judge
//! with the real Qwen3 tokenizer, as its model card computes it. Each has a mutation that fails.
mod common;

use std::path::Path;

use common::encoders::copy_tree;
use common::rerankers::{logits, reranker, worst, Fixture};
use common::*;
use semantic_search_native::engine::{Engine, Options};
use semantic_search_native::rerank::{RerankHit, RerankOptions};

/// Every case in one batched call each, against PyTorch's scores of each pair alone; and each
/// pair alone in the addon against the batched call.
fn check_against_pytorch(fixture: &Fixture, label: &str) -> Engine {
    let engine = fixture.load("float32");
    let docs = &fixture.reference.docs;
    for case in &fixture.reference.cases {
        let ours = logits(&engine, &case.query, docs, case.instruction.as_deref());
        let diff = worst(&ours, &case.logits);
        println!(
            "{label}: max |raw - PyTorch| {diff:.2e} over {} pairs",
            docs.len()
        );
        assert!(diff <= 1e-4, "{label}: {ours:?} vs {:?}", case.logits);
        for (i, doc) in docs.iter().enumerate() {
            let alone = logits(
                &engine,
                &case.query,
                std::slice::from_ref(doc),
                case.instruction.as_deref(),
            );
            assert!(
                (alone[0] - ours[i]).abs() <= 1e-5,
                "{label}: pair {i} alone {alone:?} vs batched {}",
                ours[i]
            );
        }
    }
    engine
}

/// A wrong rule (the snapshot changed) that the comparison must fail.
fn assert_mutation_fails(label: &str, dir: &Path, fixture: &Fixture) {
    let engine = reranker(dir, fixture.options("float32"));
    let case = &fixture.reference.cases[0];
    let ours = logits(&engine, &case.query, &fixture.reference.docs, None);
    let diff = worst(&ours, &case.logits);
    println!("{label}: max |raw - PyTorch| {diff:.2e} (must fail)");
    assert!(diff > 1e-3, "{label} went unnoticed ({diff})");
}

#[test]
fn bert_cross_encoder_matches_pytorch_and_all_type_zero_does_not() {
    let fixture = Fixture::open("rerank-bert", "pytorch");
    let tokenizer = semantic_search_native::tokenize::TextTokenizer::load(
        &fixture.dir.0.join("tokenizer.json"),
        fixture.reference.max_length as usize,
        None,
    )
    .and_then(|t| t.for_pairs())
    .expect("tokenizer");
    for case in &fixture.reference.cases {
        let (ids, types): (Vec<_>, Vec<_>) = tokenizer
            .encode_pairs(&case.query, &fixture.reference.docs)
            .unwrap()
            .into_iter()
            .unzip();
        assert_eq!(
            ids, case.ids,
            "CrossEncoder's ids (longest_first truncation)"
        );
        assert_eq!(types, case.types, "CrossEncoder's token types");
    }
    let engine = check_against_pytorch(&fixture, "BERT cross-encoder");
    let info = engine.info();
    assert_eq!(info.dim, 1);
    assert!(
        info.head.as_deref().unwrap().contains("pooler"),
        "{:?}",
        info.head
    );
    let untyped = fixture.edited("rerank-bert-untyped", "tokenizer.json", |t| {
        for part in t["post_processor"]["pair"].as_array_mut().unwrap() {
            for v in part.as_object_mut().unwrap().values_mut() {
                v["type_id"] = 0.into();
            }
        }
    });
    assert_mutation_fails("BERT with every token type 0", &untyped.0, &fixture);
}

#[test]
fn xlm_roberta_cross_encoder_matches_pytorch() {
    let fixture = Fixture::open("rerank-xlm-roberta", "pytorch");
    check_against_pytorch(&fixture, "XLM-RoBERTa cross-encoder");
    let from_zero = fixture.edited("rerank-xlmr-as-bert", "config.json", |c| {
        c["model_type"] = "bert".into();
        c["architectures"] = serde_json::json!(["BertForSequenceClassification"]);
    });
    // read as BERT it has no pooler: the head is XLM-R's own
    let err = Engine::load_reranker(&from_zero.0, &fixture.options("float32"))
        .err()
        .expect("refused");
    assert!(err.to_string().contains("pooler"), "{err}");
}

#[test]
fn modernbert_cross_encoder_matches_pytorch_and_cls_pooling_does_not() {
    let fixture = Fixture::open("rerank-modernbert", "pytorch");
    let engine = check_against_pytorch(&fixture, "ModernBERT cross-encoder");
    assert_eq!(
        engine.info().pooling,
        semantic_search_native::pooling::Pooling::Mean
    );
    let cls = fixture.edited("rerank-modernbert-cls", "config.json", |c| {
        c["classifier_pooling"] = "cls".into();
    });
    assert_mutation_fails(
        "ModernBERT pooling [CLS] instead of the mean",
        &cls.0,
        &fixture,
    );
}

#[test]
fn qwen3_sequence_classification_matches_pytorch() {
    let fixture = Fixture::open("rerank-qwen3-seq-cls", "pytorch");
    let engine = check_against_pytorch(&fixture, "Qwen3ForSequenceClassification");
    assert!(engine
        .info()
        .head
        .as_deref()
        .unwrap()
        .contains("score on the last token"));
}

#[test]
fn qwen3_judge_matches_the_model_card_with_the_real_tokenizer() {
    let fixture = Fixture::open("rerank-qwen3", "pytorch");
    let engine = check_against_pytorch(&fixture, "Qwen3-Reranker judge");
    let head = engine.info().head.clone().unwrap();
    assert!(
        head.contains("'yes' (9693)") && head.contains("'no' (2152)"),
        "{head}"
    );
    // the instruction is part of the input: the default and the code search one differ
    let case = &fixture.reference.cases[1];
    let default = logits(&engine, &case.query, &fixture.reference.docs, None);
    assert!(worst(&default, &case.logits) > 1e-3, "instruction ignored");
}

#[test]
fn hits_come_best_first_and_top_k_keeps_the_best() {
    let fixture = Fixture::open("rerank-qwen3", "order");
    let engine = fixture.load("float32");
    let case = &fixture.reference.cases[0];
    let docs = &fixture.reference.docs;
    let mut expected: Vec<usize> = (0..docs.len()).collect();
    expected.sort_by(|&a, &b| case.logits[b].total_cmp(&case.logits[a]));
    let hits = engine
        .rerank(&case.query, docs, &RerankOptions::default())
        .unwrap();
    let order: Vec<usize> = hits.iter().map(|h| h.index as usize).collect();
    assert_eq!(order, expected);
    for h in &hits {
        let logit = f64::from(case.logits[h.index as usize]);
        assert!(
            (h.score - 1.0 / (1.0 + (-logit).exp())).abs() < 1e-5,
            "sigmoid of the logit"
        );
    }
    let top = RerankOptions {
        top_k: Some(2.0),
        ..Default::default()
    };
    let best: Vec<RerankHit> = engine.rerank(&case.query, docs, &top).unwrap();
    assert_eq!(best, hits[..2].to_vec());
    assert!(engine.rerank("q", &[], &top).unwrap().is_empty());
}

#[test]
fn half_and_int8_rerankers_stay_near_float32() {
    // the judge is 8 wide: int8 rounds a larger share of each of its products
    for (name, int8_bound) in [("rerank-bert", 2e-2), ("rerank-qwen3", 0.3)] {
        let fixture = Fixture::open(name, "precision");
        let case = &fixture.reference.cases[0];
        let docs = &fixture.reference.docs;
        for (dtype, bound) in [("float16", 2e-2), ("int8", int8_bound)] {
            let engine = fixture.load(dtype);
            let ours = logits(&engine, &case.query, docs, case.instruction.as_deref());
            let diff = worst(&ours, &case.logits);
            println!("{name} {dtype}: max |raw - PyTorch float32| {diff:.2e}");
            assert!(diff <= bound, "{name} {dtype}: {diff}");
        }
    }
}

#[test]
fn bad_rerank_input_is_refused_clearly() {
    let embedding = Engine::load_reranker(&minilm_dir(), &Options::default())
        .err()
        .expect("an embedding model is not a reranker");
    assert_eq!(embedding.code(), "ERR_UNSUPPORTED_MODEL", "{embedding}");
    assert!(
        embedding.to_string().contains("embedding model"),
        "{embedding}"
    );

    let fixture = Fixture::open("rerank-bert", "bad");
    let engine = fixture.load("float32");
    let docs = vec!["a".to_string()];
    let zero = RerankOptions {
        top_k: Some(0.0),
        ..Default::default()
    };
    let err = engine.rerank("q", &docs, &zero).unwrap_err();
    assert_eq!(err.code(), "ERR_INPUT");
    let instructed = RerankOptions {
        instruction: Some("judge".into()),
        ..Default::default()
    };
    let err = engine.rerank("q", &docs, &instructed).unwrap_err();
    assert!(err.to_string().contains("instruction"), "{err}");
    let err = engine.embed(&docs, false).unwrap_err();
    assert!(err.to_string().contains("reranker"), "{err}");
    let last = engine.stats().last_error.unwrap_or_default();
    assert!(
        last.contains("reranker"),
        "stats keep the last error: {last}"
    );

    // Qwen3-Embedding's config names Qwen3ForCausalLM too: its Pooling module says it embeds
    let judge = Fixture::open("rerank-qwen3", "bad");
    std::fs::create_dir_all(judge.dir.0.join("1_Pooling")).unwrap();
    let embedder = Engine::load_reranker(&judge.dir.0, &judge.options("float32"))
        .err()
        .expect("an embedding layout is not a judge");
    assert_eq!(embedder.code(), "ERR_UNSUPPORTED_MODEL");
    assert!(
        embedder.to_string().contains("Pooling module"),
        "{embedder}"
    );

    let two_labels = Scratch::new("rerank-bert-two-labels");
    copy_tree(&fixture.dir.0, &two_labels.0);
    let weights = two_labels.0.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    let patched = relabel(&bytes);
    std::fs::write(&weights, patched).unwrap();
    let err = Engine::load_reranker(&two_labels.0, &fixture.options("float32"))
        .err()
        .expect("two labels refused");
    assert_eq!(err.code(), "ERR_UNSUPPORTED_MODEL");
    assert!(err.to_string().contains("labels"), "{err}");
}

/// The checkpoint with its classifier read as two labels of half the width: the header says
/// `[2, 8]` where it said `[1, 16]` (the same bytes).
fn relabel(bytes: &[u8]) -> Vec<u8> {
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&bytes[8..8 + len]).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(header).unwrap();
    json["classifier.weight"]["shape"] = serde_json::json!([2, 8]);
    let mut text = json.to_string();
    while text.len() < len {
        text.push(' ');
    }
    assert_eq!(text.len(), len, "the header keeps its length");
    [&bytes[..8], text.as_bytes(), &bytes[8 + len..]].concat()
}

/// A reranker's graph is cached as an embedding model's is, under a key of its own: the same
/// snapshot loaded to embed neither hits the reranker's entry nor changes its scores.
#[test]
fn a_reranker_graph_is_cached_apart_from_the_embedding_graph() {
    use semantic_search_native::info::CacheState;
    let fixture = Fixture::open("rerank-bert", "cache");
    let cache = Scratch::new("rerank-cache");
    let options = Options {
        cache_dir: Some(cache.0.display().to_string()),
        ..fixture.options("float32")
    };
    let case = &fixture.reference.cases[1];
    let docs = &fixture.reference.docs;
    let first = reranker(&fixture.dir.0, options.clone());
    assert_eq!(first.info().cache, CacheState::Written);
    let written = logits(&first, &case.query, docs, None);
    let embedder = Engine::load(&fixture.dir.0, &options).expect("embeds as a BERT");
    assert_eq!(embedder.info().cache, CacheState::Written, "its own entry");
    assert_eq!(embedder.dim(), 16);
    let again = reranker(&fixture.dir.0, options);
    assert_eq!(again.info().cache, CacheState::Hit);
    let hit = logits(&again, &case.query, docs, None);
    assert_eq!(hit, written, "the cached graph gives the same scores");
    assert!(worst(&hit, &case.logits) <= 1e-4);
}

/// A judge whose output projection is its own `lm_head.weight` (Qwen3-Reranker-4B and 8B) reads
/// that tensor's two rows: with `lm_head` the negated embedding table, every raw score is negated.
#[test]
fn an_untied_judge_reads_its_lm_head_rows() {
    use safetensors::tensor::Dtype;
    let fixture = Fixture::open("rerank-qwen3", "untied");
    let file = fixture.dir.0.join("model.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    let weights = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = weights
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let values = view
                .data()
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect();
            (name, view.shape().to_vec(), values)
        })
        .collect();
    let (_, shape, table) = tensors
        .iter()
        .find(|(name, ..)| name == "model.embed_tokens.weight")
        .cloned()
        .unwrap();
    tensors.push((
        "lm_head.weight".into(),
        shape,
        table.iter().map(|v| -v).collect(),
    ));
    random::write_safetensors(&file, &tensors, Dtype::F16);
    let config = fixture.edited("rerank-qwen3-lm-head", "config.json", |c| {
        c["tie_word_embeddings"] = false.into();
    });
    let engine = reranker(&config.0, fixture.options("float32"));
    let case = &fixture.reference.cases[0];
    let negated: Vec<f32> = case.logits.iter().map(|l| -l).collect();
    let ours = logits(&engine, &case.query, &fixture.reference.docs, None);
    assert!(worst(&ours, &negated) <= 1e-4, "{ours:?} vs {negated:?}");
}
