//! Property tests over random and damaged input, each for a bounded time (`FUZZ_SECONDS`,
//! default 30, per target): the snapshot readers (config.json, the pooling and prompt files,
//! safetensors headers) and the tokenise -> batch -> pool path. No input may panic or abort;
//! every one gives a result or an error. Each target prints how many inputs it ran.
mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{minilm_dir, Scratch};
use semantic_search_native::arch;
use semantic_search_native::backend::Backend;
use semantic_search_native::batching::Batch;
use semantic_search_native::engine::{Engine, Options};
use semantic_search_native::error::Result;
use semantic_search_native::model::Model;
use semantic_search_native::pooling::{pool, Pooling};
use semantic_search_native::weights::Safetensors;

fn budget() -> Duration {
    let seconds = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(seconds)
}

/// splitmix64
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A JSON value of any kind and size, including the ones that break naive readers.
fn any_value(r: &mut Random) -> serde_json::Value {
    use serde_json::json;
    match r.below(12) {
        0 => json!(null),
        1 => json!(-1),
        2 => json!(0),
        3 => json!(1_000_000_000_000_000u64),
        4 => json!(u64::MAX),
        5 => json!(1.5e300),
        6 => json!(r.below(5000)),
        7 => json!("../../etc"),
        8 => json!("/absolute/path"),
        9 => json!([1, 2, "x"]),
        10 => json!({"nested": {"deep": []}}),
        _ => json!(true),
    }
}

/// `text` with one random edit: a key set to any value, a key removed, or bytes flipped or cut.
fn mutate_json(r: &mut Random, text: &str) -> String {
    let mut value: serde_json::Value = serde_json::from_str(text).unwrap();
    match (r.below(4), value.as_object_mut()) {
        (0, Some(map)) if !map.is_empty() => {
            let key = map.keys().nth(r.below(map.len())).unwrap().clone();
            map.insert(key, any_value(r));
            value.to_string()
        }
        (1, Some(map)) if !map.is_empty() => {
            let key = map.keys().nth(r.below(map.len())).unwrap().clone();
            map.remove(&key);
            value.to_string()
        }
        (2, _) => {
            let mut bytes = text.as_bytes().to_vec();
            for _ in 0..1 + r.below(4) {
                let at = r.below(bytes.len());
                bytes[at] = r.next() as u8;
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => text[..r.below(text.len())].to_string(),
    }
}

/// A small valid safetensors file of F32 tensors, then a random edit of its header or its end.
fn damaged_safetensors(r: &mut Random) -> Vec<u8> {
    let tensors = [
        ("a.weight", vec![4usize, 3]),
        ("b.bias", vec![3]),
        ("c", vec![2, 2, 2]),
    ];
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape) in &tensors {
        let bytes = shape.iter().product::<usize>() * 4;
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let mut header = serde_json::Value::Object(header);
    let name = r.pick(&tensors).0;
    match r.below(6) {
        0 => header[name]["shape"] = serde_json::json!([r.next() % 1_000_000_007, r.below(9)]),
        1 => header[name]["data_offsets"] = serde_json::json!([r.below(100), r.next() % (1 << 40)]),
        2 => {
            header[name]["dtype"] =
                serde_json::json!(*r.pick(&["F64", "I8", "BOOL", "F16", "BF16", "X"]))
        }
        3 => header[name] = any_value(r),
        _ => {}
    }
    let text = header.to_string();
    let mut file = (text.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(text.as_bytes());
    file.extend((0..offset).map(|i| i as u8));
    match r.below(5) {
        0 => file.truncate(r.below(file.len())),
        1 => {
            let at = r.below(file.len());
            file[at] = r.next() as u8;
        }
        2 => file[..8].copy_from_slice(&r.next().to_le_bytes()),
        _ => {}
    }
    file
}

/// Runs `f`, failing with `what` if it panics.
fn no_panic<T>(what: &str, f: impl FnOnce() -> T) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        panic!("panicked on: {what}");
    }
}

#[test]
fn snapshot_readers_refuse_damaged_files_without_panicking() {
    let model = minilm_dir();
    let read = |name: &str| std::fs::read_to_string(model.join(name)).unwrap();
    let (config, pooling) = (read("config.json"), read("1_Pooling/config.json"));
    let qwen = r#"{"model_type":"qwen3","vocab_size":100,"hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"head_dim":32,"max_position_embeddings":32768,"eos_token_id":[1,2],"auto_map":{"AutoModel":"x"}}"#;
    let nomic = r#"{"model_type":"nomic_bert","vocab_size":30528,"n_embd":64,"n_layer":2,"n_head":4,"n_positions":8192,"max_trained_positions":2048}"#;
    let jina = r#"{"model_type":"xlm-roberta","hidden_size":32,"lora_adaptations":["a","b"],"task_instructions":{"a":"x"},"matryoshka_dimensions":[8,16]}"#;
    let modules = r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},{"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"}]"#;
    let prompts = r#"{"prompts":{"query":"q: ","document":"d: "}}"#;
    let scratch = Scratch::new("fuzz-snapshot");
    let dir = scratch.0.as_path();
    std::fs::create_dir_all(dir.join("1_Pooling")).unwrap();
    std::fs::copy(model.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    let mut r = Random(0x5eed);
    let (started, mut runs, mut refused) = (Instant::now(), 0u64, 0u64);
    while started.elapsed() < budget() {
        let base = *r.pick(&[config.as_str(), qwen, nomic, jina]);
        let config_text = mutate_json(&mut r, base);
        no_panic(&config_text, || {
            arch::parse(Path::new("config.json"), &config_text)
        });
        // each file damaged one time in three, so that damage deep in a valid snapshot is reached
        let mut maybe = |text: &str| {
            if r.below(3) == 0 {
                mutate_json(&mut r, text)
            } else {
                text.to_string()
            }
        };
        let files = [
            ("config.json", maybe(base)),
            ("1_Pooling/config.json", maybe(&pooling)),
            ("modules.json", maybe(modules)),
            ("config_sentence_transformers.json", maybe(prompts)),
        ];
        for (name, text) in &files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        no_panic(&format!("{files:?}"), || {
            refused += u64::from(Model::open(dir).is_err())
        });
        let weights = damaged_safetensors(&mut r);
        std::fs::write(dir.join("model.safetensors"), &weights).unwrap();
        no_panic(
            &format!("safetensors {:?}", &weights[..weights.len().min(300)]),
            || {
                if let Ok(Some(st)) = Safetensors::open(dir, "weight") {
                    for name in ["a.weight", "b.bias", "c"] {
                        let _ = st.get(name);
                    }
                }
            },
        );
        runs += 1;
    }
    println!(
        "snapshot readers: {runs} damaged snapshots in {:?} ({refused} refused by Model::open)",
        started.elapsed()
    );
    assert!(runs > 100, "only {runs} runs");
}

