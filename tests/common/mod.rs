//! Test models and comparisons shared by the integration tests.
#![allow(dead_code)]
pub mod candle;

use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
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

/// Deterministic values in [-scale, scale) (splitmix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self, scale: f32) -> f32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    }
    pub fn vec(&mut self, n: usize, center: f32, scale: f32) -> Vec<f32> {
        (0..n).map(|_| center + self.next(scale)).collect()
    }
}

/// A NomicBert shaped like CodeRankEmbed but smaller; every weight random, LayerNorms included.
pub struct NomicShape {
    pub hidden: usize,
    pub heads: usize,
    pub layers: usize,
    pub inner: usize,
}

pub const SMALL_NOMIC: NomicShape = NomicShape {
    hidden: 128,
    heads: 4,
    layers: 3,
    inner: 256,
};
pub const QUERY_PREFIX: &str = "Represent this query for searching relevant code: ";
const VOCAB: usize = 30528;

pub fn nomic_weights(shape: &NomicShape, seed: u64) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut rng = Rng::new(seed);
    let (h, i) = (shape.hidden, shape.inner);
    // uniform(-a, a) with a = sqrt(3 / fan_in) keeps activations near unit variance
    let lin =
        |rng: &mut Rng, out: usize, inp: usize| rng.vec(out * inp, 0.0, (3.0 / inp as f32).sqrt());
    let mut t = vec![
        (
            "embeddings.word_embeddings.weight".into(),
            vec![VOCAB, h],
            rng.vec(VOCAB * h, 0.0, 1.0),
        ),
        (
            "embeddings.token_type_embeddings.weight".into(),
            vec![2, h],
            rng.vec(2 * h, 0.0, 1.0),
        ),
        ("emb_ln.weight".into(), vec![h], rng.vec(h, 1.0, 0.3)),
        ("emb_ln.bias".into(), vec![h], rng.vec(h, 0.0, 0.3)),
    ];
    for l in 0..shape.layers {
        let p = format!("encoder.layers.{l}");
        t.push((
            format!("{p}.attn.Wqkv.weight"),
            vec![3 * h, h],
            lin(&mut rng, 3 * h, h),
        ));
        t.push((
            format!("{p}.attn.out_proj.weight"),
            vec![h, h],
            lin(&mut rng, h, h),
        ));
        t.push((
            format!("{p}.mlp.fc11.weight"),
            vec![i, h],
            lin(&mut rng, i, h),
        ));
        t.push((
            format!("{p}.mlp.fc12.weight"),
            vec![i, h],
            lin(&mut rng, i, h),
        ));
        t.push((
            format!("{p}.mlp.fc2.weight"),
            vec![h, i],
            lin(&mut rng, h, i),
        ));
        for n in ["norm1", "norm2"] {
            t.push((format!("{p}.{n}.weight"), vec![h], rng.vec(h, 1.0, 0.3)));
            t.push((format!("{p}.{n}.bias"), vec![h], rng.vec(h, 0.0, 0.3)));
        }
    }
    t
}

pub fn nomic_config(shape: &NomicShape) -> String {
    format!(
        r#"{{"model_type":"nomic_bert","vocab_size":{VOCAB},"n_embd":{},"n_head":{},"n_layer":{},"n_inner":{},
        "n_positions":8192,"max_trained_positions":2048,"type_vocab_size":2,"layer_norm_epsilon":1e-12,
        "rotary_emb_fraction":1.0,"rotary_emb_base":1000,"rotary_emb_interleaved":false,"qkv_proj_bias":false,
        "mlp_fc1_bias":false,"mlp_fc2_bias":false,"activation_function":"swiglu","prenorm":false}}"#,
        shape.hidden, shape.heads, shape.layers, shape.inner
    )
}

/// Writes `tensors` as one safetensors file, in `dtype` (F32, F16 or BF16).
pub fn write_safetensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)], dtype: Dtype) {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, data)| encode(data, dtype))
        .collect();
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape, _), b)| {
            (
                name.clone(),
                TensorView::new(dtype, shape.clone(), b).expect("view"),
            )
        })
        .collect();
    let file = safetensors::serialize(views, None).expect("serialize");
    std::fs::write(path, file).expect("write safetensors");
}

fn encode(data: &[f32], dtype: Dtype) -> Vec<u8> {
    match dtype {
        Dtype::F32 => data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Dtype::BF16 => data
            .iter()
            .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
            .collect(),
        Dtype::F16 => data
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect(),
        other => panic!("no encoder for {other:?}"),
    }
}

/// `config.json`, MiniLM's tokenizer and `1_Pooling/config.json`: what every test snapshot has.
fn write_snapshot_files(dir: &Path, config: &str, pooling: &str) {
    std::fs::write(dir.join("config.json"), config).expect("config");
    std::fs::copy(
        minilm_dir().join("tokenizer.json"),
        dir.join("tokenizer.json"),
    )
    .expect("tokenizer");
    std::fs::create_dir_all(dir.join("1_Pooling")).expect("pooling dir");
    std::fs::write(dir.join("1_Pooling/config.json"), pooling).expect("pooling");
}

