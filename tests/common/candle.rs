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
