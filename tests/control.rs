//! A model in a service: the CPU fallback when the GPU fails (with a fake GPU backend), what
//! `health()` says after failures and fallbacks, and the events each of them logs.
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use log::Level;
use semantic_search_native::backend::Backend;
use semantic_search_native::batching::Batch;
use semantic_search_native::engine::{Engine, Options};
use semantic_search_native::error::{Error, Result};
use semantic_search_native::events::{self, Event, FieldValue, Sink};
use semantic_search_native::task::EmbedOptions;

/// A GPU whose forward pass fails with `error`, counting its passes.
struct FailingGpu {
    error: fn() -> Error,
    passes: Arc<AtomicUsize>,
}

impl Backend for FailingGpu {
    fn forward(&self, _: &Batch, _: &mut [f32]) -> Result<()> {
        self.passes.fetch_add(1, Ordering::SeqCst);
        Err((self.error)())
    }
    fn kind(&self) -> &'static str {
        "cuda"
    }
    fn device(&self) -> String {
        "cuda:0".into()
    }
}

fn provider_error() -> Error {
    Error::Ort("CUDA failure 700: an illegal memory access was encountered".into())
}

/// An engine over the MiniLM snapshot whose backend is a failing GPU, and its pass counter.
fn failing(error: fn() -> Error, fallback: bool) -> (Engine, Arc<AtomicUsize>) {
    let passes = Arc::new(AtomicUsize::new(0));
    let backend = FailingGpu {
        error,
        passes: passes.clone(),
    };
    let options = Options {
        cpu_fallback: Some(fallback),
        ..Options::default()
    };
    let engine = Engine::with_backend(&minilm_dir(), Box::new(backend), &options).expect("engine");
    (engine, passes)
}

/// The events `f` logs on this thread (and the threads it starts).
fn capture<T>(f: impl FnOnce() -> T) -> (T, Vec<Event>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    let sink: Sink = Arc::new(move |e| kept.lock().expect("events").push(e));
    let out = events::scoped(Some(&sink), f);
    let events = seen.lock().expect("events").clone();
    (out, events)
}

fn named<'a>(events: &'a [Event], name: &str) -> Vec<&'a Event> {
    events.iter().filter(|e| e.name == name).collect()
}

fn field<'a>(event: &'a Event, key: &str) -> &'a FieldValue {
    &event.fields.iter().find(|(k, _)| k == key).expect(key).1
}

#[test]
fn a_failing_gpu_with_cpu_fallback_finishes_the_call_on_the_cpu_and_stays_there() {
    let (engine, passes) = failing(provider_error, true);
    let texts = texts();
    let (vectors, events) = capture(|| engine.embed(&texts, false));
    let vectors = vectors.expect("the call finishes on the CPU");
    let cpu = Engine::load(&minilm_dir(), &options_cpu()).expect("cpu model");
    assert_eq!(vectors, cpu.embed(&texts, false).expect("cpu"));
    let fallbacks = named(&events, "cpu_fallback");
    assert_eq!(fallbacks.len(), 1, "{events:?}");
    assert_eq!(fallbacks[0].level, Level::Warn);
    assert_eq!(
        field(fallbacks[0], "from"),
        &FieldValue::Text("cuda:0".into())
    );
    assert!(
        matches!(field(fallbacks[0], "reason"), FieldValue::Text(r) if r.contains("illegal memory access"))
    );
    let tried = passes.load(Ordering::SeqCst);
    assert_eq!(tried, 1, "the first failure moves the call");
    // later calls run on the CPU: the GPU is not tried again
    let (_, later) = capture(|| engine.embed(&texts, true).expect("a later call"));
    assert_eq!(passes.load(Ordering::SeqCst), tried);
    assert!(named(&later, "cpu_fallback").is_empty());
    assert_eq!(engine.stats().cpu_fallbacks, 1);
    let info = engine.info();
    assert_eq!(
        (info.backend.as_str(), info.device.as_str()),
        ("cpu", "cpu")
    );
    assert!(info
        .cpu_fallback_reason
        .expect("reason")
        .contains("cuda:0 failed"));
    assert!(!engine.is_gpu(), "isGpu tells the truth after a fallback");
    let health = engine.health();
    assert_eq!(
        (health.status.as_str(), health.backend.as_str()),
        ("degraded", "cpu")
    );
    assert_eq!((health.calls, health.errors), (2, 0));
}

