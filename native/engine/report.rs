//! What a model logs once it is loaded: where it runs and why, what the graph cache and the
//! vector cache did, and what the load took in time and memory.
use std::time::Instant;

use super::Engine;
use crate::choices::Choice;
use crate::info::CacheState;

impl Engine {
    pub(super) fn report_loaded(&self, started: Instant, resident_before: Option<u64>) {
        let info = &self.info;
        log::info!(
            backend = info.backend.as_str(),
            device = info.device.as_str(),
            dtype = info.dtype.map_or("onnx", |d| d.name()),
            weights = info.weights.as_str(),
            arch = info.arch.as_str(),
            dim = info.dim,
            max_length = info.max_length,
            threads = info.threads,
            lanes = info.lanes;
            "backend"
        );
        match (&info.cache, &info.cache_entry, &info.cache_note) {
            (CacheState::Hit, Some(entry), _) => {
                log::info!(result = "hit", entry = entry.as_str(); "graph_cache")
            }
            (CacheState::Written, Some(entry), _) => {
                log::info!(result = "write", entry = entry.as_str(); "graph_cache")
            }
            (_, _, reason) => {
                log::info!(result = "off", reason = reason.as_deref().unwrap_or("off"); "graph_cache")
            }
        }
        if let Some(path) = &info.vector_cache {
            let note = self.info().vector_cache_note.unwrap_or_default();
            log::info!(path = path.as_str(), note = note.as_str(); "vector_cache");
        }
        let after = crate::memory::resident_bytes();
        log::info!(
            seconds = started.elapsed().as_secs_f64(),
            resident_before = resident_before.unwrap_or(0),
            resident_after = after.unwrap_or(0);
            "init"
        );
    }
}
