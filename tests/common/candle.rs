//! candle-transformers' BERT and NomicBert: the independent reference every backend is held to.
use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{bert, nomic_bert};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

/// Token ids and mask, padded to the longest text, as candle tensors.
fn encode(dir: &std::path::Path, texts: &[String], max_len: usize) -> (Tensor, Tensor) {
    let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).expect("tokenizer");
    tokenizer.with_padding(Some(PaddingParams::default()));
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: max_len,
            ..Default::default()
        }))
        .expect("truncation");
    let encodings = tokenizer
        .encode_batch(texts.to_vec(), true)
        .expect("encode");
    let rows = |f: &dyn Fn(&tokenizers::Encoding) -> Vec<u32>| {
        let data: Vec<Vec<u32>> = encodings.iter().map(f).collect();
        Tensor::new(data, &Device::Cpu).expect("tensor")
    };
    (
        rows(&|e| e.get_ids().to_vec()),
        rows(&|e| e.get_attention_mask().to_vec()),
    )
}

fn to_rows(t: &Tensor) -> Vec<Vec<f32>> {
    t.to_vec2::<f32>().expect("rows")
}

pub fn candle_nomic(dir: &std::path::Path, texts: &[String], cls: bool) -> Vec<Vec<f32>> {
    let config: nomic_bert::Config =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &Device::Cpu).unwrap();
    let model = nomic_bert::NomicBertModel::load(vb, &config).unwrap();
    let (ids, mask) = encode(dir, texts, 2048);
    let hidden = model.forward(&ids, None, Some(&mask)).unwrap();
    let pooled = if cls {
        hidden.i((.., 0, ..)).unwrap()
    } else {
        nomic_bert::mean_pooling(&hidden, &mask).unwrap()
    };
    to_rows(&nomic_bert::l2_normalize(&pooled).unwrap())
}

pub fn candle_minilm(dir: &std::path::Path, texts: &[String]) -> Vec<Vec<f32>> {
    let config: bert::Config =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let vb = VarBuilder::from_buffered_safetensors(
        std::fs::read(dir.join("model.safetensors")).unwrap(),
        DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    let model = bert::BertModel::load(vb, &config).unwrap();
    let (ids, mask) = encode(dir, texts, 256);
    let hidden = model
        .forward(&ids, &ids.zeros_like().unwrap(), Some(&mask))
        .unwrap();
    let pooled = nomic_bert::mean_pooling(&hidden, &mask).unwrap();
    to_rows(&nomic_bert::l2_normalize(&pooled).unwrap())
}

/// The last real token's state of each row, L2-normalised.
fn last_tokens(hidden: &Tensor, mask: &Tensor) -> Vec<Vec<f32>> {
    let lengths: Vec<u32> = mask.sum(1).unwrap().to_vec1().unwrap();
    let rows: Vec<Tensor> = lengths
        .iter()
        .enumerate()
        .map(|(b, &len)| hidden.i((b, len as usize - 1, ..)).unwrap())
        .collect();
    to_rows(&nomic_bert::l2_normalize(&Tensor::stack(&rows, 0).unwrap()).unwrap())
}

/// Our unprefixed (Qodo-layout) weights under the `model.` prefix candle's Qwen models read.
fn prefixed_weights(dir: &std::path::Path) -> VarBuilder<'static> {
    let tensors =
        candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    let renamed = tensors
        .into_iter()
        .map(|(k, v)| (format!("model.{k}"), v))
        .collect();
    VarBuilder::from_tensors(renamed, DType::F32, &Device::Cpu)
}

/// candle's Qwen2, bidirectional: given a padding mask it attends both ways.
pub fn candle_qwen2(dir: &std::path::Path, texts: &[String]) -> Vec<Vec<f32>> {
    use candle_transformers::models::qwen2;
    let config: qwen2::Config =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let mut model = qwen2::Model::new(&config, prefixed_weights(dir)).unwrap();
    let (ids, mask) = encode(dir, texts, 4096);
    let hidden = model.forward(&ids, 0, Some(&mask)).unwrap();
    last_tokens(&hidden, &mask)
}

/// candle's Qwen3, causal: with padding on the right, a real token never sees a padded one.
pub fn candle_qwen3(dir: &std::path::Path, texts: &[String]) -> Vec<Vec<f32>> {
    use candle_transformers::models::qwen3;
    let config: qwen3::Config =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let mut model = qwen3::Model::new(&config, prefixed_weights(dir)).unwrap();
    let (ids, mask) = encode(dir, texts, 4096);
    let hidden = model.forward(&ids, 0).unwrap();
    last_tokens(&hidden, &mask)
}
