//! Writes a snapshot of random weights, laid out as the real model's snapshot, with the one
//! generator the Rust tests use (`tests/common/random.rs`), a tensor at a time. The bench makes
//! real shapes with it, the Jest tests small ones.
//!
//!   cargo run --release --example make_random -- nomic OUT TOKENIZER_JSON [options]
//!       NomicBert, CodeRankEmbed's shape by default (768 x 12, 547 MB fp32), CLS pooling
//!   cargo run --release --example make_random -- modernbert OUT TOKENIZER_JSON [options]
//!       ModernBERT, gte-modernbert-base's shape by default (768 x 22, 596 MB fp32): a window of
//!       128 tokens on two layers of three, CLS pooling
//!   cargo run --release --example make_random -- qwen OUT TOKENIZER_JSON [options]
//!       Qwen2, Qodo-Embed-1-1.5B's shape by default (1536 x 28, 6.2 GB fp32): two shards with an
//!       index, unprefixed keys, `auto_map` to the gte remote code, last-token pooling;
//!       `--qwen3` for Qwen3 (per-head q/k norms, no q/k/v biases, causal)
//!   cargo run --release --example make_random -- cross-encoder OUT TOKENIZER_JSON [options]
//!       BertForSequenceClassification (one label), cross-encoder/ms-marco-MiniLM-L6-v2's shape
//!       by default (384 x 6, 91 MB fp32)
//!   cargo run --release --example make_random -- judge OUT TOKENIZER_JSON [options]
//!       Qwen3ForCausalLM laid out as Qwen3-Reranker (tied embeddings), Qwen3-Reranker-0.6B's
//!       shape by default (1024 x 28, 16 / 8 heads of 128, 2.4 GB fp32, one file)
//!
//! Options: --hidden N --heads N --kv-heads N --head-dim N --layers N --inner N --vocab N
//! --positions N (Qwen), --seed N, --random (every norm and bias random too, as the tests want;
//! default: as a model is initialised), --bf16 (Qwen).
#[path = "../tests/common/random.rs"]
mod random;

use std::collections::HashMap;
use std::path::Path;

use random::*;
use safetensors::tensor::Dtype;

