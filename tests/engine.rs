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
