//! The pieces the engine's files share: a call's state, and what a CPU fallback opens.
use std::sync::atomic::AtomicUsize;

use crate::cancel::Cancel;
use crate::model::Model;
use crate::settings::{BackendKind, Settings};

/// One call in the engine: how to stop it, and what it ran.
pub struct CallState<'a> {
    pub cancel: &'a Cancel,
    /// Tokens the call's texts became (cache hits not tokenized).
    pub tokens: AtomicUsize,
    /// Micro-batches run.
    pub batches: AtomicUsize,
}

impl<'a> CallState<'a> {
    pub fn new(cancel: &'a Cancel) -> Self {
        CallState {
            cancel,
            tokens: AtomicUsize::new(0),
            batches: AtomicUsize::new(0),
        }
    }
}

/// What opening the CPU backend of the same model takes.
pub struct Fallback {
    pub model: Model,
    pub settings: Settings,
    pub max_length: usize,
}

impl Fallback {
    /// The model's settings moved to the CPU, at the CPU's default precision.
    pub fn new(model: Model, settings: &Settings, max_length: usize) -> Fallback {
        let mut settings = settings.clone();
        settings.backend = BackendKind::Cpu;
        settings.dtype = None;
        settings.gpu_device = None;
        Fallback {
            model,
            settings,
            max_length,
        }
    }
}