#[test]
fn without_cpu_fallback_the_call_rejects_and_health_says_failed() {
    let (engine, passes) = failing(provider_error, false);
    let (result, events) = capture(|| engine.embed(&texts(), false));
    assert!(matches!(result, Err(Error::Ort(_))), "{result:?}");
    assert!(named(&events, "cpu_fallback").is_empty());
    assert!(passes.load(Ordering::SeqCst) >= 1);
    let health = engine.health();
    assert_eq!(
        (health.status.as_str(), health.backend.as_str()),
        ("failed", "cuda")
    );
    assert_eq!((health.calls, health.errors), (1, 1));
    assert!(health
        .last_error
        .expect("last error")
        .contains("illegal memory access"));
    assert_eq!(health.latency.p50, None, "no call returned");
    assert_eq!(engine.stats().cpu_fallbacks, 0);
}

#[test]
fn bad_input_is_not_a_gpu_failure() {
    let (engine, passes) = failing(|| Error::Input("a text the model cannot take".into()), true);
    assert!(matches!(
        engine.embed(&texts(), false),
        Err(Error::Input(_))
    ));
    assert_eq!(
        engine.stats().cpu_fallbacks,
        0,
        "input errors do not move the model"
    );
    assert_eq!(engine.health().status, "ok");
    assert_eq!(engine.info().backend, "cuda");
    assert!(passes.load(Ordering::SeqCst) >= 1);
    // an unknown task fails before any forward pass: counted, and the model stays ok
    let bad = EmbedOptions {
        task: Some("no-such-task".into()),
        ..EmbedOptions::default()
    };
    assert!(engine.embed_with(&texts(), false, &bad).is_err());
    let health = engine.health();
    assert_eq!((health.status.as_str(), health.errors), ("ok", 2));
}

#[test]
fn health_reports_latency_percentiles_and_recovers_after_a_good_call() {
    let engine = Engine::load(&minilm_dir(), &options_cpu()).expect("cpu model");
    for _ in 0..5 {
        engine.embed(&texts()[..3], false).expect("call");
    }
    let health = engine.health();
    assert_eq!((health.status.as_str(), health.calls), ("ok", 5));
    let (p50, p99) = (
        health.latency.p50.expect("p50"),
        health.latency.p99.expect("p99"),
    );
    assert!(p50 > 0.0 && p50 <= p99, "{:?}", health.latency);
    assert!(health.uptime_seconds > 0.0);
}

#[test]
fn each_call_logs_its_texts_tokens_micro_batches_and_time_at_debug() {
    let options = Options {
        batch_tokens: Some(64),
        ..options_cpu()
    };
    let engine = Engine::load(&minilm_dir(), &options).expect("cpu model");
    let texts = texts();
    let (_, events) = capture(|| engine.embed(&texts, false).expect("call"));
    let calls = named(&events, "call");
    assert_eq!(calls.len(), 1, "{events:?}");
    let call = calls[0];
    assert_eq!(call.level, Level::Debug);
    let stats = engine.stats();
    assert_eq!(
        field(call, "texts"),
        &FieldValue::Number(texts.len() as f64)
    );
    assert_eq!(
        field(call, "tokens"),
        &FieldValue::Number(stats.tokens as f64)
    );
    assert_eq!(
        field(call, "micro_batches"),
        &FieldValue::Number(stats.forward_passes as f64)
    );
    assert_eq!(field(call, "outcome"), &FieldValue::Text("ok".into()));
    assert!(stats.forward_passes > 1);
    let line = events::line(call);
    assert!(
        line.starts_with("semantic-search-native debug call kind=embed texts="),
        "{line}"
    );
}

