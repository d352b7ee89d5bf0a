//! The vector cache: vectors from it are the bits a call without it computes; only texts it
//! has not seen, with this model and these settings, are embedded; a damaged, foreign or
//! unwritable file never fails a call or returns a wrong vector.
mod common;

use std::path::{Path, PathBuf};

use common::*;
use napi::bindgen_prelude::Either;
use semantic_search_native::engine::{Engine, Options};
use semantic_search_native::task::EmbedOptions;

fn corpus(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "fn symbol_{i}(x: u32) -> u32 {{ x * {} + {} }}",
                i % 97,
                i / 7
            )
        })
        .collect()
}

fn cached(file: &Path, options: Options) -> Options {
    Options {
        backend: Some(named("cpu")),
        vector_cache: Some(Either::B(file.display().to_string())),
        cache: Some(false),
        ..options
    }
}

fn plain(options: Options) -> Options {
    Options {
        backend: Some(named("cpu")),
        cache: Some(false),
        ..options
    }
}

fn nomic(scratch: &str) -> Scratch {
    let dir = Scratch::new(scratch);
    write_nomic_dir(&dir.0, &SMALL_NOMIC, 7);
    dir
}

fn embed(engine: &Engine, texts: &[String], is_query: bool) -> Vec<f32> {
    engine.embed(texts, is_query).expect("embeds")
}

fn hits_misses(engine: &Engine) -> (i64, i64) {
    let s = engine.stats();
    (s.cache_hits, s.cache_misses)
}

fn same_bits(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert!(
        bits(a) == bits(b),
        "{what}: vectors differ from the uncached ones"
    );
}

#[test]
fn vectors_are_bit_identical_with_and_without_the_cache_for_every_dtype() {
    let model = nomic("vc-dtypes");
    let store = Scratch::new("vc-dtypes-file");
    let texts = corpus(40);
    let (old, new) = texts.split_at(25);
    for dtype in ["float32", "int8", "float16"] {
        let options = || Options {
            dtype: Some(named(dtype)),
            ..Options::default()
        };
        let file = store.0.join(format!("{dtype}.sqlite"));
        let without = load_with(&model.0, plain(options()));
        let expected = embed(&without, &texts, false);
        let first = load_with(&model.0, cached(&file, options()));
        same_bits(
            &embed(&first, old, false),
            &expected[..25 * first.dim()],
            dtype,
        );
        assert_eq!(
            hits_misses(&first),
            (0, 25),
            "{dtype}: the first call computes"
        );
        // a new process: 25 found, 15 computed, in one call
        let second = load_with(&model.0, cached(&file, options()));
        same_bits(&embed(&second, &texts, false), &expected, dtype);
        assert_eq!(hits_misses(&second), (25, 15), "{dtype}");
        same_bits(
            &embed(&second, new, false),
            &expected[25 * second.dim()..],
            dtype,
        );
        assert_eq!(hits_misses(&second), (40, 15), "{dtype}: all found");
    }
}

#[test]
fn onnx_weights_and_a_matryoshka_cut_share_the_vectors_stored_whole() {
    let store = Scratch::new("vc-onnx");
    let file = store.0.join("v.sqlite");
    let texts = corpus(12);
    let options = |dimensions| Options {
        weights: Some(named("onnx")),
        dimensions,
        ..Options::default()
    };
    let dir = minilm_dir();
    let full = load_with(&dir, cached(&file, options(None)));
    same_bits(
        &embed(&full, &texts, true),
        &embed(&load_with(&dir, plain(options(None))), &texts, true),
        "onnx",
    );
    let cut = load_with(&dir, cached(&file, options(Some(64))));
    let expected = embed(&load_with(&dir, plain(options(Some(64)))), &texts, true);
    same_bits(&embed(&cut, &texts, true), &expected, "dimensions 64");
    assert_eq!(
        hits_misses(&cut),
        (12, 0),
        "cut from the stored whole vectors"
    );
}

