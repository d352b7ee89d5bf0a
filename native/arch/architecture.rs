//! The trait each architecture file implements: what the loader must know of a model before
//! and while it reads the weights.
use super::encoder::{AttentionDirection, Encoder};
use super::sizes::Sizes;
use crate::error::Result;
use crate::weights::Safetensors;

/// One architecture, parsed from its `config.json`.
pub trait Architecture: std::fmt::Debug + Send + Sync {
    /// The `model_type` as the snapshot names it.
    fn model_type(&self) -> &str;
    /// Its sizes, checked before anything is allocated from them; `None` when the config does
    /// not give them (an ONNX-only model).
    fn sizes(&self) -> Option<Sizes>;
    /// The hidden size; `None` when an unknown architecture's config does not say.
    fn hidden(&self) -> Option<usize> {
        self.sizes().map(|s| s.hidden)
    }
    /// The longest input the model was trained on, in tokens.
    fn max_trained_tokens(&self) -> usize;
    /// The truncation used when neither the caller nor a smaller `max_seq_length` sets one.
    fn default_max_length(&self) -> usize {
        self.max_trained_tokens()
    }
    /// The attention direction the snapshot asks for.
    fn attention(&self) -> AttentionDirection {
        AttentionDirection::Bidirectional
    }
    /// The token that ends every sequence of a last-token model.
    fn eos(&self) -> Option<u32> {
        None
    }
    /// Why it cannot be built from `model.safetensors` (`has model_type "x"`); `None` when it can.
    fn not_buildable(&self) -> Option<String> {
        None
    }
    /// A key every checkpoint of the architecture has: what stands before it is the
    /// checkpoint's key prefix (`bert.`, `model.`). `None`: not built from safetensors.
    fn anchor(&self) -> Option<&'static str>;
    /// The encoder of `weights`, attending in `direction`.
    fn describe(&self, weights: &Safetensors, direction: AttentionDirection) -> Result<Encoder>;
}
