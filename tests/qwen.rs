//! The Qwen family on ONNX Runtime's CPU against candle-transformers' Qwen2 and Qwen3, on small
//! random weights: last-token pooling, grouped-query attention, the attention direction read
//! from the snapshot, and the EOS token.
mod common;

use common::candle::{candle_qwen2, candle_qwen3};
use common::*;
use semantic_search_native::engine::Options;
use semantic_search_native::tokenize::TextTokenizer;

fn qwen_dir(name: &str, qwen3: bool, extra: &str) -> Scratch {
    let scratch = Scratch::new(name);
    let shape = if qwen3 { &SMALL_QWEN3 } else { &SMALL_QWEN2 };
    write_qwen_dir(&scratch.0, shape, qwen3, 5, extra);
    scratch
}

#[test]
fn qodo_layout_qwen2_is_bidirectional_and_matches_candle_qwen2() {
    let dir = qwen_dir("qodo", false, QODO_AUTO_MAP);
    let engine = load_with(&dir.0, Options::default());
    let info = engine.info();
    assert_eq!(
        (
            info.arch.as_str(),
            info.pooling.name(),
            info.attention.name()
        ),
        ("qwen2", "lasttoken", "bidirectional")
    );
    assert_close(
        "Qwen2 (Qodo layout) vs candle",
        &rows(&engine, &texts(), false),
        &candle_qwen2(&dir.0, &texts()),
        0.99999,
        1e-4,
    );
}

#[test]
fn qwen3_is_causal_and_matches_candle_qwen3() {
    let dir = qwen_dir("qwen3", true, "");
    let engine = load_with(&dir.0, Options::default());
    assert_eq!(
        (engine.info().arch.as_str(), engine.info().attention.name()),
        ("qwen3", "causal")
    );
    assert_close(
        "Qwen3 vs candle",
        &rows(&engine, &texts(), false),
        &candle_qwen3(&dir.0, &texts()),
        0.99999,
        1e-4,
    );
}

/// The mutation check: the wrong attention direction must fail the comparison.
#[test]
fn the_wrong_attention_direction_is_caught() {
    let dir = qwen_dir("qodo-causal", false, QODO_AUTO_MAP);
    let causal = load_with(
        &dir.0,
        Options {
            attention: Some(named("causal")),
            ..Options::default()
        },
    );
    assert_eq!(causal.info().attention.name(), "causal");
    let ours = rows(&causal, &texts(), false);
    let theirs = candle_qwen2(&dir.0, &texts());
    let worst = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| cosine(a, b))
        .fold(1.0, f32::min);
    assert!(
        worst < 0.999,
        "a causal mask on a bidirectional model went unnoticed ({worst})"
    );
}

