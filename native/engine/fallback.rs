//! `cpuFallback`: a call whose forward pass fails on CUDA or MLX for a reason other than bad
//! input finishes on a CPU session of the same weights, opened once; later calls run there.
use super::parts::Fallback;
use super::Engine;
use crate::backend::{Backend, RunBatch};
use crate::error::{Error, Result};

impl Engine {
    /// Where calls run: the CPU backend once the model fell back to it.
    pub(super) fn backend(&self) -> &dyn Backend {
        self.cpu.get().map_or(&*self.backend, |cpu| &**cpu)
    }

    /// `batches` through `run` on the model's backend; with `cpuFallback`, a run failure on the
    /// GPU moves the model to the CPU, where the call's micro-batches all run again.
    pub(super) fn forward_all(&self, batches: Vec<Vec<usize>>, run: &RunBatch) -> Result<()> {
        let backend = self.backend();
        let fallback = self.fallback.as_ref().filter(|_| backend.is_gpu());
        // the call's micro-batches are kept only where a fallback may run them again
        let again = fallback.map(|_| batches.clone());
        match (backend.forward_all(batches, run), fallback.zip(again)) {
            (Err(e), Some((fallback, batches))) if e.is_run_failure() => {
                self.fall_back(fallback, &e)?.forward_all(batches, run)
            }
            (result, _) => result,
        }
    }

    fn fall_back(&self, fallback: &Fallback, failure: &Error) -> Result<&dyn Backend> {
        let from = self.backend.device();
        let cpu = self.cpu.get_or_try_init(|| {
            let loaded =
                crate::load::load(&fallback.model, &fallback.settings, fallback.max_length)
                    .map_err(|e| {
                        Error::Runtime(format!(
                            "{from} failed ({failure}), and the CPU fallback could not start: {e}"
                        ))
                    })?;
            log::warn!(from = from.as_str(), reason:% = failure; "cpu_fallback");
            self.stats.cpu_fallback();
            let _ = self.fell_back.set(format!("{from} failed: {failure}"));
            Ok::<_, Error>(loaded.backend)
        })?;
        Ok(&**cpu)
    }
}
