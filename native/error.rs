use std::path::{Path, PathBuf};

/// Every failure the addon reports; each message says what was wrong and what to do, and each
/// kind has a stable `code` that JavaScript sees as `error.code`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file of the snapshot is missing, unreadable or malformed.
    #[error("{}: {what}", path.display())]
    ModelFile { path: PathBuf, what: String },
    /// A well-formed snapshot of a model this addon cannot run.
    #[error("{}: {what}", path.display())]
    UnsupportedModel { path: PathBuf, what: String },
    /// No ONNX Runtime library could be loaded, or a second one was asked for.
    #[error("{0}")]
    OrtLibrary(String),
    /// The backend asked for cannot run here (no CUDA provider, no MLX in this build).
    #[error("{0}")]
    BackendUnavailable(String),
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
    /// A `SEMANTIC_SEARCH_*` variable holds a value that cannot be used.
    #[error("{var} {what}")]
    Env { var: String, what: String },
    #[error("{0}")]
    NotLoaded(String),
    #[error("{0}")]
    Closed(String),
    /// The call's `AbortSignal` fired; JavaScript rejects with an `AbortError`.
    #[error("the operation was aborted")]
    Aborted,
    #[error("internal error (please report it): {0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The backend failed to run a call it was given (not bad input, not an abort): what a CPU
    /// fallback answers.
    pub fn is_run_failure(&self) -> bool {
        matches!(
            self,
            Error::Runtime(_) | Error::Ort(_) | Error::OutOfMemory(_)
        )
    }

    /// A failed forward pass: out-of-memory failures are told apart, so that the engine can
    /// retry with smaller batches.
    pub fn from_run(message: String) -> Error {
        let lower = message.to_lowercase();
        let oom = [
            "out of memory",
            "failed to allocate",
            "cudaerrormemoryallocation",
            "bad_alloc",
        ];
        if oom.iter().any(|m| lower.contains(m)) {
            Error::OutOfMemory(message)
        } else {
            Error::Ort(message)
        }
    }
}

/// The `code` of every `Error` the addon throws, stable across versions.
#[napi_derive::napi(string_enum = "UPPER_SNAKE")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// A file of the model snapshot is missing, unreadable or malformed.
    ErrModelFile,
    /// A well-formed snapshot of a model (architecture, pooling, input) the addon cannot run.
    ErrUnsupportedModel,
    /// No ONNX Runtime library could be loaded, or a second one was asked for.
    ErrOrtLibrary,
    /// The backend asked for cannot run here.
    ErrBackendUnavailable,
    /// ONNX Runtime or MLX failed while running.
    ErrRuntime,
    /// Out of memory even for one text.
    ErrOutOfMemory,
    ErrTokenizer,
    /// A bad argument or option.
    ErrInput,
    /// A malformed `SEMANTIC_SEARCH_*` environment variable.
    ErrEnv,
    /// `embed` or `info` before `init`.
    ErrNotLoaded,
    /// A call on a `Model` after `close()`.
    ErrModelClosed,
    /// A model id that is not in the Hugging Face cache, or no default model downloaded
    /// (thrown by the TypeScript layer, with the command that downloads it).
    ErrModelNotFound,
    /// A download from the Hugging Face hub failed (thrown by the TypeScript layer).
    ErrDownload,
    /// No build of the addon runs on this platform (musl, a glibc older than 2.28).
    ErrUnsupportedPlatform,
    /// A bug: please report it.
    ErrInternal,
    /// The call's `AbortSignal` fired (or its `timeout` passed): an `AbortError`, as Node's own
    /// APIs reject.
    AbortErr,
    /// `maxQueuedCalls` calls already wait for `maxConcurrentCalls`: try again later (a server
    /// answers 429). Thrown by the TypeScript layer.
    ErrBusy,
    /// A remote embedding server (`remote`) failed, or answered what is not a right answer: the
    /// wrong number of vectors, wrong dimensions, values that are not finite float32. Thrown by
    /// the TypeScript layer.
    ErrRemote,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ErrModelFile => "ERR_MODEL_FILE",
            ErrorCode::ErrUnsupportedModel => "ERR_UNSUPPORTED_MODEL",
            ErrorCode::ErrOrtLibrary => "ERR_ORT_LIBRARY",
            ErrorCode::ErrBackendUnavailable => "ERR_BACKEND_UNAVAILABLE",
            ErrorCode::ErrRuntime => "ERR_RUNTIME",
            ErrorCode::ErrOutOfMemory => "ERR_OUT_OF_MEMORY",
            ErrorCode::ErrTokenizer => "ERR_TOKENIZER",
            ErrorCode::ErrInput => "ERR_INPUT",
            ErrorCode::ErrEnv => "ERR_ENV",
            ErrorCode::ErrNotLoaded => "ERR_NOT_LOADED",
            ErrorCode::ErrModelClosed => "ERR_MODEL_CLOSED",
            ErrorCode::ErrModelNotFound => "ERR_MODEL_NOT_FOUND",
            ErrorCode::ErrDownload => "ERR_DOWNLOAD",
            ErrorCode::ErrUnsupportedPlatform => "ERR_UNSUPPORTED_PLATFORM",
            ErrorCode::ErrInternal => "ERR_INTERNAL",
            ErrorCode::AbortErr => "ABORT_ERR",
            ErrorCode::ErrBusy => "ERR_BUSY",
            ErrorCode::ErrRemote => "ERR_REMOTE",
        }
    }
}

