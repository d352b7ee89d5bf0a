//! The settings of a model in a service: which CUDA device it runs on, and whether a failing
//! GPU hands its calls to the CPU.
use crate::error::{Error, Result};

pub const ENV_GPU_DEVICE: &str = "SEMANTIC_SEARCH_GPU_DEVICE";
pub const ENV_CPU_FALLBACK: &str = "SEMANTIC_SEARCH_CPU_FALLBACK";

/// The CUDA device's index from `device` (`'cuda:1'`), else `SEMANTIC_SEARCH_GPU_DEVICE` (`1` or
/// `cuda:1`); `None`: not asked for (device 0 when CUDA runs).
pub fn gpu_device(
    option: Option<&str>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<u32>> {
    match (option, env(ENV_GPU_DEVICE)) {
        (Some(given), _) => device_index(given).map(Some).map_err(Error::Input),
        (None, Some(var)) => device_index(&var)
            .map(Some)
            .map_err(|e| env_error(ENV_GPU_DEVICE, e)),
        (None, None) => Ok(None),
    }
}

fn device_index(text: &str) -> std::result::Result<u32, String> {
    let trimmed = text.trim();
    let index = trimmed.strip_prefix("cuda:").unwrap_or(trimmed);
    index.parse::<u32>().map_err(|_| {
        format!("device \"{text}\" is not a CUDA device: use 'cuda:N' (N = 0, 1, ...), as nvidia-smi numbers them")
    })
}

/// `cpuFallback`, else `SEMANTIC_SEARCH_CPU_FALLBACK` (`true`/`false`, `1`/`0`, `on`/`off`,
/// `yes`/`no`); off by default.
pub fn cpu_fallback(option: Option<bool>, env: &impl Fn(&str) -> Option<String>) -> Result<bool> {
    if let Some(given) = option {
        return Ok(given);
    }
    let Some(text) = env(ENV_CPU_FALLBACK) else {
        return Ok(false);
    };
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "on" | "yes" => Ok(true),
        "false" | "0" | "off" | "no" => Ok(false),
        _ => Err(env_error(
            ENV_CPU_FALLBACK,
            format!("is \"{text}\", expected true or false"),
        )),
    }
}

fn env_error(var: &str, what: String) -> Error {
    Error::Env {
        var: var.into(),
        what: format!("{what}; fix or unset the variable"),
    }
}
