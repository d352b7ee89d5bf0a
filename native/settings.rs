//! Options parsed once into types: what `init`/`Model.load` were given, completed from the
//! `SEMANTIC_SEARCH_*` environment variables, with where each value came from.
use std::path::PathBuf;
use std::time::Duration;

use napi::bindgen_prelude::Either;
use napi_derive::napi;

use crate::arch::AttentionDirection;
use crate::error::{Error, Result};
use crate::vector_cache::config::{CacheConfig, DEFAULT_BUSY, DEFAULT_MAX_BYTES};

pub use crate::backend::ort::graph::rules::Int8Scheme;
pub use crate::choices::{
    parse_bytes, parse_size, BackendKind, Choice, Int8SchemeOption, Precision, Source, Sources,
    WeightsKind,
};

/// What `init` and `Model.load` accept, as JavaScript gives it; `None` means "not given".
#[napi(object, js_name = "InitOptions")]
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Where the model runs (default `$SEMANTIC_SEARCH_BACKEND`, else `auto`).
    #[napi(ts_type = "Backend | `${Backend}`")]
    pub backend: Option<BackendKind>,
    /// Truncation in tokens (default `$SEMANTIC_SEARCH_MAX_LENGTH`, else the snapshot's
    /// max_seq_length, else the trained maximum).
    pub max_length: Option<u32>,
    /// Token budget (rows × padded length) of one forward pass (default
    /// `$SEMANTIC_SEARCH_BATCH_TOKENS`, else 1024 on the CPU, 16384 on a GPU). On the CPU this
    /// is also the memory limit: activations of one micro-batch at a time.
    pub batch_tokens: Option<u32>,
    /// ONNX Runtime intra-op threads in a pool of this model's own (default
    /// `$SEMANTIC_SEARCH_THREADS`; unset: the process's shared pool, a thread per physical core).
    pub threads: Option<u32>,
    /// Which `.onnx` file of the snapshot to run (relative to it or to its `onnx/` folder).
    pub onnx_file: Option<String>,
    /// Which weights run: `model.safetensors` when present (`auto`), or the ONNX file.
    #[napi(ts_type = "Weights | `${Weights}`")]
    pub weights: Option<WeightsKind>,
    /// Path of the `libonnxruntime` shared library to load.
    pub ort_library: Option<String>,
    /// Precision of the graph built from model.safetensors (default `$SEMANTIC_SEARCH_DTYPE`):
    /// `float32` (default on the CPU and MLX); `float16` (default on CUDA; also MLX, and the CPU
    /// for checking); `int8` (dynamic quantisation, ONNX Runtime on the CPU); `bfloat16` (MLX only).
    #[napi(ts_type = "Dtype | `${Dtype}`")]
    pub dtype: Option<Precision>,
    /// Cap of GPU memory, in bytes or as `'4GB'` / `'512MiB'` (default
    /// `$SEMANTIC_SEARCH_GPU_MEMORY_LIMIT`): CUDA's arena, or MLX's memory and cache limits.
    #[napi(ts_type = "number | string")]
    pub gpu_memory_limit: Option<Either<f64, String>>,
    /// Overrides the attention direction the snapshot implies (see the README's model table).
    #[napi(ts_type = "AttentionDirection | `${AttentionDirection}`")]
    pub attention: Option<AttentionDirection>,
    /// With `dtype: 'int8'`: `'s8'` weights (fast with VNNI), `'s8a7'` (s8 weights, 7-bit
    /// activations: x86 without VNNI, whose u8 x s8 kernels saturate at 8 bits) or `'u8'`
    /// weights (exact at 8 bits without VNNI, slower); default `'auto'`: by the CPU.
    #[napi(ts_type = "Int8Scheme | `${Int8Scheme}`")]
    pub int8_scheme: Option<Int8SchemeOption>,
    /// Put before every query instead of the snapshot's `prompts.query`.
    pub query_prefix: Option<String>,
    /// Put before every document instead of the snapshot's `prompts.document` (or `passage`).
    pub document_prefix: Option<String>,
    /// The task of calls that name none, for models with tasks (`info().tasks`); by default
    /// queries use `retrieval.query` and documents `retrieval.passage` when the model has them.
    pub task: Option<String>,
    /// A prompt of the snapshot by name (one of `info().prompts`), put before every text of
    /// calls that name none, instead of the query or document prompt.
    pub prompt: Option<String>,
    /// Cut every vector to its first `dimensions` values, then normalise (Matryoshka); a model
    /// that lists `matryoshka_dimensions` accepts only those.
    pub dimensions: Option<u32>,
    /// Keep ONNX Runtime's optimised graph of a model built from safetensors on disk, and start
    /// from it next time (default true; the folder is `$SEMANTIC_SEARCH_CACHE`, else
    /// `~/.cache/semantic-search-native`; `SEMANTIC_SEARCH_CACHE=off` also turns it off).
    pub cache: Option<bool>,
    /// The graph cache's folder (default `$SEMANTIC_SEARCH_CACHE`, else
    /// `~/.cache/semantic-search-native`).
    pub cache_dir: Option<String>,
    /// Keep every vector computed in a SQLite file and return it again for the same text, model
    /// and settings, bit for bit, instead of computing it (default
    /// `$SEMANTIC_SEARCH_VECTOR_CACHE`, else off): `true` or `'on'` for
    /// `$XDG_CACHE_HOME/semantic-search-native/vectors.sqlite`, a path for that file, `false` or
    /// `'off'` for none.
    #[napi(ts_type = "boolean | 'on' | 'off' | (string & {})")]
    pub vector_cache: Option<Either<bool, String>>,
    /// The vector cache's size limit, in bytes or as `'500MB'` (default
    /// `$SEMANTIC_SEARCH_VECTOR_CACHE_MAX_BYTES`, else 1 GB); the least recently used vectors go
    /// first.
    #[napi(ts_type = "number | string")]
    pub vector_cache_max_bytes: Option<Either<f64, String>>,
    /// How long, in milliseconds, a call waits for another process's write to the vector cache
    /// before it goes on without the cache (default 5000).
    pub vector_cache_timeout: Option<u32>,
    /// Calls of this model that run at once; later ones wait in order (default
    /// `$SEMANTIC_SEARCH_MAX_CONCURRENT`, else no limit).
    pub max_concurrent_calls: Option<u32>,
    /// With `maxConcurrentCalls`: calls that may wait; one more is refused at once with
    /// `ERR_BUSY` (a server answers 429). Default: no limit.
    pub max_queued_calls: Option<u32>,
    /// The CUDA device, as `'cuda:1'` (default `$SEMANTIC_SEARCH_GPU_DEVICE`, else device 0);
    /// naming one runs the model on CUDA.
    pub device: Option<String>,
    /// When a forward pass on CUDA or MLX fails (the provider errors, a text does not fit in GPU
    /// memory), finish the call on a CPU session of the same weights and stay there (default
    /// `$SEMANTIC_SEARCH_CPU_FALLBACK`, else false: the call rejects).
    pub cpu_fallback: Option<bool>,
}

