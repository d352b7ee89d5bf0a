//! The values of the options that name one of a few choices, each with one table of names: the
//! same names in JavaScript (string enums), in `SEMANTIC_SEARCH_*` variables, in `info()` and in
//! error messages.
use napi_derive::napi;

use crate::arch::AttentionDirection;
use crate::pooling::Pooling;

/// A value of an option, named as JavaScript and the environment name it.
pub trait Choice: Copy + PartialEq + Sized + 'static {
    /// The option's name in messages.
    const OPTION: &'static str;
    const NAMES: &'static [(&'static str, Self)];

    /// The value `name` names, or an error listing the names.
    fn parse(name: &str) -> Result<Self, String> {
        match Self::NAMES.iter().find(|(n, _)| *n == name) {
            Some((_, value)) => Ok(*value),
            None => Err(format!(
                "unknown {} '{name}' (expected {})",
                Self::OPTION,
                listed(Self::NAMES.iter().map(|(n, _)| *n))
            )),
        }
    }

    fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, value)| *value == self)
            .map_or("unknown", |(n, _)| n)
    }
}

/// `'a', 'b' or 'c'`.
fn listed<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = names.map(|n| format!("'{n}'")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.join(""),
    }
}

/// Where a model runs.
#[napi(string_enum = "lowercase", js_name = "Backend")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// MLX on Apple Silicon; elsewhere CUDA when usable, else the CPU.
    Auto,
    Cpu,
    Cuda,
    Mlx,
}

impl Choice for BackendKind {
    const OPTION: &'static str = "backend";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("auto", Self::Auto),
        ("cpu", Self::Cpu),
        ("cuda", Self::Cuda),
        ("mlx", Self::Mlx),
    ];
}

/// How the projection weights are stored and multiplied (the `dtype` option).
#[napi(string_enum = "lowercase", js_name = "Dtype")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    Float32,
    /// Projection weights quantised to 8 bits per output column at build time, activations
    /// per row (token) as they come; attention and norms stay float32 (see `Int8Scheme`).
    Int8,
    /// Weights and activations in half precision (for CUDA's tensor cores); LayerNormalization
    /// computes in float32 (its default stash type), and pooling runs on a float32 copy of the
    /// last hidden states.
    Float16,
    /// bfloat16 weights and activations: MLX only (Apple GPUs run it natively).
    BFloat16,
}

impl Choice for Precision {
    const OPTION: &'static str = "dtype";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("float32", Self::Float32),
        ("float16", Self::Float16),
        ("bfloat16", Self::BFloat16),
        ("int8", Self::Int8),
    ];
}

/// Which weights run.
#[napi(string_enum = "lowercase", js_name = "Weights")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsKind {
    /// `model.safetensors` when present, else the ONNX file.
    Auto,
    Safetensors,
    Onnx,
}

impl Choice for WeightsKind {
    const OPTION: &'static str = "weights";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("auto", Self::Auto),
        ("safetensors", Self::Safetensors),
        ("onnx", Self::Onnx),
    ];
}

/// The `int8Scheme` option: a scheme, or `auto` (the one this CPU runs fastest).
#[napi(string_enum = "lowercase", js_name = "Int8Scheme")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int8SchemeOption {
    Auto,
    S8,
    S8a7,
    U8,
}

impl Choice for Int8SchemeOption {
    const OPTION: &'static str = "int8Scheme";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("auto", Self::Auto),
        ("s8", Self::S8),
        ("s8a7", Self::S8a7),
        ("u8", Self::U8),
    ];
}

impl Choice for AttentionDirection {
    const OPTION: &'static str = "attention";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("causal", Self::Causal),
        ("bidirectional", Self::Bidirectional),
    ];
}

impl Choice for Pooling {
    const OPTION: &'static str = "pooling";
    const NAMES: &'static [(&'static str, Self)] = &[
        ("cls", Self::Cls),
        ("mean", Self::Mean),
        ("lasttoken", Self::LastToken),
    ];
}

/// Where a setting's value came from.
#[napi(string_enum = "lowercase")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    Option,
    Env,
    #[default]
    Default,
}

/// Where each setting came from: the options, a `SEMANTIC_SEARCH_*` variable, or the default.
#[napi(object, js_name = "ConfigSources")]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sources {
    #[napi(ts_type = "`${Source}`")]
    pub backend: Source,
    #[napi(ts_type = "`${Source}`")]
    pub dtype: Source,
    #[napi(ts_type = "`${Source}`")]
    pub threads: Source,
    #[napi(ts_type = "`${Source}`")]
    pub max_length: Source,
    #[napi(ts_type = "`${Source}`")]
    pub batch_tokens: Source,
    #[napi(ts_type = "`${Source}`")]
    pub gpu_memory_limit: Source,
}

/// `4000000000`, `4GB` (10^9), `4GiB` (2^30), `512 MB`, `1.5GB`: a positive whole number of bytes.
pub fn parse_bytes(text: &str) -> std::result::Result<u64, String> {
    parse_size("gpuMemoryLimit", text)
}

/// A size, named `name` in its error.
pub fn parse_size(name: &str, text: &str) -> std::result::Result<u64, String> {
    let bad = || {
        format!("{name} \"{text}\" is not a size (expected bytes, or a number with KB, MB, GB, KiB, MiB or GiB)")
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

    #[test]
    fn names_parse_back_to_their_values_and_unknown_ones_list_them_all() {
        for (name, value) in Precision::NAMES {
            assert_eq!(Precision::parse(name), Ok(*value));
            assert_eq!(value.name(), *name);
        }
        assert_eq!(
            BackendKind::parse("tpu").unwrap_err(),
            "unknown backend 'tpu' (expected 'auto', 'cpu', 'cuda' or 'mlx')"
        );
        assert_eq!(
            AttentionDirection::parse("x").unwrap_err(),
            "unknown attention 'x' (expected 'causal' or 'bidirectional')"
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
