//! What every call of a model goes through: its cancellation, its place among the calls
//! running, its logger, its counts, and what is kept of how it ended (`stats`, `health`).
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::parts::CallState;
use super::Engine;
use crate::cancel::Cancel;
use crate::error::{Error, Result};

impl Engine {
    /// Runs `work` as the call `kind` of `texts` texts, with the model's logger for its events.
    pub(super) fn call<T>(
        &self,
        kind: &'static str,
        texts: usize,
        cancel: &Cancel,
        work: impl FnOnce(&CallState) -> Result<T>,
    ) -> Result<T> {
        crate::events::scoped(self.logger.as_ref(), || {
            cancel.check()?;
            let started = Instant::now();
            let state = CallState::new(cancel);
            let running = self.stats.running();
            let result = work(&state);
            let at_once = running.at_once();
            drop(running);
            self.finished(kind, texts, &state, &result, (started.elapsed(), at_once));
            result
        })
    }

    /// Keeps how the call ended (an abort is not a failure) and logs it at debug.
    fn finished<T>(
        &self,
        kind: &'static str,
        texts: usize,
        state: &CallState,
        result: &Result<T>,
        (took, running): (Duration, u64),
    ) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(Error::Aborted) => "aborted",
            Err(_) => "failed",
        };
        match result {
            Ok(_) => self.stats.latency(took),
            Err(Error::Aborted) => {}
            Err(e) => self.stats.failed(
                e.to_string(),
                e.is_run_failure() || matches!(e, Error::Internal(_)),
            ),
        }
        log::debug!(
            kind,
            texts,
            tokens = state.tokens.load(Relaxed),
            micro_batches = state.batches.load(Relaxed),
            seconds = took.as_secs_f64(),
            running,
            outcome;
            "call"
        );
    }
}
