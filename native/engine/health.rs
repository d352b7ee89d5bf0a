//! `health()` of a model: its status, where it runs, its calls and their latency.
use super::Engine;
use crate::health::{latency, Health, Queue};

impl Engine {
    pub fn health(&self) -> Health {
        let (calls, errors, failing) = self.stats.outcomes();
        let status = match (failing, self.cpu.get().is_some()) {
            (true, _) => "failed",
            (false, true) => "degraded",
            (false, false) => "ok",
        };
        let backend = self.backend();
        Health {
            status: status.into(),
            backend: backend.kind().into(),
            device: backend.device(),
            uptime_seconds: self.loaded_at.elapsed().as_secs_f64(),
            calls,
            errors,
            last_error: self.stats.snapshot().last_error,
            latency: latency(self.stats.latencies()),
            queue: Queue {
                running: u32::try_from(self.stats.running_now()).unwrap_or(u32::MAX),
                waiting: 0,
            },
        }
    }
}
