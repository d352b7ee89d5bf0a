//! Options parsed once into types: what `init`/`Model.load` were given, completed from the
//! `SEMANTIC_SEARCH_*` environment variables, with where each value came from.
use std::path::PathBuf;

use crate::arch::AttentionDirection;
use crate::error::{Error, Result};

/// What `init` accepts as given (strings from JavaScript); `None` means "not given".
#[derive(Debug, Default, Clone)]
pub struct Options {
    pub backend: Option<String>,
    pub max_length: Option<usize>,
    pub batch_tokens: Option<usize>,
    pub threads: Option<usize>,
    pub onnx_file: Option<String>,
    /// `auto` (safetensors when present, else ONNX), `safetensors` or `onnx`.
    pub weights: Option<String>,
    pub ort_library: Option<PathBuf>,
    /// `float32`, `float16` or `int8`; `None`: the backend's default.
    pub dtype: Option<String>,
    /// Bytes, or a size such as `4GB` / `512MiB`.
    pub gpu_memory_limit: Option<String>,
    /// `causal` or `bidirectional`: overrides what the snapshot implies.
    pub attention: Option<String>,
    /// `auto`, `s8` or `u8`: the int8 weights' signedness (auto: by the CPU).
    pub int8_scheme: Option<String>,
    /// Override the snapshot's prompts for queries and for documents.
    pub query_prefix: Option<String>,
    pub document_prefix: Option<String>,
    /// The task (adapter and instruction) of every call that names none.
    pub task: Option<String>,
    /// Cut vectors to their first this many dimensions (Matryoshka), then normalise.
    pub dimensions: Option<usize>,
    /// `Some(false)`: neither read nor write the graph cache.
    pub cache: Option<bool>,
    /// The graph cache's folder instead of `$SEMANTIC_SEARCH_CACHE` or the default.
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// MLX on Apple Silicon; elsewhere CUDA when usable, else the CPU.
    Auto,
    Cpu,
    Cuda,
    Mlx,
}

/// How the projection weights are stored and multiplied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    Float32,
    /// Projection weights quantised to 8 bits per output column at build time, activations
    /// per row (token) as they come; attention and norms stay float32 (see `Int8Scheme`).
    Int8,
    /// Weights and activations in half precision (for CUDA's tensor cores); LayerNormalization
    /// computes in float32 (its default stash type), and pooling and normalisation run on a
    /// float32 copy of the last hidden states.
    Float16,
    /// bfloat16 weights and activations: MLX only (Apple GPUs run it natively).
    BFloat16,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::Float32 => "float32",
            Precision::Int8 => "int8",
            Precision::Float16 => "float16",
            Precision::BFloat16 => "bfloat16",
        }
    }
}

/// How `Precision::Int8` multiplies. Each quantises every activation row (token) to uint8 with
/// its own scale, so a text's vector does not depend on its batch-mates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int8Scheme {
    /// int8 weights: for CPUs with VNNI, whose u8 x s8 dot products have no 16-bit
    /// intermediate (ONNX Runtime's kernel for them ran 2.4x its u8 x u8 one here).
    SignedWeights,
    /// int8 weights and activations in 7 bits (0..127): for CPUs without VNNI, whose u8 x s8
    /// kernel sums pairs of products in 16 bits, where 2 x 127 x 127 cannot saturate.
    SignedWeightsNarrowActivations,
    /// uint8 weights: exact with 8-bit activations on CPUs without VNNI, but their u8 x u8
    /// kernel is slow.
    UnsignedWeights,
}