#[test]
fn a_second_run_of_3000_texts_with_30_changed_embeds_exactly_30() {
    let model = nomic("vc-3000");
    let store = Scratch::new("vc-3000-file");
    let file = store.0.join("v.sqlite");
    let mut texts = corpus(3000);
    let first = load_with(&model.0, cached(&file, Options::default()));
    embed(&first, &texts, false);
    for i in (0..3000).step_by(100) {
        texts[i].push_str(" // changed");
    }
    let second = load_with(&model.0, cached(&file, Options::default()));
    let vectors = embed(&second, &texts, false);
    assert_eq!(hits_misses(&second), (2970, 30));
    let s = second.stats();
    assert_eq!(s.texts, 3000);
    assert!(s.cache_bytes > 0.0, "{s:?}");
    let changed: Vec<String> = (0..3000).step_by(100).map(|i| texts[i].clone()).collect();
    let alone = embed(
        &load_with(&model.0, plain(Options::default())),
        &changed,
        false,
    );
    let dim = second.dim();
    for (k, i) in (0..3000).step_by(100).enumerate() {
        same_bits(
            &vectors[i * dim..(i + 1) * dim],
            &alone[k * dim..(k + 1) * dim],
            "changed",
        );
    }
}

/// The misses of loading with `options` after the file was filled with the defaults.
fn misses_after_warming(dir: &Path, file: &Path, options: Options, call: EmbedOptions) -> i64 {
    let texts = corpus(8);
    let engine = load_with(dir, cached(file, options));
    engine.embed_with(&texts, false, &call).expect("embeds");
    hits_misses(&engine).1
}

#[test]
fn each_part_of_the_key_changed_alone_is_a_miss() {
    let model = nomic("vc-key");
    let store = Scratch::new("vc-key-file");
    let file = store.0.join("v.sqlite");
    let none = EmbedOptions::default;
    let warm = |options| misses_after_warming(&model.0, &file, options, none());
    warm(Options::default());
    assert_eq!(warm(Options::default()), 0, "unchanged: every text found");
    let dtype = Options {
        dtype: Some(named("int8")),
        ..Options::default()
    };
    assert_eq!(warm(dtype), 8, "dtype");
    let length = Options {
        max_length: Some(64),
        ..Options::default()
    };
    assert_eq!(warm(length), 8, "maxLength");
    let prompt = Options {
        document_prefix: Some("passage: ".into()),
        ..Options::default()
    };
    assert_eq!(warm(prompt), 8, "prompt");
    assert_eq!(warm(Options::default()), 0, "the defaults again: found");

    // the weights rewritten with the same size: a new modification time and new content
    let weights = model.0.join("model.safetensors");
    let mut bytes = std::fs::read(&weights).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&weights, &bytes).unwrap();
    assert_eq!(warm(Options::default()), 8, "weights changed");
    // the same content again, with yet another time: identified by content, found
    bytes[last] ^= 0x01;
    std::fs::write(&weights, &bytes).unwrap();
    assert_eq!(warm(Options::default()), 0, "weights restored");
}

#[test]
fn the_task_is_part_of_the_key() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/task-tiny");
    let store = Scratch::new("vc-task-file");
    let file = store.0.join("v.sqlite");
    let task = |name: &str| EmbedOptions {
        task: Some(name.into()),
        ..EmbedOptions::default()
    };
    let run = |name| misses_after_warming(&dir, &file, Options::default(), task(name));
    assert_eq!(run("separation"), 8);
    assert_eq!(run("separation"), 0, "same task: found");
    // the same empty prompt, another task adapter
    assert_eq!(run("classification"), 8, "task");
}

