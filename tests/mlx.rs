//! The MLX backend (built by scripts/mlx-linux against MLX's CPU backend) against the ONNX
//! Runtime graph built from the same model.safetensors and against candle-transformers.
#![cfg(mlx)]
mod common;

use std::path::Path;
use std::sync::Arc;

use common::candle::{candle_minilm, candle_nomic, candle_qwen2, candle_qwen3};
use common::*;
use semantic_search_native::engine::{Engine, Options};

fn load(dir: &Path, backend: &str, dtype: Option<&str>) -> Engine {
    let options = Options {
        backend: Some(named(backend)),
        dtype: dtype.map(named),
        ..Options::default()
    };
    Engine::load(dir, &options).expect("engine loads")
}

fn mlx(dir: &Path) -> Engine {
    load(dir, "mlx", None)
}

#[test]
fn mlx_says_where_it_runs() {
    let engine = mlx(&minilm_dir());
    let info = engine.info();
    assert_eq!(info.backend, "mlx");
    assert_eq!(info.device, "MLX on the CPU (float32)");
    assert!(!engine.is_gpu(), "MLX's CPU backend is not a GPU");
    assert_eq!(info.ort_version, None);
}

#[test]
fn real_minilm_on_mlx_matches_the_ort_graph_and_candle() {
    let dir = minilm_dir();
    let ours = rows(&mlx(&dir), &texts(), false);
    let graph = rows(&load(&dir, "cpu", None), &texts(), false);
    assert_close("MiniLM MLX vs ORT graph", &ours, &graph, 0.99999, 1e-4);
    assert_close(
        "MiniLM MLX vs candle",
        &ours,
        &candle_minilm(&dir, &texts()),
        0.99999,
        1e-4,
    );
}

#[test]
fn random_nomic_bert_on_mlx_matches_the_ort_graph_and_candle() {
    let scratch = Scratch::new("mlx-nomic");
    write_nomic_dir(&scratch.0, &SMALL_NOMIC, 11);
    let engine = mlx(&scratch.0);
    let graph = load(&scratch.0, "cpu", None);
    for is_query in [false, true] {
        let ours = rows(&engine, &texts(), is_query);
        assert_close(
            "NomicBert MLX vs ORT graph",
            &ours,
            &rows(&graph, &texts(), is_query),
            0.99999,
            1e-4,
        );
    }
    let prefixed: Vec<String> = texts()
        .iter()
        .map(|t| format!("{QUERY_PREFIX}{t}"))
        .collect();
    let candle = candle_nomic(&scratch.0, &prefixed, true);
    assert_close(
        "NomicBert MLX vs candle (query)",
        &rows(&engine, &texts(), true),
        &candle,
        0.99999,
        1e-4,
    );
}

#[test]
fn nomic_bert_mean_pooling_on_mlx_matches_candle() {
    let scratch = Scratch::new("mlx-nomic-mean");
    write_nomic_dir(&scratch.0, &SMALL_NOMIC, 12);
    std::fs::write(
        scratch.0.join("1_Pooling/config.json"),
        r#"{"pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true}"#,
    )
    .expect("pooling config");
    let ours = rows(&mlx(&scratch.0), &texts(), false);
    assert_close(
        "NomicBert MLX mean vs candle",
        &ours,
        &candle_nomic(&scratch.0, &texts(), false),
        0.99999,
        1e-4,
    );
}

/// A text's vector must not depend on what else is in its micro-batch (padding, batch size).
#[test]
fn mlx_vectors_do_not_depend_on_the_batch() {
    let engine = mlx(&minilm_dir());
    let together = rows(&engine, &texts(), false);
    for (i, text) in texts().iter().enumerate() {
        let alone = rows(&engine, std::slice::from_ref(text), false);
        assert_close(
            "MLX alone vs in a batch",
            &alone,
            &together[i..=i],
            0.99999,
            1e-5,
        );
    }
}

