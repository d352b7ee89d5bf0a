//! Counters of one model's work, updated by every call without a lock on the hot path.
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default)]
pub struct Stats {
    calls: AtomicU64,
    /// Calls that came into the engine, whatever their end (`calls` counts those tokenized).
    calls_made: AtomicU64,
    texts: AtomicU64,
    tokens: AtomicU64,
    truncated_texts: AtomicU64,
    padded_tokens: AtomicU64,
    forward_passes: AtomicU64,
    oom_retries: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    running: AtomicU64,
    peak_running: AtomicU64,
    tokenize_nanos: AtomicU64,
    backend_nanos: AtomicU64,
    errors: AtomicU64,
    /// The last call that ran failed in the backend (`health().status` `'failed'`).
    failing: AtomicBool,
    cpu_fallbacks: AtomicU64,
    last_error: Mutex<Option<String>>,
    latencies: Mutex<VecDeque<f64>>,
}

/// How many calls' times `health()` keeps for its percentiles.
pub const LATENCIES: usize = 1000;

/// What one model has done since it was loaded: `stats()` in JavaScript.
#[napi_derive::napi(object, js_name = "ModelStats")]
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsSnapshot {
    /// `embed`/`embedSync` calls, failed ones included.
    pub calls: i64,
    pub texts: i64,
    /// Tokens the tokenizer produced (special tokens and prompts included, after truncation).
    pub tokens: i64,
    /// Texts cut at `maxLength` (their tokens past it not embedded).
    pub truncated_texts: i64,
    /// Rows × padded length over every forward pass: what the backend computed.
    pub padded_tokens: i64,
    pub forward_passes: i64,
    /// Micro-batches that ran out of memory and were split in two.
    pub oom_retries: i64,
    /// Texts whose vector the vector cache had (not tokenized, not run).
    pub cache_hits: i64,
    /// Texts the vector cache was asked for and did not have (embedded, then kept).
    pub cache_misses: i64,
    /// The vector cache file's bytes in use (0 when it is off).
    pub cache_bytes: f64,
    /// The most calls that ran in the engine at once (what `maxConcurrentCalls` bounds).
    pub peak_running_calls: i64,
    /// Seconds calls waited for `maxConcurrentCalls` (counted by the TypeScript layer, which
    /// queues them).
    pub queue_seconds: f64,
    pub tokenize_seconds: f64,
    /// Summed over forward passes: with lanes (`info().lanes`) it can exceed the calls' time.
    pub backend_seconds: f64,
    /// Calls that failed on the GPU and finished on the CPU (`cpuFallback`); once it happened the
    /// model runs on the CPU.
    pub cpu_fallbacks: i64,
    /// The message of the last failed call.
    pub last_error: Option<String>,
}

impl Stats {
    pub fn call(&self, texts: usize, tokens: usize, tokenizing: Duration) {
        self.calls.fetch_add(1, Relaxed);
        self.texts.fetch_add(texts as u64, Relaxed);
        self.tokens.fetch_add(tokens as u64, Relaxed);
        self.tokenize_nanos.fetch_add(nanos(tokenizing), Relaxed);
    }

    pub fn forward(&self, padded_tokens: usize, took: Duration) {
        self.forward_passes.fetch_add(1, Relaxed);
        self.padded_tokens.fetch_add(padded_tokens as u64, Relaxed);
        self.backend_nanos.fetch_add(nanos(took), Relaxed);
    }

    pub fn truncated(&self, texts: usize) {
        self.truncated_texts.fetch_add(texts as u64, Relaxed);
    }

    pub fn cache(&self, hits: usize, misses: usize) {
        self.cache_hits.fetch_add(hits as u64, Relaxed);
        self.cache_misses.fetch_add(misses as u64, Relaxed);
    }

    /// Counts a call as running until the guard drops.
    pub fn running(&self) -> Running<'_> {
        self.calls_made.fetch_add(1, Relaxed);
        let now = self.running.fetch_add(1, Relaxed) + 1;
        self.peak_running.fetch_max(now, Relaxed);
        Running(self, now)
    }

    /// Calls running now.
    pub fn running_now(&self) -> u64 {
        self.running.load(Relaxed)
    }

    /// A call that returned: its time joins the last `LATENCIES` calls' times.
    pub fn latency(&self, took: Duration) {
        self.failing.store(false, Relaxed);
        if let Ok(mut times) = self.latencies.lock() {
            if times.len() == LATENCIES {
                times.pop_front();
            }
            times.push_back(took.as_secs_f64());
        }
    }

    /// Seconds per call of the last `LATENCIES` successful calls.
    pub fn latencies(&self) -> Vec<f64> {
        self.latencies
            .lock()
            .map(|t| t.iter().copied().collect())
            .unwrap_or_default()
    }

    pub fn cpu_fallback(&self) {
        self.cpu_fallbacks.fetch_add(1, Relaxed);
    }

    /// (calls, errors, the last call that ran failed in the backend).
    pub fn outcomes(&self) -> (i64, i64, bool) {
        let count = |n: &AtomicU64| i64::try_from(n.load(Relaxed)).unwrap_or(i64::MAX);
        (
            count(&self.calls_made),
            count(&self.errors),
            self.failing.load(Relaxed),
        )
    }

    pub fn oom_retry(&self) {
        self.oom_retries.fetch_add(1, Relaxed);
    }

    /// A call that failed: `run_failure` when the backend could not run it.
    pub fn failed(&self, message: String, run_failure: bool) {
        if run_failure {
            self.failing.store(true, Relaxed);
        }
        self.errors.fetch_add(1, Relaxed);
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(message);
        }
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let count = |n: &AtomicU64| i64::try_from(n.load(Relaxed)).unwrap_or(i64::MAX);
        StatsSnapshot {
            calls: count(&self.calls),
            texts: count(&self.texts),
            tokens: count(&self.tokens),
            truncated_texts: count(&self.truncated_texts),
            padded_tokens: count(&self.padded_tokens),
            forward_passes: count(&self.forward_passes),
            oom_retries: count(&self.oom_retries),
            cache_hits: count(&self.cache_hits),
            cache_misses: count(&self.cache_misses),
            cache_bytes: 0.0,
            peak_running_calls: count(&self.peak_running),
            cpu_fallbacks: count(&self.cpu_fallbacks),
            queue_seconds: 0.0,
            tokenize_seconds: self.tokenize_nanos.load(Relaxed) as f64 * 1e-9,
            backend_seconds: self.backend_nanos.load(Relaxed) as f64 * 1e-9,
            last_error: self.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }
}

/// A call in the engine, and how many ran with it when it came in; dropping it ends the call.
pub struct Running<'a>(&'a Stats, u64);

impl Running<'_> {
    /// Calls in the engine when this one came in, itself included.
    pub fn at_once(&self) -> u64 {
        self.1
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Relaxed);
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
