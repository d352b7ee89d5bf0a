//! One random-model generator per architecture: small shapes held in memory for the tests, and
//! real shapes streamed to disk, a tensor at a time, for the bench (`examples/make_random.rs`).
//! Only the weights are random; the snapshot's files are laid out as the real models' are.
#![allow(dead_code)]

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use safetensors::tensor::Dtype;

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
    /// `n` normal values of standard deviation `sd` (Box-Muller).
    pub fn normal(&mut self, n: usize, sd: f32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                let u = (self.next(0.5) + 0.5).max(f32::MIN_POSITIVE);
                let v = self.next(0.5) + 0.5;
                sd * (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
            })
            .collect()
    }
}

/// How a tensor's values are drawn.
#[derive(Clone, Copy, Debug)]
pub enum Init {
    /// `center` ± `scale`, uniform.
    Uniform {
        center: f32,
        scale: f32,
    },
    /// Normal around 0 with this standard deviation.
    Normal(f32),
    Constant(f32),
}

/// How norms, biases and embeddings start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Every value random, norms included, so that a test sees each weight and bias used.
    Random,
    /// As a model is initialised for training: unit norm weights, zero norm biases, standard
    /// normal embeddings (the bench's, whose int8 figures depend on realistic norms).
    Fresh,
}

impl Profile {
    fn norm_weight(self) -> Init {
        match self {
            Profile::Random => Init::Uniform {
                center: 1.0,
                scale: 0.3,
            },
            Profile::Fresh => Init::Constant(1.0),
        }
    }
    fn norm_bias(self) -> Init {
        match self {
            Profile::Random => Init::Uniform {
                center: 0.0,
                scale: 0.3,
            },
            Profile::Fresh => Init::Constant(0.0),
        }
    }
    fn embedding(self) -> Init {
        match self {
            Profile::Random => Init::Uniform {
                center: 0.0,
                scale: 1.0,
            },
            Profile::Fresh => Init::Normal(1.0),
        }
    }
    fn projection_bias(self) -> Init {
        match self {
            Profile::Random => Init::Uniform {
                center: 0.0,
                scale: 0.5,
            },
            Profile::Fresh => Init::Normal(0.02),
        }
    }
}

/// uniform(-a, a) with a = sqrt(3 / fan_in) keeps activations near unit variance
fn projection(fan_in: usize) -> Init {
    Init::Uniform {
        center: 0.0,
        scale: (3.0 / fan_in as f32).sqrt(),
    }
}

/// One tensor to write: its name, shape and how its values are drawn.
#[derive(Clone, Debug)]
pub struct Spec {
    pub name: String,
    pub shape: Vec<usize>,
    pub init: Init,
}

fn spec(name: impl Into<String>, shape: &[usize], init: Init) -> Spec {
    Spec {
        name: name.into(),
        shape: shape.to_vec(),
        init,
    }
}

/// The values of `spec`, drawn from `rng` in order.
pub fn values(rng: &mut Rng, spec: &Spec) -> Vec<f32> {
    let n = spec.shape.iter().product();
    match spec.init {
        Init::Uniform { center, scale } => rng.vec(n, center, scale),
        Init::Normal(sd) => rng.normal(n, sd),
        Init::Constant(c) => vec![c; n],
    }
}

/// Every tensor of `specs` with its values, in memory.
pub fn generate(specs: &[Spec], seed: u64) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut rng = Rng::new(seed);
    specs
        .iter()
        .map(|s| (s.name.clone(), s.shape.clone(), values(&mut rng, s)))
        .collect()
}

/// The NomicBert vocabulary (CodeRankEmbed's, and MiniLM's tokenizer's).
pub const NOMIC_VOCAB: usize = 30528;

pub struct NomicShape {
    pub hidden: usize,
    pub heads: usize,
    pub layers: usize,
    pub inner: usize,
}

/// CodeRankEmbed's shape, smaller.
pub const SMALL_NOMIC: NomicShape = NomicShape {
    hidden: 128,
    heads: 4,
    layers: 3,
    inner: 256,
};

