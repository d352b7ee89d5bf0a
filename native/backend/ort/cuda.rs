//! ONNX Runtime's CUDA execution provider: registered with failure reported, never swallowed,
//! so that the addon knows, and says, whether the GPU really runs the model.
use ort::ep::{ArenaExtendStrategy, ExecutionProvider, CUDA};
use ort::session::builder::SessionBuilder;

use super::runtime::Runtime;

/// Names of the execution providers the loaded ONNX Runtime library offers.
pub fn available_providers() -> Vec<String> {
    let api = ort::api();
    let mut names: *mut *mut std::ffi::c_char = std::ptr::null_mut();
    let mut count = 0;
    // SAFETY: the out-pointers are valid; the list is released below with its own count.
    unsafe {
        let status = (api.GetAvailableProviders)(&mut names, &mut count);
        if !status.0.is_null() || names.is_null() {
            if !status.0.is_null() {
                (api.ReleaseStatus)(status.0);
            }
            return Vec::new();
        }
        let list = (0..count as usize)
            .map(|i| {
                std::ffi::CStr::from_ptr(*names.add(i))
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let _ = (api.ReleaseAvailableProviders)(names, count);
        list
    }
}

/// Why the CUDA provider cannot be used with this library, or `None` when it is offered.
pub fn missing_provider(runtime: &Runtime) -> Option<String> {
    match CUDA::is_available() {
        Ok(true) => None,
        _ => Some(format!(
            "the ONNX Runtime library {} (version {}) has no CUDA execution provider (it offers {}); \
             point ortLibrary or ORT_DYLIB_PATH at a GPU build of ONNX Runtime",
            runtime.library.display(),
            runtime.version,
            available_providers().join(", ")
        )),
    }
}

/// `builder` with the CUDA provider registered; an error if it could not be. A memory limit
/// caps CUDA's arena, which then grows by what each allocation asks rather than doubling.
pub fn with_cuda(
    builder: SessionBuilder,
    memory_limit: Option<u64>,
) -> crate::error::Result<SessionBuilder> {
    let mut cuda = CUDA::default();
    if let Some(limit) = memory_limit {
        cuda = cuda
            .with_memory_limit(usize::try_from(limit).unwrap_or(usize::MAX))
            .with_arena_extend_strategy(ArenaExtendStrategy::SameAsRequested);
    }
    Ok(builder.with_execution_providers([cuda.build().error_on_failure()])?)
}

/// Why CUDA cannot run models with this library on this machine, or `None` when it can:
/// the provider is offered, and a one-node session on it starts.
pub fn unusable_reason(runtime: &Runtime) -> Option<String> {
    if let Some(reason) = missing_provider(runtime) {
        return Some(reason);
    }
    identity_session(runtime)
        .err()
        .map(|e| failed_to_start(&e.to_string()))
}

/// One line, with what to do: ONNX Runtime's messages span lines and name no remedy.
pub fn failed_to_start(error: &str) -> String {
    format!(
        "the CUDA execution provider failed to start: {} (install ONNX Runtime's CUDA provider libraries, \
         e.g. from PyPI onnxruntime-gpu, and point ortLibrary or ORT_DYLIB_PATH at that libonnxruntime)",
        error.split_whitespace().collect::<Vec<_>>().join(" ")
    )
}

fn identity_session(runtime: &Runtime) -> crate::error::Result<()> {
    let builder = with_cuda(super::plan::session_builder(&runtime.env, Some(1))?, None)?;
    super::graph::identity_model()?.into_session(&builder)?;
    Ok(())
}