/// A name, and what it does to a cache file.
type Damage = (&'static str, fn(&Path));

fn sqlite_file_of_another_program(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');")
        .unwrap();
}

#[test]
fn damaged_or_foreign_files_are_moved_aside_and_vectors_stay_right() {
    let model = nomic("vc-damage");
    let store = Scratch::new("vc-damage-file");
    let texts = corpus(30);
    let expected = embed(
        &load_with(&model.0, plain(Options::default())),
        &texts,
        false,
    );
    let damages: [Damage; 4] = [
        ("truncated", |p| {
            let len = std::fs::metadata(p).unwrap().len();
            let file = std::fs::OpenOptions::new().write(true).open(p).unwrap();
            file.set_len(len / 2).unwrap();
        }),
        ("zeroed", |p| {
            let len = std::fs::metadata(p).unwrap().len() as usize;
            std::fs::write(p, vec![0u8; len]).unwrap();
        }),
        ("foreign", |p| {
            std::fs::remove_file(p).unwrap();
            sqlite_file_of_another_program(p);
        }),
        ("another schema", |p| {
            let conn = rusqlite::Connection::open(p).unwrap();
            conn.pragma_update(None, "user_version", 99).unwrap();
        }),
    ];
    for (name, damage) in damages {
        let file = store.0.join(format!("{name}.sqlite"));
        let warm = load_with(&model.0, cached(&file, Options::default()));
        embed(&warm, &texts, false);
        drop(warm);
        checkpoint(&file);
        damage(&file);
        let engine = load_with(&model.0, cached(&file, Options::default()));
        same_bits(&embed(&engine, &texts, false), &expected, name);
        let note = engine.info().vector_cache_note.unwrap_or_default();
        assert!(note.contains("moved aside"), "{name}: {note}");
        assert_eq!(
            hits_misses(&engine),
            (0, 30),
            "{name}: nothing read from it"
        );
        // the new file works
        let again = load_with(&model.0, cached(&file, Options::default()));
        same_bits(&embed(&again, &texts, false), &expected, name);
        assert_eq!(hits_misses(&again), (30, 0), "{name}: the new file is used");
        let aside = aside_files(&store.0, name);
        assert_eq!(aside.len(), 1, "{name}: {aside:?}");
    }
}

/// Folds the WAL into the file, so that damage to the file is damage to the data.
fn checkpoint(file: &Path) {
    let conn = rusqlite::Connection::open(file).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
}

fn aside_files(dir: &Path, name: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(&format!("{name}.sqlite.damaged-"))
        })
        .collect()
}

#[test]
fn an_unwritable_folder_turns_the_cache_off_with_a_note() {
    let model = nomic("vc-unwritable");
    let store = Scratch::new("vc-unwritable-file");
    let blocker = store.0.join("not-a-folder");
    std::fs::write(&blocker, b"a file where the folder would be").unwrap();
    let file = blocker.join("v.sqlite");
    let texts = corpus(5);
    let engine = load_with(&model.0, cached(&file, Options::default()));
    let expected = embed(
        &load_with(&model.0, plain(Options::default())),
        &texts,
        false,
    );
    same_bits(&embed(&engine, &texts, false), &expected, "unwritable");
    let note = engine.info().vector_cache_note.unwrap_or_default();
    assert!(note.starts_with("the vector cache is off"), "{note}");
    assert_eq!(engine.stats().cache_bytes, 0.0);
}

#[test]
fn eviction_keeps_the_file_under_its_limit_and_the_recent_vectors() {
    let model = nomic("vc-evict");
    let store = Scratch::new("vc-evict-file");
    let file = store.0.join("v.sqlite");
    let limit = 256 * 1024;
    let options = || Options {
        vector_cache_max_bytes: Some(Either::A(limit as f64)),
        ..Options::default()
    };
    let engine = load_with(&model.0, cached(&file, options()));
    let texts = corpus(2000);
    for chunk in texts.chunks(200) {
        embed(&engine, chunk, false);
        let bytes = std::fs::metadata(&file).unwrap().len();
        assert!(
            bytes <= limit,
            "the file is {bytes} bytes, over {limit}: {:?} {:?}",
            engine.info().vector_cache_note,
            engine.stats().cache_bytes
        );
        assert!(engine.stats().cache_bytes <= limit as f64);
    }
    // the last call's vectors are the most recently used: still there
    let again = load_with(&model.0, cached(&file, options()));
    embed(&again, &texts[1800..], false);
    assert_eq!(hits_misses(&again), (200, 0));
    embed(&again, &texts[..200], false);
    assert_eq!(
        hits_misses(&again),
        (200, 200),
        "the first ones were evicted"
    );
}
