//! A model: its snapshot's files and its architecture, read once; what the two decide together
//! (the truncation, the attention direction).
use std::path::Path;

use crate::arch::{self, Architecture, AttentionDirection};
use crate::backend::ModelFacts;
use crate::error::{Error, Result};
use crate::model_dir::ModelDir;
use crate::settings::Settings;

#[derive(Debug)]
pub struct Model {
    pub dir: ModelDir,
    pub arch: Box<dyn Architecture>,
}

impl Model {
    pub fn open(path: &Path) -> Result<Model> {
        let dir = ModelDir::open(path)?;
        let arch = arch::parse(&path.join("config.json"), &dir.config_text)?;
        Ok(Model { dir, arch })
    }

    pub fn facts(&self) -> ModelFacts {
        ModelFacts {
            pooling: self.dir.pooling,
            hidden: self.arch.hidden(),
        }
    }

    /// The snapshot's attention direction unless the settings override it.
    pub fn attention(&self, settings: &Settings) -> AttentionDirection {
        settings.attention.unwrap_or_else(|| self.arch.attention())
    }

    /// The truncation asked for, or else the snapshot's `max_seq_length` within what the
    /// architecture allows by default; more than the model was trained for is refused.
    pub fn max_length(&self, requested: Option<usize>) -> Result<usize> {
        let limit = self.arch.max_trained_tokens();
        match requested {
            Some(n) if n > limit => Err(Error::Input(format!(
                "maxLength {n} is more than this model was trained for ({limit} tokens); use {limit} or less"
            ))),
            Some(n) => Ok(n),
            None => Ok(self
                .dir
                .max_seq_length
                .unwrap_or(limit)
                .min(self.arch.default_max_length())),
        }
    }

    /// Ok when the encoder can be built from `model.safetensors`.
    pub fn buildable(&self) -> Result<()> {
        arch::buildable(self.arch.as_ref(), &self.dir.path.join("config.json"))
    }
}