#[test]
fn eight_concurrent_calls_on_mlx_all_get_their_own_vectors() {
    let engine = Arc::new(mlx(&minilm_dir()));
    let expected = rows(&engine, &texts(), false);
    let calls: Vec<_> = (0..8)
        .map(|i| {
            let engine = Arc::clone(&engine);
            // Each call embeds a different rotation of the texts, so mixed-up replies would show.
            std::thread::spawn(move || {
                let mut batch = texts();
                let shift = i % batch.len();
                batch.rotate_left(shift);
                (i, rows(&engine, &batch, false))
            })
        })
        .collect();
    for call in calls {
        let (i, mut got) = call.join().expect("call thread");
        let shift = i % got.len();
        got.rotate_right(shift);
        assert_close("MLX concurrent call", &got, &expected, 0.99999, 1e-5);
    }
}

#[test]
fn float16_on_mlx_stays_close_to_float32() {
    let dir = minilm_dir();
    let half = load(&dir, "mlx", Some("float16"));
    assert_eq!(half.info().device, "MLX on the CPU (float16)");
    let full = rows(&mlx(&dir), &texts(), false);
    assert_close(
        "MLX float16 vs float32",
        &rows(&half, &texts(), false),
        &full,
        0.999,
        1e-2,
    );
}

#[test]
fn an_onnx_only_model_is_refused_by_mlx_with_the_reason() {
    let options = Options {
        backend: Some(named("mlx")),
        weights: Some(named("onnx")),
        ..Options::default()
    };
    let error = Engine::load(&minilm_dir(), &options)
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("MLX runs model.safetensors"), "{error}");
}

#[test]
fn qwen2_and_qwen3_on_mlx_match_candle_and_the_ort_graph() {
    for (name, qwen3, extra) in [("mlx-qodo", false, QODO_AUTO_MAP), ("mlx-qwen3", true, "")] {
        let scratch = Scratch::new(name);
        let shape = if qwen3 { &SMALL_QWEN3 } else { &SMALL_QWEN2 };
        write_qwen_dir(&scratch.0, shape, qwen3, 5, extra);
        let engine = mlx(&scratch.0);
        let ours = rows(&engine, &texts(), false);
        let theirs = if qwen3 {
            candle_qwen3(&scratch.0, &texts())
        } else {
            candle_qwen2(&scratch.0, &texts())
        };
        assert_close(
            &format!("{name} MLX vs candle"),
            &ours,
            &theirs,
            0.99999,
            1e-4,
        );
        let graph = rows(&load(&scratch.0, "cpu", None), &texts(), false);
        assert_close(
            &format!("{name} MLX vs ORT graph"),
            &ours,
            &graph,
            0.99999,
            1e-4,
        );
        let half = rows(&load(&scratch.0, "mlx", Some("float16")), &texts(), false);
        assert_close(
            &format!("{name} MLX float16 vs float32"),
            &half,
            &ours,
            0.999,
            1e-2,
        );
        let bf16 = load(&scratch.0, "mlx", Some("bfloat16"));
        assert_eq!(bf16.info().dtype.map(Choice::name), Some("bfloat16"));
        let bf16 = rows(&bf16, &texts(), false);
        assert_close(
            &format!("{name} MLX bfloat16 vs float32"),
            &bf16,
            &ours,
            0.99,
            5e-2,
        );
        for (i, text) in texts().iter().enumerate() {
            let alone = rows(&engine, std::slice::from_ref(text), false);
            let diff = max_abs_diff(&alone[0], &ours[i]);
            assert!(
                diff <= 1e-5,
                "{name}: {text:?} moved by {diff} with its batch"
            );
        }
    }
}

#[test]
fn qwen_fixtures_on_mlx_match_transformers_in_pytorch() {
    for name in ["qwen2-qodo-layout", "qwen3"] {
        let fixture = qwen_fixture(name);
        assert_close(
            &format!("{name} MLX vs transformers (PyTorch)"),
            &rows(&mlx(&fixture.dir.0), &fixture.texts, false),
            &fixture.vectors,
            0.99999,
            1e-4,
        );
    }
}

