//! The cancellation token JavaScript hands to a call.
use napi_derive::napi;

use crate::cancel::Cancel;

/// A call's cancellation: the TypeScript layer makes one per call with a `signal` or `timeout`
/// and cancels it when the signal fires; the call stops before its next micro-batch.
#[napi]
pub struct CancelToken {
    cancel: Cancel,
}

#[napi]
impl CancelToken {
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> CancelToken {
        CancelToken {
            cancel: Cancel::never(),
        }
    }

    #[napi]
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    pub fn flag(&self) -> Cancel {
        self.cancel.clone()
    }
}
