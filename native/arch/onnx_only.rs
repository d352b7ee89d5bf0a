//! Any `model_type` not in the registry: it runs from the snapshot's ONNX file as it is, so
//! only what running that file needs is read.
use serde::Deserialize;

use super::architecture::Architecture;
use super::encoder::{AttentionDirection, Encoder};
use super::sizes::{within, Sizes, MAX_HIDDEN, MAX_POSITIONS};
use crate::error::{Error, Result};
use crate::weights::Safetensors;

/// Truncation of a model whose config names no position limit: BERT-sized, the common case.
pub const DEFAULT_MAX_LENGTH: usize = 512;

#[derive(Debug, Clone, Deserialize)]
pub struct OnnxOnly {
    /// `None` when the snapshot gives no `model_type` at all.
    model_type: Option<String>,
    hidden_size: Option<usize>,
    max_position_embeddings: Option<usize>,
}

pub fn parse(text: &str) -> serde_json::Result<Box<dyn Architecture>> {
    Ok(Box::new(serde_json::from_str::<OnnxOnly>(text)?))
}

/// The sizes it gives, when it gives them, are within what any real model has.
pub fn check(arch: &dyn Architecture) -> std::result::Result<(), String> {
    within("hidden_size", arch.hidden().unwrap_or(1), MAX_HIDDEN)?;
    within(
        "max_position_embeddings",
        arch.max_trained_tokens(),
        MAX_POSITIONS,
    )
}

impl Architecture for OnnxOnly {
    fn model_type(&self) -> &str {
        self.model_type.as_deref().unwrap_or("unknown")
    }

    fn sizes(&self) -> Option<Sizes> {
        None
    }

    fn hidden(&self) -> Option<usize> {
        self.hidden_size
    }

    fn max_trained_tokens(&self) -> usize {
        self.max_position_embeddings.unwrap_or(DEFAULT_MAX_LENGTH)
    }

    fn not_buildable(&self) -> Option<String> {
        Some(match &self.model_type {
            Some(kind) => format!("has model_type \"{kind}\""),
            None => "has no \"model_type\"".into(),
        })
    }

    fn anchor(&self) -> Option<&'static str> {
        None
    }

    fn describe(&self, _: &Safetensors, _: AttentionDirection) -> Result<Encoder> {
        Err(Error::Internal("no encoder for an ONNX-only model".into()))
    }
}