/// nomic-ai/CodeRankEmbed's shape: 547 MB of fp32 weights.
pub const CODERANKEMBED: NomicShape = NomicShape {
    hidden: 768,
    heads: 12,
    layers: 12,
    inner: 3072,
};

pub fn nomic_specs(shape: &NomicShape, profile: Profile) -> Vec<Spec> {
    let (h, i) = (shape.hidden, shape.inner);
    let mut t = vec![
        spec(
            "embeddings.word_embeddings.weight",
            &[NOMIC_VOCAB, h],
            profile.embedding(),
        ),
        spec(
            "embeddings.token_type_embeddings.weight",
            &[2, h],
            profile.embedding(),
        ),
        spec("emb_ln.weight", &[h], profile.norm_weight()),
        spec("emb_ln.bias", &[h], profile.norm_bias()),
    ];
    for l in 0..shape.layers {
        let p = format!("encoder.layers.{l}");
        t.push(spec(
            format!("{p}.attn.Wqkv.weight"),
            &[3 * h, h],
            projection(h),
        ));
        t.push(spec(
            format!("{p}.attn.out_proj.weight"),
            &[h, h],
            projection(h),
        ));
        t.push(spec(format!("{p}.mlp.fc11.weight"), &[i, h], projection(h)));
        t.push(spec(format!("{p}.mlp.fc12.weight"), &[i, h], projection(h)));
        t.push(spec(format!("{p}.mlp.fc2.weight"), &[h, i], projection(i)));
        for n in ["norm1", "norm2"] {
            t.push(spec(format!("{p}.{n}.weight"), &[h], profile.norm_weight()));
            t.push(spec(format!("{p}.{n}.bias"), &[h], profile.norm_bias()));
        }
    }
    t
}

pub fn nomic_config(shape: &NomicShape) -> String {
    format!(
        r#"{{"model_type":"nomic_bert","vocab_size":{NOMIC_VOCAB},"n_embd":{},"n_head":{},"n_layer":{},"n_inner":{},
        "n_positions":8192,"max_trained_positions":2048,"type_vocab_size":2,"layer_norm_epsilon":1e-12,
        "rotary_emb_fraction":1.0,"rotary_emb_base":1000,"rotary_emb_interleaved":false,"qkv_proj_bias":false,
        "mlp_fc1_bias":false,"mlp_fc2_bias":false,"activation_function":"swiglu","prenorm":false}}"#,
        shape.hidden, shape.heads, shape.layers, shape.inner
    )
}

/// A NomicBert snapshot laid out as CodeRankEmbed's: config, tokenizer, CLS pooling, weights.
pub fn write_nomic_snapshot(
    dir: &Path,
    shape: &NomicShape,
    profile: Profile,
    seed: u64,
    tokenizer: &Path,
) {
    let pooling = format!(
        r#"{{"word_embedding_dimension":{},"pooling_mode_cls_token":true,"pooling_mode_mean_tokens":false}}"#,
        shape.hidden
    );
    write_snapshot_files(dir, &nomic_config(shape), &pooling, tokenizer);
    let specs = nomic_specs(shape, profile);
    write_streamed(
        &dir.join("model.safetensors"),
        &specs,
        Dtype::F32,
        &mut Rng::new(seed),
    );
}

/// Alibaba-NLP/gte-modernbert-base's shape: 22 layers of 768, a GeGLU of 1152, 50368 tokens.
pub struct ModernBertShape {
    pub hidden: usize,
    pub heads: usize,
    pub layers: usize,
    pub inner: usize,
    pub vocab: usize,
}

pub const GTE_MODERNBERT: ModernBertShape = ModernBertShape {
    hidden: 768,
    heads: 12,
    layers: 22,
    inner: 1152,
    vocab: 50368,
};

