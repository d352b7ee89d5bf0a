//! Test models and comparisons shared by the integration tests.
#![allow(dead_code)]
pub mod candle;
pub mod encoders;
pub mod random;
pub mod rerankers;

use std::path::{Path, PathBuf};

use safetensors::tensor::Dtype;

pub use random::*;
pub use semantic_search_native::choices::Choice;
use semantic_search_native::engine::{Engine, Options};

/// The value of an option by its JavaScript name.
pub fn named<T: Choice>(name: &str) -> T {
    T::parse(name).expect("a known name")
}

pub fn minilm_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cache/models/all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "test model missing at {}: run npm run fetch-models",
        dir.display()
    );
    dir
}

/// A scratch folder under the system temp dir, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("ssn-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub const QUERY_PREFIX: &str = "Represent this query for searching relevant code: ";
pub fn nomic_weights(shape: &NomicShape, seed: u64) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    generate(&nomic_specs(shape, Profile::Random), seed)
}

/// A complete snapshot of a random NomicBert: CLS pooling and the CodeRankEmbed query prefix.
pub fn write_nomic_dir(dir: &Path, shape: &NomicShape, seed: u64) {
    let tokenizer = minilm_dir().join("tokenizer.json");
    write_nomic_snapshot(dir, shape, Profile::Random, seed, &tokenizer);
    std::fs::write(
        dir.join("config_sentence_transformers.json"),
        format!(r#"{{"prompts":{{"query":"{QUERY_PREFIX}","document":""}}}}"#),
    )
    .expect("prompts");
}

pub fn ours(dir: &Path, texts: &[String], is_query: bool) -> Vec<Vec<f32>> {
    let engine = Engine::load(dir, &Options::default()).expect("engine loads");
    rows(&engine, texts, is_query)
}

/// The engine's vectors of `texts`, one row each.
pub fn rows(engine: &Engine, texts: &[String], is_query: bool) -> Vec<Vec<f32>> {
    let dim = engine.dim();
    engine
        .embed(texts, is_query)
        .expect("embeds")
        .chunks(dim)
        .map(<[f32]>::to_vec)
        .collect()
}

pub fn texts() -> Vec<String> {
    let long =
        "let total = values.iter().map(|v| v * weight).sum::<f32>() / count as f32; ".repeat(12);
    [
        "fn add(a: i32, b: i32) -> i32 { a + b }",
        "Reads a file and returns its lines.",
        "",
        long.as_str(),
        "class Stack<T> { push(x: T) { this.items.push(x); } pop(): T { return this.items.pop(); } }",
        "SELECT name, count(*) FROM users GROUP BY name",
        "x",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Asserts every pair of vectors agrees: cosine >= `min_cosine` and max abs difference <= `max_diff`.
pub fn assert_close(label: &str, a: &[Vec<f32>], b: &[Vec<f32>], min_cosine: f32, max_diff: f32) {
    assert_eq!(a.len(), b.len());
    let worst_cos = a
        .iter()
        .zip(b)
        .map(|(x, y)| cosine(x, y))
        .fold(1.0, f32::min);
    let worst_diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| max_abs_diff(x, y))
        .fold(0.0, f32::max);
    println!(
        "{label}: min cosine {worst_cos:.7}, max abs diff {worst_diff:.2e} over {} texts",
        a.len()
    );
    assert!(
        worst_cos >= min_cosine,
        "{label}: cosine {worst_cos} < {min_cosine}"
    );
    assert!(
        worst_diff <= max_diff,
        "{label}: max abs diff {worst_diff} > {max_diff}"
    );
}

/// MiniLM's tokenizer ends every sequence with [SEP]: the EOS of these test models.
pub const QWEN_TEST_EOS: u32 = 102;

/// Random Qwen weights under unprefixed keys (Qodo-Embed-1's layout); `qwen3` adds q/k norms
/// and drops the q/k/v biases.
pub fn qwen_weights(
    shape: &QwenShape,
    qwen3: bool,
    seed: u64,
) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    generate(&qwen_specs(shape, qwen3, Profile::Random), seed)
}

/// A Qwen snapshot: last-token pooling, no Normalize module, MiniLM's tokenizer; `extra`
/// config fields decide the attention (`auto_map` to the gte remote code, `is_causal`).
pub fn write_qwen_dir(dir: &Path, shape: &QwenShape, qwen3: bool, seed: u64, extra: &str) {
    let layout = QwenLayout {
        qwen3,
        profile: Profile::Random,
        eos: QWEN_TEST_EOS,
        positions: 4096,
        extra,
        sharded: false,
        dtype: Dtype::F32,
        max_seq_length: None,
    };
    write_qwen_snapshot(
        dir,
        shape,
        &layout,
        seed,
        &minilm_dir().join("tokenizer.json"),
    );
}

/// Qodo-Embed-1's `auto_map`: its own remote code, whose attention is bidirectional.
pub const QODO_AUTO_MAP: &str =
    r#","auto_map":{"AutoModel":"Alibaba-NLP/gte-Qwen2-1.5B-instruct--modeling_qwen.Qwen2Model"}"#;

pub fn load_with(dir: &Path, options: Options) -> Engine {
    Engine::load(dir, &options).expect("engine loads")
}

/// A fixture snapshot of tests/fixtures (made by scripts/make-qwen-fixtures.py) with MiniLM's
/// tokenizer beside it, and the vectors and token ids transformers computed for its texts.
pub struct QwenFixture {
    pub dir: Scratch,
    pub texts: Vec<String>,
    pub ids: Vec<Vec<u32>>,
    pub vectors: Vec<Vec<f32>>,
}

pub fn qwen_fixture(name: &str) -> QwenFixture {
    #[derive(serde::Deserialize)]
    struct Reference {
        texts: Vec<String>,
        ids: Vec<Vec<u32>>,
        vectors: Vec<Vec<f32>>,
    }
    let from = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let dir = Scratch::new(&format!("fixture-{name}"));
    for file in ["config.json", "model.safetensors"] {
        std::fs::copy(from.join(file), dir.0.join(file)).expect("fixture file");
    }
    std::fs::create_dir_all(dir.0.join("1_Pooling")).expect("pooling dir");
    std::fs::copy(
        from.join("1_Pooling/config.json"),
        dir.0.join("1_Pooling/config.json"),
    )
    .expect("pooling");
    std::fs::copy(
        minilm_dir().join("tokenizer.json"),
        dir.0.join("tokenizer.json"),
    )
    .expect("tokenizer");
    let reference: Reference = serde_json::from_str(
        &std::fs::read_to_string(from.join("reference.json")).expect("reference"),
    )
    .expect("reference json");
    QwenFixture {
        dir,
        texts: reference.texts,
        ids: reference.ids,
        vectors: reference.vectors,
    }
}
