//! Cancellation: a cancelled call stops before its next micro-batch with `Error::Aborted`, runs
//! nothing when cancelled before it starts, and leaves the model as it was.
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use semantic_search_native::backend::Backend;
use semantic_search_native::batching::Batch;
use semantic_search_native::cancel::Cancel;
use semantic_search_native::engine::{Engine, Options};
use semantic_search_native::error::{Error, Result};
use semantic_search_native::task::EmbedOptions;

/// Cancels `cancel` during its `after`-th forward pass; each row's vector is its length.
struct CancelDuring {
    cancel: Cancel,
    after: usize,
    passes: AtomicUsize,
}

impl Backend for CancelDuring {
    fn forward(&self, batch: &Batch, out: &mut [f32]) -> Result<()> {
        if self.passes.fetch_add(1, Ordering::SeqCst) + 1 == self.after {
            self.cancel.cancel();
        }
        for (row, vector) in out.chunks_exact_mut(384).enumerate() {
            vector.fill(0.0);
            vector[0] = batch.lengths[row] as f32;
        }
        Ok(())
    }
    fn kind(&self) -> &'static str {
        "cpu"
    }
    fn device(&self) -> String {
        "fake".into()
    }
}

fn engine(cancel: &Cancel, after: usize) -> Engine {
    let backend = CancelDuring {
        cancel: cancel.clone(),
        after,
        passes: AtomicUsize::new(0),
    };
    // 64 tokens a pass: a call of 200 texts is dozens of micro-batches
    let options = Options {
        batch_tokens: Some(64),
        ..Options::default()
    };
    Engine::with_backend(&minilm_dir(), Box::new(backend), &options).expect("engine")
}

fn texts() -> Vec<String> {
    (0..200)
        .map(|i| format!("fn item_{i}() {{ {} }}", "x ".repeat(i % 13)))
        .collect()
}

#[test]
fn a_cancelled_call_stops_before_its_next_micro_batch_and_the_model_stays_usable() {
    let cancel = Cancel::never();
    let engine = engine(&cancel, 3);
    let none = EmbedOptions::default();
    let result = engine.embed_cancellable(&texts(), false, &none, &cancel);
    assert!(matches!(result, Err(Error::Aborted)), "{result:?}");
    let passes = engine.stats().forward_passes;
    assert_eq!(passes, 3, "no micro-batch after the one that saw the abort");
    assert!(
        engine.stats().last_error.is_none(),
        "an abort is not a failure"
    );
    let after = engine.embed(&texts(), false).expect("a later call");
    let fresh = engine_never()
        .embed(&texts(), false)
        .expect("a fresh model");
    assert_eq!(after, fresh);
    assert!(engine.stats().forward_passes > passes + 10);
}

fn engine_never() -> Engine {
    engine(&Cancel::never(), usize::MAX)
}

#[test]
fn an_already_cancelled_call_runs_nothing() {
    let cancel = Cancel::never();
    cancel.cancel();
    let engine = engine_never();
    let result = engine.embed_cancellable(&texts(), false, &EmbedOptions::default(), &cancel);
    assert!(matches!(result, Err(Error::Aborted)));
    assert_eq!(result.unwrap_err().code(), "ABORT_ERR");
    let stats = engine.stats();
    assert_eq!(
        (stats.forward_passes, stats.tokens),
        (0, 0),
        "no tokenizing, no pass"
    );
}