/// ModernBERT's tensors (no biases: `norm_bias`, `attention_bias`, `mlp_bias` false), unprefixed
/// as `ModernBertModel` saves them; the first layer has no attention norm.
pub fn modernbert_specs(shape: &ModernBertShape, profile: Profile) -> Vec<Spec> {
    let (h, i) = (shape.hidden, shape.inner);
    let mut t = vec![
        spec(
            "embeddings.tok_embeddings.weight",
            &[shape.vocab, h],
            profile.embedding(),
        ),
        spec("embeddings.norm.weight", &[h], profile.norm_weight()),
    ];
    for l in 0..shape.layers {
        let p = format!("layers.{l}");
        if l > 0 {
            t.push(spec(
                format!("{p}.attn_norm.weight"),
                &[h],
                profile.norm_weight(),
            ));
        }
        t.push(spec(
            format!("{p}.attn.Wqkv.weight"),
            &[3 * h, h],
            projection(h),
        ));
        t.push(spec(format!("{p}.attn.Wo.weight"), &[h, h], projection(h)));
        t.push(spec(
            format!("{p}.mlp_norm.weight"),
            &[h],
            profile.norm_weight(),
        ));
        t.push(spec(
            format!("{p}.mlp.Wi.weight"),
            &[2 * i, h],
            projection(h),
        ));
        t.push(spec(format!("{p}.mlp.Wo.weight"), &[h, i], projection(i)));
    }
    t.push(spec("final_norm.weight", &[h], profile.norm_weight()));
    t
}

/// A ModernBERT snapshot laid out as gte-modernbert-base's: 8192 positions, a window of 128,
/// every third layer global, CLS pooling.
pub fn write_modernbert_snapshot(
    dir: &Path,
    shape: &ModernBertShape,
    profile: Profile,
    seed: u64,
    tokenizer: &Path,
) {
    let config = format!(
        r#"{{"model_type":"modernbert","architectures":["ModernBertModel"],"vocab_size":{},"hidden_size":{},
        "num_attention_heads":{},"num_hidden_layers":{},"intermediate_size":{},"max_position_embeddings":8192,
        "norm_eps":1e-5,"norm_bias":false,"attention_bias":false,"mlp_bias":false,"hidden_activation":"gelu",
        "global_rope_theta":160000.0,"local_rope_theta":10000.0,"local_attention":128,
        "global_attn_every_n_layers":3,"pad_token_id":0,"classifier_pooling":"cls"}}"#,
        shape.vocab, shape.hidden, shape.heads, shape.layers, shape.inner
    );
    let pooling = format!(
        r#"{{"word_embedding_dimension":{},"pooling_mode_cls_token":true,"pooling_mode_mean_tokens":false}}"#,
        shape.hidden
    );
    write_snapshot_files(dir, &config, &pooling, tokenizer);
    let specs = modernbert_specs(shape, profile);
    write_streamed(
        &dir.join("model.safetensors"),
        &specs,
        Dtype::F32,
        &mut Rng::new(seed),
    );
}

pub struct QwenShape {
    pub hidden: usize,
    pub heads: usize,
    pub kv_heads: usize,
    /// Not always hidden / heads (Qwen3).
    pub head_dim: usize,
    pub layers: usize,
    pub inner: usize,
    pub vocab: usize,
}

pub const SMALL_QWEN2: QwenShape = QwenShape {
    hidden: 64,
    heads: 4,
    kv_heads: 2,
    head_dim: 16,
    layers: 2,
    inner: 128,
    vocab: NOMIC_VOCAB,
};

pub const SMALL_QWEN3: QwenShape = QwenShape {
    hidden: 64,
    heads: 4,
    kv_heads: 2,
    head_dim: 32,
    layers: 2,
    inner: 128,
    vocab: NOMIC_VOCAB,
};

/// Qodo/Qodo-Embed-1-1.5B's shape: 6.2 GB of fp32 weights.
pub const QODO: QwenShape = QwenShape {
    hidden: 1536,
    heads: 12,
    kv_heads: 2,
    head_dim: 128,
    layers: 28,
    inner: 8960,
    vocab: 151_646,
};