impl Int8Scheme {
    pub fn name(self) -> &'static str {
        match self {
            Int8Scheme::SignedWeights => "s8",
            Int8Scheme::SignedWeightsNarrowActivations => "s8a7",
            Int8Scheme::UnsignedWeights => "u8",
        }
    }

    /// Bits of each activation row's levels.
    pub fn activation_bits(self) -> u32 {
        match self {
            Int8Scheme::SignedWeightsNarrowActivations => 7,
            _ => 8,
        }
    }

    /// The scheme this CPU runs fastest at the fidelity wanted.
    pub fn for_this_cpu() -> Int8Scheme {
        if crate::cpu::has_vnni() {
            Int8Scheme::SignedWeights
        } else if cfg!(target_arch = "x86_64") {
            Int8Scheme::SignedWeightsNarrowActivations
        } else {
            Int8Scheme::UnsignedWeights
        }
    }

    /// One line for `info().int8Scheme`.
    pub fn describe(self) -> String {
        let weights = if self == Int8Scheme::UnsignedWeights {
            "u8"
        } else {
            "s8"
        };
        format!(
            "{} ({}-bit u8 activations per row x {weights} weights per column; the attention's \
             first-position rows quantised twice; the FFN down projection after SwiGLU in \
             float32; CPU {})",
            self.name(),
            self.activation_bits(),
            crate::cpu::features()
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsKind {
    /// `model.safetensors` when present, else the ONNX file.
    Auto,
    Safetensors,
    Onnx,
}

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    Option,
    Env,
    #[default]
    Default,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Option => "option",
            Source::Env => "env",
            Source::Default => "default",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sources {
    pub backend: Source,
    pub dtype: Source,
    pub threads: Source,
    pub max_length: Source,
    pub batch_tokens: Source,
    pub gpu_memory_limit: Source,
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
    pub dimensions: Option<usize>,
    /// Where optimised graphs are cached; `None`: not at all.
    pub cache_dir: Option<PathBuf>,
    pub sources: Sources,
}

pub const ENV_BACKEND: &str = "SEMANTIC_SEARCH_BACKEND";
pub const ENV_DTYPE: &str = "SEMANTIC_SEARCH_DTYPE";
pub const ENV_THREADS: &str = "SEMANTIC_SEARCH_THREADS";
pub const ENV_MAX_LENGTH: &str = "SEMANTIC_SEARCH_MAX_LENGTH";
pub const ENV_BATCH_TOKENS: &str = "SEMANTIC_SEARCH_BATCH_TOKENS";
pub const ENV_GPU_MEMORY_LIMIT: &str = "SEMANTIC_SEARCH_GPU_MEMORY_LIMIT";
pub const ENV_CACHE: &str = "SEMANTIC_SEARCH_CACHE";

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
        let backend = pick(
            &mut sources.backend,
            options.backend.clone(),
            env(ENV_BACKEND),
        );
        let dtype = pick(&mut sources.dtype, options.dtype.clone(), env(ENV_DTYPE));
        let threads = pick_number(
            &mut sources.threads,
            "threads",
            options.threads,
            ENV_THREADS,
            &env,
        )?;
        let max_length = pick_number(
            &mut sources.max_length,
            "maxLength",
            options.max_length,
            ENV_MAX_LENGTH,
            &env,
        )?;
        let batch_tokens = pick_number(
            &mut sources.batch_tokens,
            "batchTokens",
            options.batch_tokens,
            ENV_BATCH_TOKENS,
            &env,
        )?;
        let limit = pick(
            &mut sources.gpu_memory_limit,
            options.gpu_memory_limit.clone(),
            env(ENV_GPU_MEMORY_LIMIT),
        );
        let from = |source: Source, var: &str| match source {
            Source::Env => Failure::Env(var.to_string()),
            _ => Failure::Option,
        };
        Ok(Settings {
            backend: parse_backend(backend.as_deref())
                .map_err(|e| from(sources.backend, ENV_BACKEND).error(e))?,
            dtype: dtype
                .as_deref()
                .map(parse_dtype)
                .transpose()
                .map_err(|e| from(sources.dtype, ENV_DTYPE).error(e))?,
            weights: parse_weights(options.weights.as_deref()).map_err(Error::Input)?,
            threads,
            max_length,
            batch_tokens,
            gpu_memory_limit: limit
                .as_deref()
                .map(parse_bytes)
                .transpose()
                .map_err(|e| from(sources.gpu_memory_limit, ENV_GPU_MEMORY_LIMIT).error(e))?,
            onnx_file: options.onnx_file.clone(),
            ort_library: options.ort_library.clone(),
            attention: options
                .attention
                .as_deref()
                .map(parse_attention)
                .transpose()
                .map_err(Error::Input)?,
            int8_scheme: parse_int8_scheme(options.int8_scheme.as_deref()).map_err(Error::Input)?,
            query_prefix: options.query_prefix.clone(),
            document_prefix: options.document_prefix.clone(),
            task: options.task.clone(),
            dimensions: options.dimensions,
            cache_dir: match options.cache {
                Some(false) => None,
                _ => options.cache_dir.clone().or_else(|| cache_dir(&env)),
            },
            sources,
        })
    }
}

