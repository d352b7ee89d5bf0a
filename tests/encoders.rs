//! XLM-RoBERTa, ModernBERT and EmbeddingGemma (Gemma3, bidirectional) built from safetensors,
//! held to sentence-transformers over transformers' own models in PyTorch (fixtures made by
//! scripts/make-encoder-fixtures.py: F16 weights computed in float32, each text alone, with the
//! snapshot's Dense modules and prompts). Each comparison has a mutation that must fail it.
mod common;

use std::path::Path;

use common::encoders::{embed, Fixture};
use common::*;
use semantic_search_native::engine::{Engine, Options};
use semantic_search_native::task::EmbedOptions;

fn cpu(dtype: &str) -> Options {
    Options {
        backend: Some(named("cpu")),
        dtype: Some(named(dtype)),
        ..Options::default()
    }
}

fn worst_cosine(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| cosine(x, y))
        .fold(1.0, f32::min)
}

/// Every prompt of the fixture, as one batched call, against PyTorch's vectors of each text alone.
fn check_against_pytorch(name: &str, arch: &str) -> Fixture {
    let fixture = Fixture::open(name, "pytorch");
    let engine = load_with(&fixture.dir.0, cpu("float32"));
    assert_eq!(engine.info().arch, arch);
    let tokenizer = semantic_search_native::tokenize::TextTokenizer::load(
        &fixture.dir.0.join("tokenizer.json"),
        512,
        None,
    )
    .expect("tokenizer");
    assert_eq!(
        tokenizer.encode(&fixture.texts, "").unwrap(),
        fixture.ids,
        "{name}: ids"
    );
    let texts = &fixture.texts;
    assert_close(
        &format!("{name} documents vs PyTorch"),
        &embed(&engine, texts, false, None),
        &fixture.expected("document"),
        0.99999,
        1e-4,
    );
    assert_close(
        &format!("{name} queries vs PyTorch"),
        &embed(&engine, texts, true, None),
        &fixture.expected("query"),
        0.99999,
        1e-4,
    );
    fixture
}

/// A wrong rule (the snapshot or the options changed) that the comparison must fail.
fn assert_mutation_fails(label: &str, dir: &Path, options: Options, fixture: &Fixture) {
    let engine = load_with(dir, options);
    let worst = worst_cosine(
        &embed(&engine, &fixture.texts, false, None),
        &fixture.expected("document"),
    );
    println!("{label}: min cosine {worst:.5} against PyTorch (must fail)");
    assert!(worst < 0.999, "{label} went unnoticed ({worst})");
}

#[test]
fn xlm_roberta_matches_pytorch_and_positions_from_zero_do_not() {
    let fixture = check_against_pytorch("xlm-roberta", "xlm-roberta");
    assert_eq!(
        load_with(&fixture.dir.0, cpu("float32")).dim(),
        12,
        "its Dense module's output"
    );
    let from_zero = fixture.with_config("xlmr-as-bert", |c| c["model_type"] = "bert".into());
    assert_mutation_fails(
        "XLM-R positions from 0",
        &from_zero.0,
        cpu("float32"),
        &fixture,
    );
}

#[test]
fn modernbert_matches_pytorch_and_all_global_attention_does_not() {
    let fixture = check_against_pytorch("modernbert", "modernbert");
    let global = fixture.with_config("modernbert-global", |c| {
        c["local_attention"] = 100000.into()
    });
    assert_mutation_fails("ModernBERT all-global", &global.0, cpu("float32"), &fixture);
}

