//! The engine on the real all-MiniLM-L6-v2 (fetched by `npm run fetch-models`).
mod common;

use common::minilm_dir as model_dir;
use semantic_search_native::engine::{Engine, Options};

fn texts() -> Vec<String> {
    let long = "let total = values.iter().sum::<f32>() / n; ".repeat(80);
    [
        "fn add(a: i32, b: i32) -> i32 { a + b }",
        "",
        "x",
        long.as_str(),
        "SELECT * FROM users",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn vectors_are_unit_length_in_input_order() {
    let engine = Engine::load(&model_dir(), &Options::default()).expect("model loads");
    let dim = engine.info().dim;
    let all = engine.embed(&texts(), false).expect("embeds");
    assert_eq!(all.len(), texts().len() * dim);
    for row in all.chunks_exact(dim) {
        let norm: f32 = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
    let third = engine.embed(&texts()[3..4], false).expect("embeds");
    let diff = third
        .iter()
        .zip(&all[3 * dim..4 * dim])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(diff <= 1e-5, "max abs diff {diff}");
}

#[test]
fn a_tiny_token_budget_gives_the_same_vectors() {
    let big = Engine::load(&model_dir(), &Options::default()).expect("model loads");
    let small = Engine::load(
        &model_dir(),
        &Options {
            batch_tokens: Some(8),
            ..Options::default()
        },
    )
    .expect("model loads");
    let (a, b) = (
        big.embed(&texts(), false).expect("embeds"),
        small.embed(&texts(), false).expect("embeds"),
    );
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    assert!(diff <= 1e-5, "max abs diff {diff}");
}

fn with_dtype(dtype: &str, extra: Options) -> Options {
    Options {
        dtype: Some(dtype.into()),
        ..extra
    }
}

/// The vectors of `texts` from the graph built in `dtype`, which `info()` must report.
fn in_dtype(dtype: &str, texts: &[String]) -> Vec<Vec<f32>> {
    let engine = Engine::load(&model_dir(), &with_dtype(dtype, Options::default())).expect("loads");
    assert_eq!(engine.info().dtype.as_deref(), Some(dtype));
    common::rows(&engine, texts, false)
}

/// dtype 'int8' quantises the graph's projections (not the FFN's down projection). Measured on
/// 600 code symbols: min cosine 0.9956 to float32; texts of one or two tokens ("", "x") fall to
/// 0.990, as the single activation scale of a tiny batch is the coarsest.
#[test]
fn int8_dynamic_quantisation_stays_close_to_float32() {
    let texts = common::texts();
    let (a, b) = (in_dtype("float32", &texts), in_dtype("int8", &texts));
    common::assert_close("int8 vs float32", &b, &a, 0.985, 0.05);
    for (i, text) in texts.iter().enumerate().filter(|(_, t)| t.len() > 1) {
        let cosine = common::cosine(&a[i], &b[i]);
        assert!(cosine >= 0.995, "int8 cosine {cosine} < 0.995 for {text:?}");
    }
    let moved = a
        .iter()
        .zip(&b)
        .map(|(x, y)| common::max_abs_diff(x, y))
        .fold(0.0, f32::max);
    assert!(
        moved > 1e-4,
        "int8 gave the float32 vectors: was the graph quantised?"
    );
}

/// One activation scale per micro-batch: under int8 a text's vector moves a little with the
/// texts it runs with (measured on 300 code symbols, alone against in one call: min cosine
/// 0.9957; "" and "x", alone tensors of two and three tokens, 0.981 and 0.986), where float32
/// vectors do not (`a_tiny_token_budget_gives_the_same_vectors`).
#[test]
fn int8_vectors_move_only_slightly_with_their_batch() {
    let texts = common::texts();
    let engine =
        Engine::load(&model_dir(), &with_dtype("int8", Options::default())).expect("loads");
    let together = common::rows(&engine, &texts, false);
    for (i, text) in texts.iter().enumerate().filter(|(_, t)| t.len() > 1) {
        let alone = common::rows(&engine, std::slice::from_ref(text), false);
        let cosine = common::cosine(&alone[0], &together[i]);
        assert!(cosine >= 0.99, "int8 cosine {cosine} < 0.99 for {text:?}");
    }
}

#[test]
fn dtypes_are_refused_where_they_cannot_run() {
    let onnx = || Options {
        weights: Some("onnx".into()),
        ..Options::default()
    };
    let cuda = Options {
        backend: Some("cuda".into()),
        ..Options::default()
    };
    for (options, expected) in [
        (with_dtype("int8", onnx()), "is ONNX, which runs as it is"),
        (
            with_dtype("float16", onnx()),
            "is ONNX, which runs as it is",
        ),
        (
            with_dtype("int8", cuda),
            "dtype 'int8' runs on the CPU only",
        ),
        (
            with_dtype("bfloat16", Options::default()),
            "unknown dtype 'bfloat16'",
        ),
    ] {
        let error = Engine::load(&model_dir(), &options)
            .err()
            .expect("refused")
            .to_string();
        assert!(error.contains(expected), "{error}");
    }
}

/// The half-precision graph that CUDA runs by default, here run by ONNX Runtime's CPU provider:
/// the graph is the same, so its parity with float32 is checked without a GPU.
#[test]
fn float16_graph_stays_close_to_float32() {
    let texts = common::texts();
    let (a, b) = (in_dtype("float32", &texts), in_dtype("float16", &texts));
    common::assert_close("MiniLM float16 vs float32", &b, &a, 0.999, 0.01);
}