/// A complete snapshot of a random NomicBert: CLS pooling and the CodeRankEmbed query prefix.
pub fn write_nomic_dir(dir: &Path, shape: &NomicShape, seed: u64) {
    let pooling = format!(
        r#"{{"word_embedding_dimension":{},"pooling_mode_cls_token":true,"pooling_mode_mean_tokens":false}}"#,
        shape.hidden
    );
    write_snapshot_files(dir, &nomic_config(shape), &pooling);
    std::fs::write(
        dir.join("config_sentence_transformers.json"),
        format!(r#"{{"prompts":{{"query":"{QUERY_PREFIX}","document":""}}}}"#),
    )
    .expect("prompts");
    write_safetensors(
        &dir.join("model.safetensors"),
        &nomic_weights(shape, seed),
        Dtype::F32,
    );
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

/// A small Qwen: grouped-query attention (4 query heads on 2 key/value heads), and for Qwen3 a
/// head size that is not hidden / heads.
pub struct QwenShape {
    pub hidden: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub layers: usize,
    pub inner: usize,
}

pub const SMALL_QWEN2: QwenShape = QwenShape {
    hidden: 64,
    heads: 4,
    kv_heads: 2,
    head_dim: 16,
    layers: 2,
    inner: 128,
};

pub const SMALL_QWEN3: QwenShape = QwenShape {
    hidden: 64,
    heads: 4,
    kv_heads: 2,
    head_dim: 32,
    layers: 2,
    inner: 128,
};

/// MiniLM's tokenizer ends every sequence with [SEP]: the EOS of these test models.
pub const QWEN_TEST_EOS: u32 = 102;

/// Random Qwen weights under unprefixed keys (Qodo-Embed-1's layout); `qwen3` adds q/k norms
/// and drops the q/k/v biases.
pub fn qwen_weights(
    shape: &QwenShape,
    qwen3: bool,
    seed: u64,
) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut rng = Rng::new(seed);
    let (h, d, i) = (shape.hidden, shape.head_dim, shape.inner);
    let (q, kv) = (shape.heads * d, shape.kv_heads * d);
    let lin =
        |rng: &mut Rng, out: usize, inp: usize| rng.vec(out * inp, 0.0, (3.0 / inp as f32).sqrt());
    let mut t = vec![(
        "embed_tokens.weight".to_string(),
        vec![VOCAB, h],
        rng.vec(VOCAB * h, 0.0, 1.0),
    )];
    for l in 0..shape.layers {
        let p = format!("layers.{l}");
        let mut push = |name: &str, dims: Vec<usize>, data: Vec<f32>| {
            t.push((format!("{p}.{name}"), dims, data))
        };
        push("input_layernorm.weight", vec![h], rng.vec(h, 1.0, 0.3));
        push("self_attn.q_proj.weight", vec![q, h], lin(&mut rng, q, h));
        push("self_attn.k_proj.weight", vec![kv, h], lin(&mut rng, kv, h));
        push("self_attn.v_proj.weight", vec![kv, h], lin(&mut rng, kv, h));
        if qwen3 {
            push("self_attn.q_norm.weight", vec![d], rng.vec(d, 1.0, 0.3));
            push("self_attn.k_norm.weight", vec![d], rng.vec(d, 1.0, 0.3));
        } else {
            push("self_attn.q_proj.bias", vec![q], rng.vec(q, 0.0, 0.5));
            push("self_attn.k_proj.bias", vec![kv], rng.vec(kv, 0.0, 0.5));
            push("self_attn.v_proj.bias", vec![kv], rng.vec(kv, 0.0, 0.5));
        }
        push("self_attn.o_proj.weight", vec![h, q], lin(&mut rng, h, q));
        push(
            "post_attention_layernorm.weight",
            vec![h],
            rng.vec(h, 1.0, 0.3),
        );
        push("mlp.gate_proj.weight", vec![i, h], lin(&mut rng, i, h));
        push("mlp.up_proj.weight", vec![i, h], lin(&mut rng, i, h));
        push("mlp.down_proj.weight", vec![h, i], lin(&mut rng, h, i));
    }
    t.push(("norm.weight".into(), vec![h], rng.vec(h, 1.0, 0.3)));
    t
}

/// `config.json` of a small Qwen, with the fields candle's configs need too; `extra` is spliced
/// in (attention rule fields).
pub fn qwen_config(shape: &QwenShape, qwen3: bool, extra: &str) -> String {
    let kind = if qwen3 { "qwen3" } else { "qwen2" };
    format!(
        r#"{{"model_type":"{kind}","vocab_size":{VOCAB},"hidden_size":{},"intermediate_size":{},
        "num_hidden_layers":{},"num_attention_heads":{},"num_key_value_heads":{},"head_dim":{},
        "max_position_embeddings":4096,"rms_norm_eps":1e-6,"rope_theta":1000000.0,"hidden_act":"silu",
        "attention_bias":{},"sliding_window":4096,"max_window_layers":2,"tie_word_embeddings":false,
        "use_sliding_window":false,"eos_token_id":{QWEN_TEST_EOS}{extra}}}"#,
        shape.hidden,
        shape.inner,
        shape.layers,
        shape.heads,
        shape.kv_heads,
        shape.head_dim,
        !qwen3
    )
}

/// A Qwen snapshot: last-token pooling, no Normalize module, MiniLM's tokenizer; `extra`
/// config fields decide the attention (`auto_map` to the gte remote code, `is_causal`).
pub fn write_qwen_dir(dir: &Path, shape: &QwenShape, qwen3: bool, seed: u64, extra: &str) {
    let pooling = format!(
        r#"{{"word_embedding_dimension":{},"pooling_mode_lasttoken":true}}"#,
        shape.hidden
    );
    write_snapshot_files(dir, &qwen_config(shape, qwen3, extra), &pooling);
    write_safetensors(
        &dir.join("model.safetensors"),
        &qwen_weights(shape, qwen3, seed),
        Dtype::F32,
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