#[test]
fn embeddinggemma_matches_pytorch_with_its_prompts_and_dense_modules() {
    let fixture = check_against_pytorch("embeddinggemma", "gemma3_text");
    let engine = load_with(&fixture.dir.0, cpu("float32"));
    assert_close(
        "EmbeddingGemma 'Code Retrieval' prompt vs PyTorch",
        &embed(&engine, &fixture.texts, true, Some("Code Retrieval")),
        &fixture.expected("Code Retrieval"),
        0.99999,
        1e-4,
    );
    let info = engine.info();
    assert_eq!(
        info.prompts,
        ["Code Retrieval", "Retrieval-query", "document", "query"]
    );
    let err = engine
        .embed_with(
            &fixture.texts,
            true,
            &EmbedOptions {
                prompt: Some("nl2code_query".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), "ERR_INPUT");
    assert!(
        err.to_string()
            .contains("'Code Retrieval', 'Retrieval-query'"),
        "{err}"
    );
    let causal = Options {
        attention: Some(named("causal")),
        ..cpu("float32")
    };
    assert_mutation_fails("EmbeddingGemma causal", &fixture.dir.0, causal, &fixture);
    let global = fixture.with_config("gemma-global", |c| c["sliding_window"] = 100000.into());
    assert_mutation_fails(
        "EmbeddingGemma all-global",
        &global.0,
        cpu("float32"),
        &fixture,
    );
}

#[test]
fn half_precision_and_int8_stay_close_to_float32() {
    for name in ["xlm-roberta", "modernbert", "embeddinggemma"] {
        let fixture = Fixture::open(name, "dtypes");
        let with = |dtype: &str| {
            let engine = load_with(&fixture.dir.0, cpu(dtype));
            embed(&engine, &fixture.texts, false, None)
        };
        let float32 = with("float32");
        assert_close(
            &format!("{name} float16 vs float32"),
            &with("float16"),
            &float32,
            0.999,
            3e-2,
        );
        assert_close(
            &format!("{name} int8 vs float32"),
            &with("int8"),
            &float32,
            0.99,
            0.15,
        );
    }
}

#[test]
fn each_text_alone_equals_the_batched_call() {
    for name in ["modernbert", "embeddinggemma"] {
        let fixture = Fixture::open(name, "alone");
        let engine = load_with(&fixture.dir.0, cpu("float32"));
        let together = embed(&engine, &fixture.texts, false, None);
        for (i, text) in fixture.texts.iter().enumerate() {
            let alone = embed(&engine, std::slice::from_ref(text), false, None);
            let diff = max_abs_diff(&alone[0], &together[i]);
            assert!(diff <= 1e-5, "{name}: {text:?} moved by {diff}");
        }
    }
}

#[test]
fn a_snapshot_computed_wrongly_is_refused_naming_the_field() {
    let fixture = Fixture::open("xlm-roberta", "refused");
    let alibi = fixture.with_config("alibi", |c| {
        c["model_type"] = "bert".into();
        c["position_embedding_type"] = "alibi".into();
    });
    let capped = Fixture::open("embeddinggemma", "refused")
        .with_config("softcap", |c| c["attn_logit_softcapping"] = 50.0.into());
    let scaled = Fixture::open("modernbert", "refused").with_config("rope-scaling", |c| {
        c["rope_scaling"] = serde_json::json!({"rope_type": "linear", "factor": 4.0})
    });
    for (dir, field) in [
        (&alibi, "position_embedding_type \"alibi\""),
        (&capped, "attn_logit_softcapping"),
        (&scaled, "rope_scaling"),
    ] {
        let err = Engine::load(&dir.0, &cpu("float32"))
            .err()
            .expect("refused");
        assert_eq!(err.code(), "ERR_UNSUPPORTED_MODEL", "{field}");
        let text = err.to_string();
        assert!(text.contains(field) && text.contains("ONNX"), "{text}");
    }
}

/// An ONNX file that outputs token states cannot apply the snapshot's Dense modules after its
/// pooling: refused, rather than run without them.
#[test]
fn dense_modules_with_a_token_state_onnx_file_are_refused() {
    let minilm = minilm_dir();
    let dir = Scratch::new("dense-onnx");
    for file in ["config.json", "tokenizer.json"] {
        std::fs::copy(minilm.join(file), dir.0.join(file)).unwrap();
    }
    std::fs::create_dir_all(dir.0.join("onnx")).unwrap();
    std::fs::copy(
        minilm.join("onnx/model.onnx"),
        dir.0.join("onnx/model.onnx"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.0.join("2_Dense")).unwrap();
    std::fs::write(
        dir.0.join("2_Dense/config.json"),
        r#"{"in_features":384,"out_features":8,"bias":true}"#,
    )
    .unwrap();
    let module = |i: usize, path: &str, kind: &str| {
        format!(
            r#"{{"idx":{i},"name":"{i}","path":"{path}","type":"sentence_transformers.models.{kind}"}}"#
        )
    };
    let modules = [
        module(0, "", "Transformer"),
        module(1, "1_Pooling", "Pooling"),
        module(2, "2_Dense", "Dense"),
    ];
    std::fs::write(
        dir.0.join("modules.json"),
        format!("[{}]", modules.join(",")),
    )
    .unwrap();
    let err = Engine::load(&dir.0, &cpu("float32"))
        .err()
        .expect("refused");
    assert_eq!(err.code(), "ERR_UNSUPPORTED_MODEL");
    assert!(err.to_string().contains("Dense modules"), "{err}");
}
