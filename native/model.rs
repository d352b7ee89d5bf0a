//! A model: its snapshot's files and its architecture, read once; what the two decide together
//! (the truncation, the attention direction).
use std::path::Path;

use crate::arch::{self, Architecture, AttentionDirection, HeadPlan};
use crate::backend::ModelFacts;
use crate::error::{Error, Result};
use crate::model_dir::ModelDir;
use crate::pooling::Pooling;
use crate::settings::Settings;

#[derive(Debug)]
pub struct Model {
    pub dir: ModelDir,
    pub arch: Box<dyn Architecture>,
    /// A reranker's head: it scores (query, document) pairs instead of embedding texts.
    pub head: Option<HeadPlan>,
}

impl Model {
    pub fn open(path: &Path) -> Result<Model> {
        let dir = ModelDir::open(path)?;
        let arch = arch::parse(&path.join("config.json"), &dir.config_text)?;
        Ok(Model {
            dir,
            arch,
            head: None,
        })
    }

    /// The snapshot as a reranker: its head from `config.json`'s `architectures`.
    pub fn open_reranker(path: &Path) -> Result<Model> {
        let mut model = Model::open(path)?;
        let config = path.join("config.json");
        let pools = path.join("modules.json").is_file() || path.join("1_Pooling").is_dir();
        let dir = &model.dir;
        let head = HeadPlan::read(&config, &dir.config_text, &dir.tokenizer_file, pools)?;
        model.head = Some(head);
        Ok(model)
    }

    /// How token states become one vector: the reranker head's pooling, else the snapshot's.
    pub fn pooling(&self) -> Pooling {
        self.head.as_ref().map_or(self.dir.pooling, |h| h.pooling)
    }

    pub fn facts(&self) -> ModelFacts {
        ModelFacts {
            pooling: self.pooling(),
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