/// `$SEMANTIC_SEARCH_CACHE` (`off`, `0`, `false` or `no` turn the cache off), else
/// `$XDG_CACHE_HOME/semantic-search-native`, else `~/.cache/semantic-search-native`
/// (`%LOCALAPPDATA%` on Windows).
fn cache_dir(env: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(value) = env(ENV_CACHE) {
        let off = ["off", "0", "false", "no"].contains(&value.trim().to_lowercase().as_str());
        return (!off).then(|| PathBuf::from(value));
    }
    let base = env("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| env("LOCALAPPDATA").map(PathBuf::from))
        .or_else(|| env("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(base.join("semantic-search-native"))
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

fn parse_backend(name: Option<&str>) -> std::result::Result<BackendKind, String> {
    match name.unwrap_or("auto") {
        "auto" => Ok(BackendKind::Auto),
        "cpu" => Ok(BackendKind::Cpu),
        "cuda" => Ok(BackendKind::Cuda),
        "mlx" => Ok(BackendKind::Mlx),
        other => Err(format!(
            "unknown backend '{other}' (expected 'auto', 'cpu', 'cuda' or 'mlx')"
        )),
    }
}

fn parse_dtype(name: &str) -> std::result::Result<Precision, String> {
    match name {
        "float32" => Ok(Precision::Float32),
        "float16" => Ok(Precision::Float16),
        "int8" => Ok(Precision::Int8),
        "bfloat16" => Ok(Precision::BFloat16),
        other => Err(format!(
            "unknown dtype '{other}' (expected 'float32', 'float16', 'bfloat16' or 'int8')"
        )),
    }
}

fn parse_int8_scheme(name: Option<&str>) -> std::result::Result<Int8Scheme, String> {
    match name.unwrap_or("auto") {
        "auto" => Ok(Int8Scheme::for_this_cpu()),
        "s8" => Ok(Int8Scheme::SignedWeights),
        "s8a7" => Ok(Int8Scheme::SignedWeightsNarrowActivations),
        "u8" => Ok(Int8Scheme::UnsignedWeights),
        other => Err(format!(
            "unknown int8Scheme '{other}' (expected 'auto', 's8', 's8a7' or 'u8')"
        )),
    }
}

fn parse_attention(name: &str) -> std::result::Result<AttentionDirection, String> {
    match name {
        "causal" => Ok(AttentionDirection::Causal),
        "bidirectional" => Ok(AttentionDirection::Bidirectional),
        other => Err(format!(
            "unknown attention '{other}' (expected 'causal' or 'bidirectional')"
        )),
    }
}

fn parse_weights(name: Option<&str>) -> std::result::Result<WeightsKind, String> {
    match name.unwrap_or("auto") {
        "auto" => Ok(WeightsKind::Auto),
        "safetensors" => Ok(WeightsKind::Safetensors),
        "onnx" => Ok(WeightsKind::Onnx),
        other => Err(format!(
            "unknown weights '{other}' (expected 'auto', 'safetensors' or 'onnx')"
        )),
    }
}

/// `4000000000`, `4GB` (10^9), `4GiB` (2^30), `512 MB`, `1.5GB`: a positive whole number of bytes.
pub fn parse_bytes(text: &str) -> std::result::Result<u64, String> {
    let bad = || {
        format!("gpuMemoryLimit \"{text}\" is not a size (expected bytes, or a number with KB, MB, GB, KiB, MiB or GiB)")
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0f64.powi(4),
        _ => return Err(bad()),
    };
    let bytes = number.parse::<f64>().map_err(|_| bad())? * scale;
    if !(bytes >= 1.0 && bytes.fract() == 0.0 && bytes < u64::MAX as f64) {
        return Err(bad());
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(options: Options, vars: &[(&str, &str)]) -> Result<Settings> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::resolve(&options, |name| vars.get(name).cloned())
    }

    #[test]
    fn nothing_given_means_defaults_from_nowhere() {
        let s = resolve(Options::default(), &[]).unwrap();
        assert_eq!(s.backend, BackendKind::Auto);
        assert_eq!(
            (
                s.dtype,
                s.threads,
                s.max_length,
                s.batch_tokens,
                s.gpu_memory_limit
            ),
            (None, None, None, None, None)
        );
        assert_eq!(s.sources, Sources::default());
    }

    #[test]
    fn every_variable_is_read_and_its_source_kept() {
        let s = resolve(
            Options::default(),
            &[
                (ENV_BACKEND, "cpu"),
                (ENV_DTYPE, "int8"),
                (ENV_THREADS, "3"),
                (ENV_MAX_LENGTH, "64"),
                (ENV_BATCH_TOKENS, "512"),
                (ENV_GPU_MEMORY_LIMIT, "2GiB"),
            ],
        )
        .unwrap();
        assert_eq!(s.backend, BackendKind::Cpu);
        assert_eq!(s.dtype, Some(Precision::Int8));
        assert_eq!(
            (s.threads, s.max_length, s.batch_tokens),
            (Some(3), Some(64), Some(512))
        );
        assert_eq!(s.gpu_memory_limit, Some(2 << 30));
        let all_env = Sources {
            backend: Source::Env,
            dtype: Source::Env,
            threads: Source::Env,
            max_length: Source::Env,
            batch_tokens: Source::Env,
            gpu_memory_limit: Source::Env,
        };
        assert_eq!(s.sources, all_env);
    }

    #[test]
    fn options_in_code_win_over_the_environment() {
        let options = Options {
            backend: Some("cuda".into()),
            threads: Some(1),
            gpu_memory_limit: Some("1000".into()),
            ..Options::default()
        };
        let s = resolve(
            options,
            &[
                (ENV_BACKEND, "cpu"),
                (ENV_THREADS, "7"),
                (ENV_GPU_MEMORY_LIMIT, "5GB"),
            ],
        )
        .unwrap();
        assert_eq!(
            (s.backend, s.threads, s.gpu_memory_limit),
            (BackendKind::Cuda, Some(1), Some(1000))
        );
        assert_eq!(
            (s.sources.backend, s.sources.threads),
            (Source::Option, Source::Option)
        );
    }

    #[test]
    fn a_malformed_variable_is_an_error_naming_it() {
        for (var, value) in [
            (ENV_BACKEND, "tpu"),
            (ENV_DTYPE, "bf16"),
            (ENV_THREADS, "two"),
            (ENV_THREADS, "0"),
            (ENV_MAX_LENGTH, "-1"),
            (ENV_BATCH_TOKENS, "1e3"),
            (ENV_GPU_MEMORY_LIMIT, "lots"),
        ] {
            let error = resolve(Options::default(), &[(var, value)]).unwrap_err();
            assert_eq!(error.code(), "ERR_ENV", "{var}={value}");
            assert!(error.to_string().starts_with(var), "{error}");
        }
    }

    #[test]
    fn a_malformed_variable_is_ignored_when_the_option_is_given() {
        let options = Options {
            threads: Some(2),
            ..Options::default()
        };
        assert_eq!(
            resolve(options, &[(ENV_THREADS, "two")]).unwrap().threads,
            Some(2)
        );
    }

    #[test]
    fn sizes_parse_in_decimal_and_binary_units() {
        assert_eq!(parse_bytes("4GB"), Ok(4_000_000_000));
        assert_eq!(parse_bytes("4 GiB"), Ok(4 << 30));
        assert_eq!(parse_bytes("512mb"), Ok(512_000_000));
        assert_eq!(parse_bytes("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse_bytes("123"), Ok(123));
        for bad in ["", "0", "GB", "4XB", "1.5", "-4GB"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }
}