/// The options in types; `None` still means "the model's or the machine's default".
#[derive(Debug, Clone)]
pub struct Settings {
    pub backend: BackendKind,
    pub dtype: Option<Precision>,
    pub weights: WeightsKind,
    pub threads: Option<usize>,
    pub max_length: Option<usize>,
    pub batch_tokens: Option<usize>,
    pub gpu_memory_limit: Option<u64>,
    pub onnx_file: Option<String>,
    pub ort_library: Option<PathBuf>,
    pub attention: Option<AttentionDirection>,
    pub int8_scheme: Int8Scheme,
    pub query_prefix: Option<String>,
    pub document_prefix: Option<String>,
    pub task: Option<String>,
    pub prompt: Option<String>,
    pub dimensions: Option<usize>,
    /// Where optimised graphs are cached; `None`: not at all.
    pub cache_dir: Option<PathBuf>,
    /// The vector cache's file and limits; `None`: off.
    pub vector_cache: Option<CacheConfig>,
    pub max_concurrent_calls: Option<usize>,
    pub max_queued_calls: Option<usize>,
    /// The CUDA device's index, when one was named.
    pub gpu_device: Option<u32>,
    pub cpu_fallback: bool,
    pub sources: Sources,
}

pub const ENV_BACKEND: &str = "SEMANTIC_SEARCH_BACKEND";
pub const ENV_DTYPE: &str = "SEMANTIC_SEARCH_DTYPE";
pub const ENV_THREADS: &str = "SEMANTIC_SEARCH_THREADS";
pub const ENV_MAX_LENGTH: &str = "SEMANTIC_SEARCH_MAX_LENGTH";
pub const ENV_BATCH_TOKENS: &str = "SEMANTIC_SEARCH_BATCH_TOKENS";
pub const ENV_GPU_MEMORY_LIMIT: &str = "SEMANTIC_SEARCH_GPU_MEMORY_LIMIT";
pub const ENV_CACHE: &str = "SEMANTIC_SEARCH_CACHE";
pub const ENV_MAX_CONCURRENT: &str = "SEMANTIC_SEARCH_MAX_CONCURRENT";
pub const ENV_VECTOR_CACHE: &str = "SEMANTIC_SEARCH_VECTOR_CACHE";
pub const ENV_VECTOR_CACHE_MAX_BYTES: &str = "SEMANTIC_SEARCH_VECTOR_CACHE_MAX_BYTES";

