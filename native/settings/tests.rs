//! Options and variables resolved into settings: precedence, sources and malformed values.
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
        backend: Some(BackendKind::Cuda),
        threads: Some(1),
        gpu_memory_limit: Some(Either::B("1000".into())),
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
        (ENV_VECTOR_CACHE_MAX_BYTES, "big"),
    ] {
        let cache_on = (ENV_VECTOR_CACHE, "/tmp/v.sqlite");
        let error = resolve(Options::default(), &[(var, value), cache_on]).unwrap_err();
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