/// Qwen weights under unprefixed keys (Qodo-Embed-1's layout); `qwen3` adds q/k norms and drops
/// the q/k/v biases.
pub fn qwen_specs(shape: &QwenShape, qwen3: bool, profile: Profile) -> Vec<Spec> {
    let (h, d, i) = (shape.hidden, shape.head_dim, shape.inner);
    let (q, kv) = (shape.heads * d, shape.kv_heads * d);
    let mut t = vec![spec(
        "embed_tokens.weight",
        &[shape.vocab, h],
        profile.embedding(),
    )];
    for l in 0..shape.layers {
        let p = format!("layers.{l}");
        let mut push = |name: &str, dims: &[usize], init: Init| {
            t.push(spec(format!("{p}.{name}"), dims, init))
        };
        push("input_layernorm.weight", &[h], profile.norm_weight());
        push("self_attn.q_proj.weight", &[q, h], projection(h));
        push("self_attn.k_proj.weight", &[kv, h], projection(h));
        push("self_attn.v_proj.weight", &[kv, h], projection(h));
        if qwen3 {
            push("self_attn.q_norm.weight", &[d], profile.norm_weight());
            push("self_attn.k_norm.weight", &[d], profile.norm_weight());
        } else {
            for name in ["q_proj", "k_proj", "v_proj"] {
                let out = if name == "q_proj" { q } else { kv };
                push(
                    &format!("self_attn.{name}.bias"),
                    &[out],
                    profile.projection_bias(),
                );
            }
        }
        push("self_attn.o_proj.weight", &[h, q], projection(q));
        push(
            "post_attention_layernorm.weight",
            &[h],
            profile.norm_weight(),
        );
        push("mlp.gate_proj.weight", &[i, h], projection(h));
        push("mlp.up_proj.weight", &[i, h], projection(h));
        push("mlp.down_proj.weight", &[h, i], projection(i));
    }
    t.push(spec("norm.weight", &[h], profile.norm_weight()));
    t
}

/// `config.json` of a Qwen, with the fields candle's configs need too; `extra` is spliced in
/// (the attention rule's fields, `auto_map`).
pub fn qwen_config(
    shape: &QwenShape,
    qwen3: bool,
    eos: u32,
    positions: usize,
    extra: &str,
) -> String {
    let kind = if qwen3 { "qwen3" } else { "qwen2" };
    format!(
        r#"{{"model_type":"{kind}","vocab_size":{},"hidden_size":{},"intermediate_size":{},
        "num_hidden_layers":{},"num_attention_heads":{},"num_key_value_heads":{},"head_dim":{},
        "max_position_embeddings":{positions},"rms_norm_eps":1e-6,"rope_theta":1000000.0,"hidden_act":"silu",
        "attention_bias":{},"sliding_window":4096,"max_window_layers":2,"tie_word_embeddings":false,
        "use_sliding_window":false,"eos_token_id":{eos}{extra}}}"#,
        shape.vocab,
        shape.hidden,
        shape.inner,
        shape.layers,
        shape.heads,
        shape.kv_heads,
        shape.head_dim,
        !qwen3
    )
}

/// How a Qwen snapshot is laid out besides its shape.
pub struct QwenLayout<'a> {
    pub qwen3: bool,
    pub profile: Profile,
    pub eos: u32,
    pub positions: usize,
    /// Config fields spliced in (attention rule, `auto_map`).
    pub extra: &'a str,
    /// Two shards with an index, split as Qodo-Embed-1's (the first about 80 % of the bytes).
    pub sharded: bool,
    /// F32 or BF16.
    pub dtype: Dtype,
    pub max_seq_length: Option<usize>,
}

