use std::path::{Path, PathBuf};

/// Every failure the addon reports; each message says what was wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {what}", path.display())]
    ModelFile { path: PathBuf, what: String },
    #[error("{0}")]
    Runtime(String),
    #[error("ONNX Runtime failed: {0}")]
    Ort(String),
    #[error("out of memory: {0}")]
    OutOfMemory(String),
    #[error("tokenizer failed: {0}")]
    Tokenizer(String),
    #[error("{0}")]
    Input(String),
    #[error("internal error (please report it): {0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn model_file(path: &Path, what: impl Into<String>) -> Self {
        Error::ModelFile {
            path: path.to_path_buf(),
            what: what.into(),
        }
    }
}

impl<T> From<ort::Error<T>> for Error {
    fn from(e: ort::Error<T>) -> Self {
        Error::Ort(e.to_string())
    }
}
