//! The encoder fixtures of tests/fixtures (made by scripts/make-encoder-fixtures.py) and what
//! PyTorch computed for them.
use std::path::Path;

use super::{minilm_dir, Scratch};
use semantic_search_native::engine::Engine;
use semantic_search_native::task::EmbedOptions;

/// A fixture of tests/fixtures with MiniLM's tokenizer beside it, and what PyTorch computed.
pub struct Fixture {
    pub dir: Scratch,
    pub texts: Vec<String>,
    pub ids: Vec<Vec<u32>>,
    /// Vectors by prompt: `document`, `query`, and EmbeddingGemma's `Code Retrieval`.
    pub vectors: serde_json::Map<String, serde_json::Value>,
}

impl Fixture {
    /// `test`: the test's own name for its scratch folder (tests run at once).
    pub fn open(name: &str, test: &str) -> Fixture {
        let tokenizer = minilm_dir().join("tokenizer.json");
        let (dir, reference) = copy_fixture(name, &format!("encoder-{name}-{test}"), &tokenizer);
        let mut reference: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&reference).expect("reference json");
        Fixture {
            texts: take(&mut reference, "texts"),
            ids: take(&mut reference, "ids"),
            dir,
            vectors: reference,
        }
    }

    pub fn expected(&self, prompt: &str) -> Vec<Vec<f32>> {
        serde_json::from_value(self.vectors[prompt].clone()).expect("vectors")
    }

    /// The fixture with `edit` applied to its config.json, in a folder of its own.
    pub fn with_config(&self, name: &str, edit: impl Fn(&mut serde_json::Value)) -> Scratch {
        let dir = Scratch::new(name);
        copy_tree(&self.dir.0, &dir.0);
        let path = dir.0.join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        edit(&mut config);
        std::fs::write(&path, config.to_string()).unwrap();
        dir
    }
}

fn take<T: serde::de::DeserializeOwned>(
    reference: &mut serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> T {
    serde_json::from_value(reference.remove(key).expect(key)).expect(key)
}

/// The fixture `name` of tests/fixtures in a scratch folder `scratch` with `tokenizer` beside it
/// (fixtures hold no tokenizer), and the text of its `reference.json`.
pub fn copy_fixture(name: &str, scratch: &str, tokenizer: &Path) -> (Scratch, String) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let dir = Scratch::new(scratch);
    copy_tree(&from, &dir.0);
    std::fs::copy(tokenizer, dir.0.join("tokenizer.json")).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the Qwen3 tokenizer comes with `npm ci`, MiniLM's with `npm run fetch-models`)",
            tokenizer.display()
        )
    });
    let reference = std::fs::read_to_string(from.join("reference.json")).expect("reference");
    (dir, reference)
}

pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("dir");
    for entry in std::fs::read_dir(from).expect("fixture") {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else if entry.file_name() != "reference.json" {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

pub fn embed(
    engine: &Engine,
    texts: &[String],
    is_query: bool,
    prompt: Option<&str>,
) -> Vec<Vec<f32>> {
    let call = EmbedOptions {
        prompt: prompt.map(str::to_string),
        ..Default::default()
    };
    let dim = engine.dim();
    let vectors = engine.embed_with(texts, is_query, &call).expect("embeds");
    vectors.chunks(dim).map(<[f32]>::to_vec).collect()
}