/// A Qwen snapshot: last-token pooling, no Normalize module; config fields decide the attention.
pub fn write_qwen_snapshot(
    dir: &Path,
    shape: &QwenShape,
    layout: &QwenLayout,
    seed: u64,
    tokenizer: &Path,
) {
    let pooling = format!(
        r#"{{"word_embedding_dimension":{},"pooling_mode_lasttoken":true}}"#,
        shape.hidden
    );
    let config = qwen_config(
        shape,
        layout.qwen3,
        layout.eos,
        layout.positions,
        layout.extra,
    );
    write_snapshot_files(dir, &config, &pooling, tokenizer);
    if let Some(n) = layout.max_seq_length {
        std::fs::write(
            dir.join("sentence_bert_config.json"),
            format!(r#"{{"max_seq_length":{n},"do_lower_case":false}}"#),
        )
        .expect("sentence-bert config");
    }
    let specs = qwen_specs(shape, layout.qwen3, layout.profile);
    let mut rng = Rng::new(seed);
    if !layout.sharded {
        write_streamed(
            &dir.join("model.safetensors"),
            &specs,
            layout.dtype,
            &mut rng,
        );
        return;
    }
    let width = if layout.dtype == Dtype::BF16 { 2 } else { 4 };
    let bytes = |s: &Spec| width * s.shape.iter().product::<usize>();
    let total: usize = specs.iter().map(bytes).sum();
    let (mut first, mut size) = (0, 0);
    while first < specs.len() && size <= total * 4 / 5 {
        size += bytes(&specs[first]);
        first += 1;
    }
    let files = [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ];
    let mut weight_map = serde_json::Map::new();
    for (file, part) in files.iter().zip([&specs[..first], &specs[first..]]) {
        write_streamed(&dir.join(file), part, layout.dtype, &mut rng);
        for s in part {
            weight_map.insert(s.name.clone(), (*file).into());
        }
    }
    let index =
        serde_json::json!({ "metadata": { "total_size": total }, "weight_map": weight_map });
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).expect("index");
}

/// A BERT's shape (the cross-encoder's).
pub struct BertShape {
    pub hidden: usize,
    pub heads: usize,
    pub layers: usize,
    pub inner: usize,
    pub vocab: usize,
}

/// cross-encoder/ms-marco-MiniLM-L6-v2's shape: 6 x 384, 12 heads, MiniLM's vocabulary.
pub const MS_MARCO_MINILM: BertShape = BertShape {
    hidden: 384,
    heads: 12,
    layers: 6,
    inner: 1536,
    vocab: 30522,
};

/// `BertForSequenceClassification` weights with one label: `bert.`-prefixed encoder and pooler,
/// then `classifier`.
pub fn cross_encoder_specs(shape: &BertShape, profile: Profile) -> Vec<Spec> {
    let (h, i) = (shape.hidden, shape.inner);
    let mut t = Vec::new();
    let linear = |t: &mut Vec<Spec>, name: String, out: usize, input: usize| {
        t.push(spec(
            format!("{name}.weight"),
            &[out, input],
            projection(input),
        ));
        t.push(spec(
            format!("{name}.bias"),
            &[out],
            profile.projection_bias(),
        ));
    };
    let norm = |t: &mut Vec<Spec>, name: String| {
        t.push(spec(format!("{name}.weight"), &[h], profile.norm_weight()));
        t.push(spec(format!("{name}.bias"), &[h], profile.norm_bias()));
    };
    for (table, rows) in [("word", shape.vocab), ("position", 512), ("token_type", 2)] {
        let name = format!("bert.embeddings.{table}_embeddings.weight");
        t.push(spec(name, &[rows, h], profile.embedding()));
    }
    norm(&mut t, "bert.embeddings.LayerNorm".into());
    for l in 0..shape.layers {
        let p = format!("bert.encoder.layer.{l}");
        for part in ["query", "key", "value"] {
            linear(&mut t, format!("{p}.attention.self.{part}"), h, h);
        }
        linear(&mut t, format!("{p}.attention.output.dense"), h, h);
        norm(&mut t, format!("{p}.attention.output.LayerNorm"));
        linear(&mut t, format!("{p}.intermediate.dense"), i, h);
        linear(&mut t, format!("{p}.output.dense"), h, i);
        norm(&mut t, format!("{p}.output.LayerNorm"));
    }
    linear(&mut t, "bert.pooler.dense".into(), h, h);
    linear(&mut t, "classifier".into(), 1, h);
    t
}