impl Error {
    pub fn model_file(path: &Path, what: impl Into<String>) -> Self {
        Error::ModelFile {
            path: path.to_path_buf(),
            what: what.into(),
        }
    }

    pub fn unsupported(path: &Path, what: impl Into<String>) -> Self {
        Error::UnsupportedModel {
            path: path.to_path_buf(),
            what: what.into(),
        }
    }

    /// The stable name of this kind of failure.
    pub fn code(&self) -> &'static str {
        self.kind().as_str()
    }

    pub fn kind(&self) -> ErrorCode {
        match self {
            Error::ModelFile { .. } => ErrorCode::ErrModelFile,
            Error::UnsupportedModel { .. } => ErrorCode::ErrUnsupportedModel,
            Error::OrtLibrary(_) => ErrorCode::ErrOrtLibrary,
            Error::BackendUnavailable(_) => ErrorCode::ErrBackendUnavailable,
            Error::Runtime(_) | Error::Ort(_) => ErrorCode::ErrRuntime,
            Error::OutOfMemory(_) => ErrorCode::ErrOutOfMemory,
            Error::Tokenizer(_) => ErrorCode::ErrTokenizer,
            Error::Input(_) => ErrorCode::ErrInput,
            Error::Env { .. } => ErrorCode::ErrEnv,
            Error::NotLoaded(_) => ErrorCode::ErrNotLoaded,
            Error::Closed(_) => ErrorCode::ErrModelClosed,
            Error::Internal(_) => ErrorCode::ErrInternal,
            Error::Aborted => ErrorCode::AbortErr,
        }
    }
}

impl<T> From<ort::Error<T>> for Error {
    fn from(e: ort::Error<T>) -> Self {
        Error::Ort(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    /// JavaScript sees the string enum's values: `as_str` must spell each variant the same way.
    #[test]
    fn every_code_is_its_variant_in_upper_snake_case() {
        use ErrorCode::*;
        for code in [
            ErrModelFile,
            ErrUnsupportedModel,
            ErrOrtLibrary,
            ErrBackendUnavailable,
            ErrRuntime,
            ErrOutOfMemory,
            ErrTokenizer,
            ErrInput,
            ErrEnv,
            ErrNotLoaded,
            ErrModelClosed,
            ErrModelNotFound,
            ErrDownload,
            ErrUnsupportedPlatform,
            ErrInternal,
        ] {
            let name = format!("{code:?}");
            let mut snake = String::new();
            for (i, c) in name.chars().enumerate() {
                if c.is_uppercase() && i > 0 {
                    snake.push('_');
                }
                snake.push(c.to_ascii_uppercase());
            }
            assert_eq!(code.as_str(), snake);
        }
    }
}