/// Token states made from the ids, pooled by the crate's pooling: the engine's own path without
/// a model.
struct HashBackend {
    dim: usize,
    max_length: usize,
}

impl Backend for HashBackend {
    fn forward(&self, batch: &Batch, out: &mut [f32]) -> Result<()> {
        let (rows, seq) = (batch.size(), batch.seq);
        assert!(
            seq <= self.max_length,
            "a batch of {seq} tokens past maxLength {}",
            self.max_length
        );
        assert_eq!(batch.input_ids.len(), rows * seq);
        assert_eq!(batch.attention_mask.len(), rows * seq);
        for (row, &len) in batch.lengths.iter().enumerate() {
            assert!(len >= 1 && len <= seq);
            let mask = &batch.attention_mask[row * seq..(row + 1) * seq];
            assert!(mask[..len].iter().all(|&m| m == 1) && mask[len..].iter().all(|&m| m == 0));
        }
        let hidden: Vec<f32> = batch
            .input_ids
            .iter()
            .flat_map(|&id| {
                (0..self.dim).map(move |d| ((id as u64 * 31 + d as u64) % 17) as f32 - 8.0 + 0.5)
            })
            .collect();
        pool(Pooling::Mean, &hidden, seq, self.dim, &batch.lengths, out);
        Ok(())
    }
    fn kind(&self) -> &'static str {
        "cpu"
    }
    fn device(&self) -> String {
        "test".into()
    }
    fn dim(&self) -> Option<usize> {
        Some(self.dim)
    }
}

fn random_text(r: &mut Random) -> String {
    const PIECES: &[&str] = &[
        "fn",
        " ",
        "\t",
        "\n",
        "\0",
        "é",
        "e\u{301}",
        "日本",
        "😀",
        "👩‍💻",
        "\u{202e}",
        "ﷺ",
        "ß",
        "İ",
        "[CLS]",
        "[SEP]",
        "[PAD]",
        "##",
        "<|endoftext|>",
        "a",
        "Z",
        "0",
        "{}",
        "\u{feff}",
        "\u{fffd}",
    ];
    let len = match r.below(10) {
        0 => 0,
        1 => 2000 + r.below(20000),
        _ => r.below(60),
    };
    (0..len)
        .map(|_| match r.below(4) {
            0 => char::from_u32(r.next() as u32 % 0x11_0000)
                .unwrap_or('?')
                .to_string(),
            _ => r.pick(PIECES).to_string(),
        })
        .collect()
}

#[test]
fn tokenise_batch_pool_holds_on_random_text() {
    let model = minilm_dir();
    let mut r = Random(0xfeed);
    let (started, mut runs, mut texts) = (Instant::now(), 0u64, 0u64);
    while started.elapsed() < budget() {
        let max_length = 2 + r.below(300);
        let options = Options {
            max_length: Some(max_length as u32),
            batch_tokens: Some(1 + r.below(3000) as u32),
            ..Options::default()
        };
        let backend = Box::new(HashBackend { dim: 8, max_length });
        let engine = Engine::with_backend(&model, backend, &options).expect("loads");
        let batch: Vec<String> = (0..r.below(40)).map(|_| random_text(&mut r)).collect();
        let is_query = r.below(2) == 0;
        no_panic(&format!("{batch:?}"), || {
            let vectors = engine.embed(&batch, is_query).expect("embeds");
            assert_eq!(vectors.len(), batch.len() * 8);
            for v in vectors.chunks_exact(8) {
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
            }
        });
        runs += 1;
        texts += batch.len() as u64;
    }
    println!(
        "tokenise-batch-pool: {runs} calls, {texts} random texts in {:?}",
        started.elapsed()
    );
    assert!(runs > 50, "only {runs} runs");
}