impl Settings {
    /// `options` completed from this process's environment.
    pub fn from_process(options: &Options) -> Result<Settings> {
        Settings::resolve(options, |name| std::env::var(name).ok())
    }

    /// `options` completed from `env`: a value given in code wins over the environment; an
    /// empty variable counts as unset; a malformed one is an error naming the variable.
    pub fn resolve(options: &Options, env: impl Fn(&str) -> Option<String>) -> Result<Settings> {
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let mut sources = Sources::default();
        if let Some(level) = env(crate::events::ENV_LOG) {
            crate::events::parse_level(&level).map_err(|what| Error::Env {
                var: crate::events::ENV_LOG.into(),
                what,
            })?;
        }
        let backend = choose(&mut sources.backend, options.backend, ENV_BACKEND, &env)?;
        let dtype = choose(&mut sources.dtype, options.dtype, ENV_DTYPE, &env)?;
        let count = |n: Option<u32>| n.map(|n| n as usize);
        let threads = pick_number(
            &mut sources.threads,
            "threads",
            count(options.threads),
            ENV_THREADS,
            &env,
        )?;
        let max_length = pick_number(
            &mut sources.max_length,
            "maxLength",
            count(options.max_length),
            ENV_MAX_LENGTH,
            &env,
        )?;
        let batch_tokens = pick_number(
            &mut sources.batch_tokens,
            "batchTokens",
            count(options.batch_tokens),
            ENV_BATCH_TOKENS,
            &env,
        )?;
        let limit = pick(
            &mut sources.gpu_memory_limit,
            options.gpu_memory_limit.as_ref().map(text_of),
            env(ENV_GPU_MEMORY_LIMIT),
        );
        let gpu_memory_limit = limit
            .as_deref()
            .map(parse_bytes)
            .transpose()
            .map_err(|e| from(sources.gpu_memory_limit, ENV_GPU_MEMORY_LIMIT).error(e))?;
        let vector_cache = vector_cache(options, &env)?;
        let mut concurrency = Source::Default;
        let max_concurrent_calls = pick_number(
            &mut concurrency,
            "maxConcurrentCalls",
            count(options.max_concurrent_calls),
            ENV_MAX_CONCURRENT,
            &env,
        )?;
        if options.max_queued_calls.is_some() && max_concurrent_calls.is_none() {
            return Err(Error::Input(
                "maxQueuedCalls needs maxConcurrentCalls: calls wait only when that many run"
                    .into(),
            ));
        }
        Ok(Settings {
            backend: backend.unwrap_or(BackendKind::Auto),
            dtype,
            weights: options.weights.unwrap_or(WeightsKind::Auto),
            threads,
            max_length,
            batch_tokens,
            gpu_memory_limit,
            onnx_file: options.onnx_file.clone(),
            ort_library: options.ort_library.as_ref().map(PathBuf::from),
            attention: options.attention,
            int8_scheme: Int8Scheme::from_option(options.int8_scheme),
            query_prefix: options.query_prefix.clone(),
            document_prefix: options.document_prefix.clone(),
            task: options.task.clone(),
            prompt: options.prompt.clone(),
            dimensions: count(options.dimensions),
            cache_dir: match options.cache {
                Some(false) => None,
                _ => options
                    .cache_dir
                    .as_ref()
                    .map(PathBuf::from)
                    .or_else(|| cache_dir(&env)),
            },
            vector_cache,
            max_concurrent_calls,
            max_queued_calls: count(options.max_queued_calls),
            gpu_device: control::gpu_device(options.device.as_deref(), &env)?,
            cpu_fallback: control::cpu_fallback(options.cpu_fallback, &env)?,
            sources,
        })
    }
}