/// XLM-R (with a Tanh Dense module), ModernBERT (sliding windows, two rotary bases) and
/// EmbeddingGemma (four norms, GQA, its Dense modules and named prompts) on MLX, against
/// PyTorch and the ONNX Runtime graph; float16 against float32.
#[test]
fn encoder_fixtures_on_mlx_match_pytorch_and_the_ort_graph() {
    use common::encoders::{embed, Fixture};
    for name in ["xlm-roberta", "modernbert", "embeddinggemma"] {
        let fixture = Fixture::open(name, "mlx");
        let on_mlx = mlx(&fixture.dir.0);
        let ort = load(&fixture.dir.0, "cpu", Some("float32"));
        assert_eq!(on_mlx.dim(), ort.dim(), "{name}");
        for (is_query, prompt) in [(false, "document"), (true, "query")] {
            let vectors = embed(&on_mlx, &fixture.texts, is_query, None);
            let label = format!("{name} {prompt} vectors on MLX");
            assert_close(
                &format!("{label} vs PyTorch"),
                &vectors,
                &fixture.expected(prompt),
                0.99999,
                1e-4,
            );
            let graph = embed(&ort, &fixture.texts, is_query, None);
            assert_close(
                &format!("{label} vs the ORT graph"),
                &vectors,
                &graph,
                0.99999,
                1e-4,
            );
        }
        let half = embed(
            &load(&fixture.dir.0, "mlx", Some("float16")),
            &fixture.texts,
            false,
            None,
        );
        assert_close(
            &format!("{name} float16 on MLX vs PyTorch"),
            &half,
            &fixture.expected("document"),
            0.999,
            3e-2,
        );
    }
    let gemma = Fixture::open("embeddinggemma", "mlx-prompt");
    assert_close(
        "EmbeddingGemma 'Code Retrieval' on MLX vs PyTorch",
        &embed(
            &mlx(&gemma.dir.0),
            &gemma.texts,
            true,
            Some("Code Retrieval"),
        ),
        &gemma.expected("Code Retrieval"),
        0.99999,
        1e-4,
    );
}

/// The reranker fixtures (BERT, XLM-R, ModernBERT cross-encoders, the Qwen3 judge) on MLX,
/// against PyTorch and the ONNX Runtime graph; float16 against float32.
#[test]
fn rerankers_on_mlx_match_pytorch_and_the_ort_graph() {
    use common::rerankers::{logits, reranker, worst, Fixture};
    for name in [
        "rerank-bert",
        "rerank-xlm-roberta",
        "rerank-modernbert",
        "rerank-qwen3-seq-cls",
        "rerank-qwen3",
    ] {
        let fixture = Fixture::open(name, "mlx");
        let on_mlx = reranker(&fixture.dir.0, fixture.with_backend("mlx", "float32"));
        assert_eq!(on_mlx.info().backend, "mlx");
        let ort = fixture.load("float32");
        let half = reranker(&fixture.dir.0, fixture.with_backend("mlx", "float16"));
        let docs = &fixture.reference.docs;
        for case in &fixture.reference.cases {
            let instruction = case.instruction.as_deref();
            let ours = logits(&on_mlx, &case.query, docs, instruction);
            let vs_pytorch = worst(&ours, &case.logits);
            let vs_graph = worst(&ours, &logits(&ort, &case.query, docs, instruction));
            let vs_half = worst(&logits(&half, &case.query, docs, instruction), &ours);
            println!("{name} on MLX: max |raw - PyTorch| {vs_pytorch:.2e}, - ORT graph {vs_graph:.2e}, float16 - float32 {vs_half:.2e}");
            assert!(vs_pytorch <= 1e-4 && vs_graph <= 1e-4, "{name}");
            // the judge is 8 wide with large weights: float16 rounds a larger share of each sum
            assert!(vs_half <= 5e-2, "{name} float16");
        }
    }
}
