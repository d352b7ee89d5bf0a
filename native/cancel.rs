//! A call's cancellation: JavaScript's `AbortSignal` sets the flag, and the engine looks at it
//! before each micro-batch, so an aborted call stops within one micro-batch.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};

#[derive(Clone, Default, Debug)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag nobody sets: a call that cannot be cancelled.
    pub fn never() -> Cancel {
        Cancel::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Aborted)` once the flag is set.
    pub fn check(&self) -> Result<()> {
        match self.is_cancelled() {
            true => Err(Error::Aborted),
            false => Ok(()),
        }
    }
}