/// The vector cache's file and limit from the options, else the environment; off by default.
fn vector_cache(
    options: &Options,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<CacheConfig>> {
    let (choice, failure) = match &options.vector_cache {
        Some(given) => (Some(text_of(given)), Failure::Option),
        None => (env(ENV_VECTOR_CACHE), Failure::Env(ENV_VECTOR_CACHE.into())),
    };
    let Some(choice) = choice else {
        return Ok(None);
    };
    let path = match choice.trim().to_lowercase().as_str() {
        "off" | "false" | "0" | "no" => return Ok(None),
        "on" | "true" | "1" | "yes" => default_base(env)
            .map(|base| base.join("semantic-search-native").join("vectors.sqlite"))
            .ok_or_else(|| {
                failure.error("the vector cache's default file needs XDG_CACHE_HOME, LOCALAPPDATA or HOME; give the file's path instead".into())
            })?,
        _ => PathBuf::from(choice.trim()),
    };
    let max_bytes = match &options.vector_cache_max_bytes {
        Some(given) => {
            Some(parse_size("vectorCacheMaxBytes", &text_of(given)).map_err(Error::Input)?)
        }
        None => env(ENV_VECTOR_CACHE_MAX_BYTES)
            .map(|text| {
                parse_size("vectorCacheMaxBytes", &text)
                    .map_err(|e| Failure::Env(ENV_VECTOR_CACHE_MAX_BYTES.into()).error(e))
            })
            .transpose()?,
    };
    Ok(Some(CacheConfig {
        path,
        max_bytes: max_bytes.unwrap_or(DEFAULT_MAX_BYTES),
        busy: options
            .vector_cache_timeout
            .map_or(DEFAULT_BUSY, |ms| Duration::from_millis(ms.into())),
    }))
}

/// A number or flag given where a string also goes, as text.
fn text_of<T: ToString>(given: &Either<T, String>) -> String {
    match given {
        Either::A(value) => value.to_string(),
        Either::B(text) => text.clone(),
    }
}

/// `$XDG_CACHE_HOME`, else `%LOCALAPPDATA%` (Windows), else `~/.cache`.
fn default_base(env: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    env("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| env("LOCALAPPDATA").map(PathBuf::from))
        .or_else(|| env("HOME").map(|home| PathBuf::from(home).join(".cache")))
}

/// `$SEMANTIC_SEARCH_CACHE` (`off`, `0`, `false` or `no` turn the cache off), else
/// `$XDG_CACHE_HOME/semantic-search-native`, else `~/.cache/semantic-search-native`
/// (`%LOCALAPPDATA%` on Windows).
fn cache_dir(env: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(value) = env(ENV_CACHE) {
        let off = ["off", "0", "false", "no"].contains(&value.trim().to_lowercase().as_str());
        return (!off).then(|| PathBuf::from(value));
    }
    Some(default_base(env)?.join("semantic-search-native"))
}

/// Which name a bad value is reported under.
enum Failure {
    Option,
    Env(String),
}

impl Failure {
    fn error(self, what: String) -> Error {
        match self {
            Failure::Option => Error::Input(what),
            Failure::Env(var) => Error::Env {
                var,
                what: format!("{what}; fix or unset the variable"),
            },
        }
    }
}

fn from(source: Source, var: &str) -> Failure {
    match source {
        Source::Env => Failure::Env(var.to_string()),
        _ => Failure::Option,
    }
}

fn pick<T>(source: &mut Source, option: Option<T>, env: Option<T>) -> Option<T> {
    match (option, env) {
        (Some(v), _) => {
            *source = Source::Option;
            Some(v)
        }
        (None, Some(v)) => {
            *source = Source::Env;
            Some(v)
        }
        (None, None) => None,
    }
}

/// The option when given, else the variable `var` parsed (an error naming it when malformed).
fn choose<T: Choice>(
    source: &mut Source,
    option: Option<T>,
    var: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<T>> {
    let from_env = match option {
        Some(_) => None,
        None => env(var)
            .map(|text| T::parse(&text).map_err(|e| from(Source::Env, var).error(e)))
            .transpose()?,
    };
    Ok(pick(source, option, from_env))
}

fn pick_number(
    source: &mut Source,
    name: &str,
    option: Option<usize>,
    var: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<usize>> {
    let from_env = env(var)
        .map(|text| match text.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(Error::Env {
                var: var.to_string(),
                what: format!(
                    "is \"{text}\", expected a positive integer; fix or unset the variable"
                ),
            }),
        })
        .transpose();
    if option == Some(0) {
        return Err(Error::Input(format!("{name} must be a positive integer")));
    }
    Ok(pick(
        source,
        option,
        if option.is_some() { None } else { from_env? },
    ))
}

mod control;
#[cfg(test)]
mod tests;

pub use control::{ENV_CPU_FALLBACK, ENV_GPU_DEVICE};