#[test]
fn the_attention_rule_reads_each_layout() {
    for (name, qwen3, extra, expected) in [
        ("rule-qodo", false, QODO_AUTO_MAP, "bidirectional"),
        ("rule-gte", false, r#","is_causal":false"#, "bidirectional"),
        ("rule-qwen3", true, "", "causal"),
        ("rule-qwen2-plain", false, "", "causal"),
    ] {
        let dir = qwen_dir(name, qwen3, extra);
        assert_eq!(
            load_with(&dir.0, Options::default())
                .info()
                .attention
                .name(),
            expected,
            "{name}"
        );
    }
}

/// gte-Qwen2's layout: every key under `model.`, and an `lm_head` to ignore.
#[test]
fn gte_layout_with_a_prefix_and_an_lm_head_loads_the_same_model() {
    let plain = qwen_dir("gte-plain", false, r#","is_causal":false"#);
    let gte = Scratch::new("gte-prefixed");
    write_qwen_dir(&gte.0, &SMALL_QWEN2, false, 5, r#","is_causal":false"#);
    let mut weights: Vec<(String, Vec<usize>, Vec<f32>)> = qwen_weights(&SMALL_QWEN2, false, 5)
        .into_iter()
        .map(|(k, shape, data)| (format!("model.{k}"), shape, data))
        .collect();
    weights.push((
        "lm_head.weight".into(),
        vec![30528, 64],
        vec![0.5; 30528 * 64],
    ));
    write_safetensors(
        &gte.0.join("model.safetensors"),
        &weights,
        safetensors::tensor::Dtype::F32,
    );
    assert_close(
        "gte layout vs Qodo layout",
        &ours(&gte.0, &texts(), false),
        &ours(&plain.0, &texts(), false),
        0.999999,
        1e-6,
    );
}

#[test]
fn a_text_gets_the_same_vector_alone_and_in_a_mixed_batch() {
    for (name, qwen3, extra) in [
        ("batch-bidir", false, QODO_AUTO_MAP),
        ("batch-causal", true, ""),
    ] {
        let dir = qwen_dir(name, qwen3, extra);
        let engine = load_with(&dir.0, Options::default());
        let together = rows(&engine, &texts(), false);
        for (i, text) in texts().iter().enumerate() {
            let alone = rows(&engine, std::slice::from_ref(text), false);
            let diff = max_abs_diff(&alone[0], &together[i]);
            assert!(diff <= 1e-5, "{name}: {text:?} moved by {diff}");
        }
    }
}

#[test]
fn half_precision_and_int8_stay_close_to_float32() {
    let dir = qwen_dir("dtypes", true, "");
    let with = |dtype: &str| {
        let engine = load_with(
            &dir.0,
            Options {
                dtype: Some(named(dtype)),
                backend: Some(named("cpu")),
                ..Options::default()
            },
        );
        rows(&engine, &texts(), false)
    };
    let float32 = with("float32");
    assert_close(
        "Qwen3 float16 vs float32",
        &with("float16"),
        &float32,
        0.9999,
        1e-2,
    );
    assert_close("Qwen3 int8 vs float32", &with("int8"), &float32, 0.99, 0.1);
}

#[test]
fn the_eos_is_appended_exactly_once_after_truncation_unless_the_template_adds_it() {
    let tokenizer = minilm_dir().join("tokenizer.json");
    let long = "word ".repeat(50);
    // an EOS the template does not add: appended after truncating to max_length - 1
    let eos = 7592; // "hello", not in the texts
    let appended = TextTokenizer::load(&tokenizer, 8, Some(eos)).expect("tokenizer");
    for ids in appended
        .encode(&[long.clone(), "x".into()], "")
        .expect("encodes")
    {
        assert_eq!(ids.last(), Some(&eos), "{ids:?}");
        assert_eq!(ids.iter().filter(|&&t| t == eos).count(), 1, "{ids:?}");
        assert!(ids.len() <= 8, "{ids:?}");
    }
    // [SEP], which MiniLM's template adds itself: not added twice, kept under truncation
    let templated = TextTokenizer::load(&tokenizer, 8, Some(QWEN_TEST_EOS)).expect("tokenizer");
    for ids in templated.encode(&[long, "x".into()], "").expect("encodes") {
        assert_eq!(ids.last(), Some(&QWEN_TEST_EOS), "{ids:?}");
        assert_eq!(
            ids.iter().filter(|&&t| t == QWEN_TEST_EOS).count(),
            1,
            "{ids:?}"
        );
        assert!(ids.len() <= 8, "{ids:?}");
    }
}

#[test]
fn document_prompts_and_prefix_overrides_apply() {
    let dir = qwen_dir("prompts", true, "");
    std::fs::write(
        dir.0.join("config_sentence_transformers.json"),
        r#"{"prompts":{"query":"Instruct: find code\nQuery:","document":"search_document: "}}"#,
    )
    .expect("prompts");
    let engine = load_with(&dir.0, Options::default());
    assert_eq!(engine.info().query_prefix, "Instruct: find code\nQuery:");
    assert_eq!(engine.info().document_prefix, "search_document: ");
    let text = vec!["parse a csv line".to_string()];
    let by_hand = vec!["search_document: parse a csv line".to_string()];
    let plain = load_with(
        &dir.0,
        Options {
            document_prefix: Some(String::new()),
            ..Options::default()
        },
    );
    assert_close(
        "document prompt == prompt written by hand",
        &rows(&engine, &text, false),
        &rows(&plain, &by_hand, false),
        0.999999,
        1e-6,
    );
}

#[test]
fn the_default_max_length_is_capped_for_the_qwen_family() {
    let dir = qwen_dir("maxlen", false, QODO_AUTO_MAP);
    let config = std::fs::read_to_string(dir.0.join("config.json")).expect("config");
    let config = config.replace(
        r#""max_position_embeddings":4096"#,
        r#""max_position_embeddings":32768"#,
    );
    std::fs::write(dir.0.join("config.json"), config).expect("config");
    // Qodo-Embed-1 says 32768: attention scores of gigabytes on a CPU, so 8192 unless asked
    std::fs::write(
        dir.0.join("sentence_bert_config.json"),
        r#"{"max_seq_length":32768}"#,
    )
    .expect("sbert config");
    assert_eq!(
        load_with(&dir.0, Options::default()).info().max_length,
        8192
    );
    let asked = Options {
        max_length: Some(16384),
        ..Options::default()
    };
    assert_eq!(load_with(&dir.0, asked).info().max_length, 16384);
}

/// transformers' own Qwen2Model and Qwen3Model in PyTorch, with the mask each model runs with
/// (fixtures made by scripts/make-qwen-fixtures.py, F16 weights computed in float32).
#[test]
fn qwen2_and_qwen3_match_transformers_in_pytorch() {
    for (name, attention) in [("qwen2-qodo-layout", "bidirectional"), ("qwen3", "causal")] {
        let fixture = qwen_fixture(name);
        let engine = load_with(&fixture.dir.0, Options::default());
        assert_eq!(engine.info().attention.name(), attention, "{name}");
        let tokenizer = TextTokenizer::load(
            &fixture.dir.0.join("tokenizer.json"),
            engine.info().max_length as usize,
            Some(QWEN_TEST_EOS),
        )
        .expect("tokenizer");
        assert_eq!(
            tokenizer.encode(&fixture.texts, "").expect("ids"),
            fixture.ids,
            "{name}: token ids"
        );
        assert_close(
            &format!("{name} vs transformers (PyTorch)"),
            &rows(&engine, &fixture.texts, false),
            &fixture.vectors,
            0.99999,
            1e-4,
        );
        // the mutation check against PyTorch: the other attention direction must not pass
        let other = if attention == "causal" {
            "bidirectional"
        } else {
            "causal"
        };
        let wrong = load_with(
            &fixture.dir.0,
            Options {
                attention: Some(named(other)),
                ..Options::default()
            },
        );
        let worst = rows(&wrong, &fixture.texts, false)
            .iter()
            .zip(&fixture.vectors)
            .map(|(a, b)| cosine(a, b))
            .fold(1.0, f32::min);
        assert!(
            worst < 0.999,
            "{name}: {other} attention went unnoticed ({worst})"
        );
    }
}
