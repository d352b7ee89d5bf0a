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
    device: u32,
) -> crate::error::Result<SessionBuilder> {
    let mut cuda = CUDA::default().with_device_id(i32::try_from(device).unwrap_or(i32::MAX));
    if let Some(limit) = memory_limit {
        log::info!(backend = "cuda", bytes = limit; "gpu_memory_limit");
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
    let builder = with_cuda(
        super::plan::session_builder(&runtime.env, Some(1))?,
        None,
        0,
    )?;
    super::graph::identity_model()?.into_session(&builder)?;
    Ok(())
}

/// A device index past the CUDA devices the driver reports is refused, naming how many there
/// are; where the driver cannot be asked, ONNX Runtime's own error says it.
pub fn check_device(device: u32) -> crate::error::Result<()> {
    match device_count() {
        Ok(count) if device >= count => Err(crate::error::Error::BackendUnavailable(format!(
            "device cuda:{device} was asked for, but the NVIDIA driver reports {count} CUDA device{}{}; see `npm run doctor`",
            if count == 1 { "" } else { "s" },
            match count {
                0 => String::new(),
                n => format!(" (cuda:0 to cuda:{})", n - 1),
            }
        ))),
        Ok(_) => Ok(()),
        Err(why) if device > 0 => Err(crate::error::Error::BackendUnavailable(format!(
            "device cuda:{device} was asked for, but there are 0 CUDA devices: {why}"
        ))),
        Err(_) => Ok(()),
    }
}

/// How many CUDA devices the NVIDIA driver (libcuda) reports; why it cannot be asked.
pub fn device_count() -> std::result::Result<u32, String> {
    #[cfg(unix)]
    {
        // SAFETY: dlopen/dlsym with NUL-terminated names; the two functions are called with the
        // signatures of CUDA's driver API (cuInit(unsigned), cuDeviceGetCount(int*)); the
        // library stays loaded (it is never closed), as CUDA expects.
        unsafe {
            let name = if cfg!(target_os = "macos") {
                c"libcuda.dylib"
            } else {
                c"libcuda.so.1"
            };
            let lib = libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
            if lib.is_null() {
                return Err("no NVIDIA driver found (libcuda.so.1 could not be loaded)".into());
            }
            let init = libc::dlsym(lib, c"cuInit".as_ptr());
            let count = libc::dlsym(lib, c"cuDeviceGetCount".as_ptr());
            if init.is_null() || count.is_null() {
                return Err("the NVIDIA driver library lacks cuInit/cuDeviceGetCount".into());
            }
            let init: extern "C" fn(u32) -> i32 = std::mem::transmute(init);
            let get_count: extern "C" fn(*mut i32) -> i32 = std::mem::transmute(count);
            let status = init(0);
            if status != 0 {
                return Err(format!(
                    "the NVIDIA driver did not start (cuInit error {status})"
                ));
            }
            let mut n = 0i32;
            match get_count(&mut n) {
                0 => Ok(u32::try_from(n).unwrap_or(0)),
                status => Err(format!("cuDeviceGetCount failed with error {status}")),
            }
        }
    }
    #[cfg(not(unix))]
    Err("counting CUDA devices is not supported on this system".into())
}