/// Qodo-Embed-1's `auto_map` (its remote code's attention is bidirectional) and architecture.
const QODO_EXTRA: &str = r#","auto_map":{"AutoModel":"Alibaba-NLP/gte-Qwen2-1.5B-instruct--modeling_qwen.Qwen2Model"},"architectures":["Qwen2ForCausalLM"]"#;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (positional, options) = split(&args);
    let [kind, out, tokenizer] = positional.as_slice() else {
        usage()
    };
    let (out, tokenizer) = (Path::new(out), Path::new(tokenizer));
    let number = |name: &str, default: usize| -> usize {
        options.get(name).map_or(default, |v| {
            v.parse().unwrap_or_else(|_| {
                eprintln!("--{name} takes a number, got {v:?}");
                std::process::exit(2)
            })
        })
    };
    let flag = |name: &str| options.contains_key(name);
    let profile = if flag("random") {
        Profile::Random
    } else {
        Profile::Fresh
    };
    let seed = number("seed", 0) as u64;
    match kind.as_str() {
        "nomic" => {
            let shape = NomicShape {
                hidden: number("hidden", CODERANKEMBED.hidden),
                heads: number("heads", CODERANKEMBED.heads),
                layers: number("layers", CODERANKEMBED.layers),
                inner: number("inner", CODERANKEMBED.inner),
            };
            write_nomic_snapshot(out, &shape, profile, seed, tokenizer);
        }
        "modernbert" => {
            let shape = ModernBertShape {
                hidden: number("hidden", GTE_MODERNBERT.hidden),
                heads: number("heads", GTE_MODERNBERT.heads),
                layers: number("layers", GTE_MODERNBERT.layers),
                inner: number("inner", GTE_MODERNBERT.inner),
                vocab: number("vocab", GTE_MODERNBERT.vocab),
            };
            write_modernbert_snapshot(out, &shape, profile, seed, tokenizer);
        }
        "qwen" => {
            let shape = QwenShape {
                hidden: number("hidden", QODO.hidden),
                heads: number("heads", QODO.heads),
                kv_heads: number("kv-heads", QODO.kv_heads),
                head_dim: number("head-dim", QODO.head_dim),
                layers: number("layers", QODO.layers),
                inner: number("inner", QODO.inner),
                vocab: number("vocab", QODO.vocab),
            };
            let qwen3 = flag("qwen3");
            let layout = QwenLayout {
                qwen3,
                profile,
                eos: 151_643,
                positions: number("positions", 131_072),
                extra: if qwen3 { "" } else { QODO_EXTRA },
                sharded: true,
                dtype: if flag("bf16") {
                    Dtype::BF16
                } else {
                    Dtype::F32
                },
                max_seq_length: Some(32_768),
            };
            write_qwen_snapshot(out, &shape, &layout, seed, tokenizer);
        }
        "cross-encoder" => {
            let shape = BertShape {
                hidden: number("hidden", MS_MARCO_MINILM.hidden),
                heads: number("heads", MS_MARCO_MINILM.heads),
                layers: number("layers", MS_MARCO_MINILM.layers),
                inner: number("inner", MS_MARCO_MINILM.inner),
                vocab: number("vocab", MS_MARCO_MINILM.vocab),
            };
            write_cross_encoder_snapshot(out, &shape, profile, seed, tokenizer);
        }
        "judge" => {
            let shape = QwenShape {
                hidden: number("hidden", 1024),
                heads: number("heads", 16),
                kv_heads: number("kv-heads", 8),
                head_dim: number("head-dim", 128),
                layers: number("layers", 28),
                inner: number("inner", 3072),
                vocab: number("vocab", 151_669),
            };
            let layout = QwenLayout {
                qwen3: true,
                profile,
                eos: 151_645,
                positions: 40_960,
                extra: r#","architectures":["Qwen3ForCausalLM"]"#,
                sharded: false,
                dtype: if flag("bf16") {
                    Dtype::BF16
                } else {
                    Dtype::F32
                },
                max_seq_length: None,
            };
            write_qwen_snapshot(out, &shape, &layout, seed, tokenizer);
            tie_embeddings(out);
        }
        _ => usage(),
    }
}

/// The judge's output projection is its embedding table, as Qwen3-Reranker-0.6B's.
fn tie_embeddings(dir: &Path) {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).expect("config");
    let mut config: serde_json::Value = serde_json::from_str(&text).expect("config json");
    config["tie_word_embeddings"] = true.into();
    std::fs::write(&path, config.to_string()).expect("config");
    let _ = std::fs::remove_dir_all(dir.join("1_Pooling"));
}

/// The positional arguments, and `--name [value]` options (a flag's value is empty).
fn split(args: &[String]) -> (Vec<String>, HashMap<String, String>) {
    let (mut positional, mut options) = (Vec::new(), HashMap::new());
    let mut i = 0;
    while i < args.len() {
        match args[i].strip_prefix("--") {
            Some(name) => {
                let value = args.get(i + 1).filter(|v| !v.starts_with("--"));
                options.insert(name.to_string(), value.cloned().unwrap_or_default());
                i += 1 + usize::from(value.is_some() && !is_flag(name));
            }
            None => {
                positional.push(args[i].clone());
                i += 1;
            }
        }
    }
    (positional, options)
}

fn is_flag(name: &str) -> bool {
    matches!(name, "random" | "bf16" | "qwen3")
}

fn usage() -> ! {
    eprintln!("usage: make_random nomic|modernbert|qwen|cross-encoder|judge OUT TOKENIZER_JSON [--hidden N --heads N --kv-heads N --head-dim N --layers N --inner N --vocab N --positions N --seed N --random --bf16 --qwen3]");
    std::process::exit(2);
}
