//! The graph built from model.safetensors against candle-transformers, an independent
//! implementation: real all-MiniLM-L6-v2 (BERT) and random CodeRankEmbed-shaped NomicBert.
mod common;

use common::candle::{candle_minilm, candle_nomic};
use common::*;

#[test]
fn real_minilm_from_safetensors_matches_candle_bert() {
    let dir = minilm_dir();
    assert_close(
        "MiniLM graph vs candle",
        &ours(&dir, &texts(), false),
        &candle_minilm(&dir, &texts()),
        0.99999,
        1e-4,
    );
}

#[test]
fn random_nomic_bert_matches_candle_nomic_bert() {
    let scratch = Scratch::new("nomic-candle");
    write_nomic_dir(&scratch.0, &SMALL_NOMIC, 7);
    let theirs = candle_nomic(&scratch.0, &texts(), true);
    assert_close(
        "NomicBert graph vs candle",
        &ours(&scratch.0, &texts(), false),
        &theirs,
        0.99999,
        1e-4,
    );
}

#[test]
fn nomic_bert_query_prefix_and_pooling_come_from_the_snapshot_files() {
    let scratch = Scratch::new("nomic-files");
    write_nomic_dir(&scratch.0, &SMALL_NOMIC, 11);
    let query = vec!["parse a csv line".to_string()];
    let prefixed = vec![format!("{QUERY_PREFIX}parse a csv line")];
    let as_query = ours(&scratch.0, &query, true);
    assert_close(
        "query == prefix + text",
        &as_query,
        &ours(&scratch.0, &prefixed, false),
        0.99999,
        1e-5,
    );
    assert!(
        cosine(&as_query[0], &ours(&scratch.0, &query, false)[0]) < 0.9999,
        "the prefix must change the vector"
    );

    // against candle with the prefix written by hand, so the prefix is the one the file names
    assert_close(
        "query vs candle",
        &as_query,
        &candle_nomic(&scratch.0, &prefixed, true),
        0.99999,
        1e-4,
    );

    std::fs::write(
        scratch.0.join("config_sentence_transformers.json"),
        r#"{"prompts":{"query":"search: "}}"#,
    )
    .unwrap();
    assert!(
        cosine(&ours(&scratch.0, &query, true)[0], &as_query[0]) < 0.9999,
        "a new prefix must change the vector"
    );

    let cls = ours(&scratch.0, &texts(), false);
    std::fs::write(
        scratch.0.join("1_Pooling/config.json"),
        r#"{"pooling_mode_cls_token":false,"pooling_mode_mean_tokens":true}"#,
    )
    .unwrap();
    let mean = ours(&scratch.0, &texts(), false);
    assert!(
        cosine(&mean[0], &cls[0]) < 0.99,
        "mean pooling must differ from CLS"
    );
    assert_close(
        "mean pooling vs candle",
        &mean,
        &candle_nomic(&scratch.0, &texts(), false),
        0.99999,
        1e-4,
    );
}

#[test]
fn bert_prefixed_keys_shards_and_half_precision_load_the_same_weights() {
    let scratch = Scratch::new("nomic-layouts");
    write_nomic_dir(&scratch.0, &SMALL_NOMIC, 3);
    let reference = ours(&scratch.0, &texts(), false);
    let tensors = nomic_weights(&SMALL_NOMIC, 3);

    let prefixed: Vec<_> = tensors
        .iter()
        .map(|(n, s, d)| (format!("bert.{n}"), s.clone(), d.clone()))
        .collect();
    write_safetensors(
        &scratch.0.join("model.safetensors"),
        &prefixed,
        safetensors::Dtype::F32,
    );
    assert_close(
        "bert. prefix",
        &ours(&scratch.0, &texts(), false),
        &reference,
        0.999999,
        1e-6,
    );

    std::fs::remove_file(scratch.0.join("model.safetensors")).unwrap();
    let (first, second) = tensors.split_at(tensors.len() / 2);
    write_safetensors(
        &scratch.0.join("model-00001-of-00002.safetensors"),
        first,
        safetensors::Dtype::F32,
    );
    write_safetensors(
        &scratch.0.join("model-00002-of-00002.safetensors"),
        second,
        safetensors::Dtype::F32,
    );
    let map: Vec<String> = tensors
        .iter()
        .enumerate()
        .map(|(i, (n, _, _))| {
            format!(
                "\"{n}\":\"model-0000{}-of-00002.safetensors\"",
                if i < first.len() { 1 } else { 2 }
            )
        })
        .collect();
    std::fs::write(
        scratch.0.join("model.safetensors.index.json"),
        format!("{{\"weight_map\":{{{}}}}}", map.join(",")),
    )
    .unwrap();
    assert_close(
        "two shards",
        &ours(&scratch.0, &texts(), false),
        &reference,
        0.999999,
        1e-6,
    );

    for f in [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
    ] {
        std::fs::remove_file(scratch.0.join(f)).unwrap();
    }
    for dtype in [safetensors::Dtype::F16, safetensors::Dtype::BF16] {
        write_safetensors(&scratch.0.join("model.safetensors"), &tensors, dtype);
        // candle reads the same rounded weights, so the strict tolerance still holds
        let theirs = candle_nomic(&scratch.0, &texts(), true);
        assert_close(
            &format!("{dtype:?} weights vs candle"),
            &ours(&scratch.0, &texts(), false),
            &theirs,
            0.99999,
            1e-4,
        );
    }
}

/// The half-precision graph (CUDA's default) on CodeRankEmbed-shaped weights, run on the CPU.
#[test]
fn nomic_bert_float16_graph_stays_close_to_float32() {
    let scratch = Scratch::new("nomic-fp16");
    write_nomic_dir(&scratch.0, &SMALL_NOMIC, 21);
    let options = semantic_search_native::engine::Options {
        dtype: Some(named("float16")),
        ..Default::default()
    };
    let half = semantic_search_native::engine::Engine::load(&scratch.0, &options).expect("fp16");
    for is_query in [false, true] {
        assert_close(
            "NomicBert float16 vs float32",
            &rows(&half, &texts(), is_query),
            &ours(&scratch.0, &texts(), is_query),
            0.999,
            0.01,
        );
    }
}