#[test]
fn a_load_logs_its_backend_graph_cache_and_memory_once() {
    let cache = Scratch::new("control-graph-cache");
    let options = Options {
        cache_dir: Some(cache.0.display().to_string()),
        cache: Some(true),
        ..options_cpu()
    };
    let (engine, events) = capture(|| Engine::load(&minilm_dir(), &options).expect("load"));
    for name in ["backend", "init"] {
        assert_eq!(named(&events, name).len(), 1, "{name}: {events:?}");
    }
    let cache_events = named(&events, "graph_cache");
    let results: Vec<_> = cache_events
        .iter()
        .map(|e| field(e, "result").clone())
        .collect();
    assert_eq!(
        results,
        [
            FieldValue::Text("miss".into()),
            FieldValue::Text("write".into())
        ]
    );
    assert_eq!(
        field(named(&events, "backend")[0], "backend"),
        &FieldValue::Text("cpu".into())
    );
    drop(engine);
    let (_, again) = capture(|| Engine::load(&minilm_dir(), &options).expect("load"));
    let results: Vec<_> = named(&again, "graph_cache")
        .iter()
        .map(|e| field(e, "result").clone())
        .collect();
    assert_eq!(results, [FieldValue::Text("hit".into())]);
    // the sink of one thread is not another's
    let (_, elsewhere) = capture(|| std::thread::spawn(|| log::info!("stray")).join());
    assert!(elsewhere.is_empty());
}

#[test]
fn the_log_level_variable_is_checked() {
    assert_eq!(events::parse_level("DEBUG"), Ok(Some(Level::Debug)));
    assert_eq!(events::parse_level("off"), Ok(None));
    assert!(events::parse_level("verbose")
        .unwrap_err()
        .contains("error, warn, info, debug"));
    let settings =
        semantic_search_native::settings::Settings::resolve(&Options::default(), |name| {
            (name == "SEMANTIC_SEARCH_LOG").then(|| "loud".to_string())
        });
    assert!(matches!(settings, Err(Error::Env { var, .. }) if var == "SEMANTIC_SEARCH_LOG"));
}

fn options_cpu() -> Options {
    Options {
        backend: Some(named_choice("cpu")),
        cache: Some(false),
        ..Options::default()
    }
}

fn named_choice(name: &str) -> semantic_search_native::settings::BackendKind {
    common::named(name)
}

/// Runs out of memory on a micro-batch of more than one row; a row's vector is its length.
struct SmallMemory;

impl Backend for SmallMemory {
    fn forward(&self, batch: &Batch, out: &mut [f32]) -> Result<()> {
        if batch.size() > 1 {
            return Err(Error::OutOfMemory("CUDA out of memory (fake)".into()));
        }
        out.fill(0.0);
        out[0] = batch.lengths[0] as f32;
        Ok(())
    }
    fn kind(&self) -> &'static str {
        "cuda"
    }
    fn device(&self) -> String {
        "cuda:0".into()
    }
}

#[test]
fn each_out_of_memory_split_logs_a_warning() {
    let engine = Engine::with_backend(&minilm_dir(), Box::new(SmallMemory), &Options::default())
        .expect("engine");
    let four: Vec<String> = texts()[..4].to_vec();
    let (vectors, events) = capture(|| engine.embed(&four, false));
    assert_eq!(vectors.expect("split down to one row").len(), 4 * 384);
    let splits = named(&events, "oom_split");
    // 4 rows -> 2 + 2 -> 1 + 1 + 1 + 1: three splits, each one warning
    assert_eq!(splits.len() as i64, engine.stats().oom_retries);
    assert_eq!(splits.len(), 3, "{events:?}");
    assert!(splits.iter().all(|e| e.level == Level::Warn));
    assert_eq!(field(splits[0], "rows"), &FieldValue::Number(4.0));
}