/// A cross-encoder snapshot laid out as cross-encoder/ms-marco-MiniLM-L6-v2's.
pub fn write_cross_encoder_snapshot(
    dir: &Path,
    shape: &BertShape,
    profile: Profile,
    seed: u64,
    tokenizer: &Path,
) {
    let config = format!(
        r#"{{"model_type":"bert","architectures":["BertForSequenceClassification"],"vocab_size":{},
        "hidden_size":{},"num_attention_heads":{},"num_hidden_layers":{},"intermediate_size":{},
        "max_position_embeddings":512,"type_vocab_size":2,"layer_norm_eps":1e-12,"hidden_act":"gelu",
        "pad_token_id":0,"id2label":{{"0":"LABEL_0"}},"label2id":{{"LABEL_0":0}}}}"#,
        shape.vocab, shape.hidden, shape.heads, shape.layers, shape.inner
    );
    std::fs::create_dir_all(dir).expect("snapshot dir");
    std::fs::write(dir.join("config.json"), config).expect("config");
    std::fs::copy(tokenizer, dir.join("tokenizer.json")).expect("tokenizer");
    let specs = cross_encoder_specs(shape, profile);
    write_streamed(
        &dir.join("model.safetensors"),
        &specs,
        Dtype::F32,
        &mut Rng::new(seed),
    );
}

/// `config.json`, the tokenizer and `1_Pooling/config.json`: what every snapshot has.
fn write_snapshot_files(dir: &Path, config: &str, pooling: &str, tokenizer: &Path) {
    std::fs::create_dir_all(dir.join("1_Pooling")).expect("snapshot dir");
    std::fs::write(dir.join("config.json"), config).expect("config");
    std::fs::copy(tokenizer, dir.join("tokenizer.json")).expect("tokenizer");
    std::fs::write(dir.join("1_Pooling/config.json"), pooling).expect("pooling");
}

/// Writes the tensors of `specs` as one safetensors file in `dtype` (F32, F16 or BF16), drawing
/// each one's values from `rng` only when it is written: a model of gigabytes needs little memory.
pub fn write_streamed(path: &Path, specs: &[Spec], dtype: Dtype, rng: &mut Rng) {
    let mut values_of = |s: &Spec| values(rng, s);
    write_with(path, specs, dtype, &mut values_of);
}

/// Writes `tensors` as one safetensors file, in `dtype` (F32, F16 or BF16).
pub fn write_safetensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)], dtype: Dtype) {
    let specs: Vec<Spec> = tensors
        .iter()
        .map(|(name, shape, _)| spec(name.clone(), shape, Init::Constant(0.0)))
        .collect();
    let mut next = tensors.iter().map(|(_, _, data)| data.clone());
    let mut values_of = |_: &Spec| next.next().expect("a tensor per spec");
    write_with(path, &specs, dtype, &mut values_of);
}

fn write_with(
    path: &Path,
    specs: &[Spec],
    dtype: Dtype,
    values_of: &mut dyn FnMut(&Spec) -> Vec<f32>,
) {
    let (name, width) = match dtype {
        Dtype::F32 => ("F32", 4),
        Dtype::F16 => ("F16", 2),
        Dtype::BF16 => ("BF16", 2),
        other => panic!("no encoder for {other:?}"),
    };
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for s in specs {
        let size = width * s.shape.iter().product::<usize>();
        header.insert(
            s.name.clone(),
            serde_json::json!({ "dtype": name, "shape": s.shape, "data_offsets": [offset, offset + size] }),
        );
        offset += size;
    }
    let mut text = serde_json::Value::Object(header).to_string().into_bytes();
    text.resize(text.len().div_ceil(8) * 8, b' ');
    let mut out = BufWriter::new(File::create(path).expect("create safetensors"));
    out.write_all(&(text.len() as u64).to_le_bytes())
        .expect("write");
    out.write_all(&text).expect("write");
    for s in specs {
        out.write_all(&encode(&values_of(s), dtype)).expect("write");
    }
    out.flush().expect("flush");
}

fn encode(data: &[f32], dtype: Dtype) -> Vec<u8> {
    match dtype {
        Dtype::BF16 => data
            .iter()
            .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
            .collect(),
        Dtype::F16 => data
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
            .collect(),
        _ => data.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}
