//! Finds and loads the ONNX Runtime library, once per process. Nothing is downloaded: the library
//! comes from the caller, `ORT_DYLIB_PATH`, a copy this process already loaded, the user's
//! `onnxruntime-node` npm package, the copy our platform package ships beside the `.node`, or the
//! system. The first three keep one ONNX Runtime per process when the user's code also runs
//! `onnxruntime-node` (two copies in one process crash).
use std::path::{Path, PathBuf};

use once_cell::sync::OnceCell;
use ort::environment::{Environment, GlobalThreadPoolOptions};

use crate::error::{Error, Result};

pub struct Runtime {
    pub env: Environment,
    pub library: PathBuf,
    pub version: String,
    /// Intra-op threads of the pool that every session shares unless it asked for its own.
    pub shared_threads: usize,
}

static RUNTIME: OnceCell<Runtime> = OnceCell::new();

/// The process's ONNX Runtime, loaded on first use from the first place that works.
pub fn runtime(requested: Option<&Path>) -> Result<&'static Runtime> {
    if let Some(loaded) = RUNTIME.get() {
        return match requested {
            Some(path) if !same_file(path, &loaded.library) => Err(Error::OrtLibrary(format!(
                "ONNX Runtime is already loaded from {} and a process can hold only one; \
                 restart the process to use {}",
                loaded.library.display(),
                path.display()
            ))),
            _ => Ok(loaded),
        };
    }
    RUNTIME.get_or_try_init(|| load_first(&candidates(requested)))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Where to look, in order, each with the reason it is on the list.
fn candidates(requested: Option<&Path>) -> Vec<(PathBuf, &'static str)> {
    let mut list = Vec::new();
    if let Some(path) = requested {
        list.push((path.to_path_buf(), "ortLibrary option"));
    }
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        list.push((PathBuf::from(path), "ORT_DYLIB_PATH"));
    }
    for lib in loaded_libraries() {
        list.push((lib, "already loaded in this process"));
    }
    for root in search_roots() {
        if let Some(lib) = onnxruntime_node_library(&root) {
            list.push((lib, "onnxruntime-node package"));
        }
    }
    if let Some(lib) = addon_dir().and_then(|dir| library_in(&dir)) {
        list.push((lib, "shipped with this addon"));
    }
    for name in system_library_names() {
        list.push((PathBuf::from(name), "system library"));
    }
    list.dedup_by(|a, b| a.0 == b.0);
    list
}

fn load_first(candidates: &[(PathBuf, &'static str)]) -> Result<Runtime> {
    let mut tried = Vec::new();
    for (path, source) in candidates {
        if path.components().count() > 1 && !path.exists() {
            tried.push(format!("{} ({source}): no such file", path.display()));
            continue;
        }
        let started = std::time::Instant::now();
        match load(path) {
            Ok(runtime) => {
                let seconds = started.elapsed().as_secs_f64();
                log::info!(library:% = path.display(), version = runtime.version.as_str(), source = *source, seconds; "ort_library");
                return Ok(runtime);
            }
            Err(e) => {
                log::debug!(library:% = path.display(), source = *source, reason = e.as_str(); "ort_library_failed");
                tried.push(format!("{} ({source}): {e}", path.display()))
            }
        }
    }
    Err(Error::OrtLibrary(format!(
        "could not load the ONNX Runtime library. Tried:\n  {}\nReinstall semantic-search-native \
         (its platform package ships ONNX Runtime), or pass ortLibrary / set ORT_DYLIB_PATH to a \
         libonnxruntime of version 1.30 or later.",
        tried.join("\n  ")
    )))
}

/// One intra-op pool for the process, a thread per physical core: models that run at once
/// share it instead of each starting a thread per core.
fn load(path: &Path) -> std::result::Result<Runtime, String> {
    let shared_threads = crate::cpu::physical_cores();
    // After `init_from`: creating the pool's options calls into the library it loads.
    let builder = ort::init_from(path).map_err(|e| e.to_string())?;
    let pool = GlobalThreadPoolOptions::default()
        .with_intra_threads(shared_threads)
        .and_then(|p| p.with_inter_threads(1))
        .map_err(|e| e.to_string())?;
    let env = builder
        .with_name("semantic-search-native")
        .with_global_thread_pool(pool)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Runtime {
        env,
        library: path.to_path_buf(),
        version: library_version(path),
        shared_threads,
    })
}

/// Folders from which to look for `node_modules/onnxruntime-node`: this addon's own folder
/// (where npm puts our dependency) and the working directory, each walked up to the root.
fn search_roots() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = addon_dir().into_iter().collect();
    roots.extend(std::env::current_dir().ok());
    let mut all = Vec::new();
    for root in roots {
        for dir in root.ancestors() {
            if !all.iter().any(|d: &PathBuf| d == dir) {
                all.push(dir.to_path_buf());
            }
        }
    }
    all
}

fn onnxruntime_node_library(root: &Path) -> Option<PathBuf> {
    let (os, arch) = (node_platform(), node_arch());
    let bin = root.join("node_modules/onnxruntime-node/bin");
    let mut napi_dirs: Vec<PathBuf> = std::fs::read_dir(&bin)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    napi_dirs.sort();
    napi_dirs
        .into_iter()
        .rev()
        .find_map(|napi| library_in(&napi.join(os).join(arch)))
}

/// The ONNX Runtime library in `dir`, if one is there.
fn library_in(dir: &Path) -> Option<PathBuf> {
    let mut libs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| is_onnxruntime_library(p))
        .collect();
    libs.sort();
    libs.into_iter().next()
}

/// ONNX Runtime libraries already mapped into this process (by `onnxruntime-node`, say): using
/// the same file keeps one copy. Linux reads the process's own memory map; elsewhere none.
#[cfg(target_os = "linux")]
fn loaded_libraries() -> Vec<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut found: Vec<PathBuf> = Vec::new();
    for path in maps.lines().filter_map(|l| l.split_whitespace().nth(5)) {
        let path = PathBuf::from(path);
        if path.is_absolute() && is_onnxruntime_library(&path) && !found.contains(&path) {
            found.push(path);
        }
    }
    found
}

#[cfg(not(target_os = "linux"))]
fn loaded_libraries() -> Vec<PathBuf> {
    Vec::new()
}

fn is_onnxruntime_library(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let stem = format!("{}onnxruntime", std::env::consts::DLL_PREFIX);
    let rest = name.strip_prefix(&stem).unwrap_or("x");
    // libonnxruntime.so.1, libonnxruntime.1.30.0.dylib, onnxruntime.dll; not the providers' libraries
    (rest.starts_with('.') || rest.is_empty()) && name.contains(std::env::consts::DLL_SUFFIX)
}

fn node_platform() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        other => other,
    }
}

fn node_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn system_library_names() -> Vec<String> {
    let (prefix, suffix) = (std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    let mut names = vec![format!("{prefix}onnxruntime{suffix}")];
    if cfg!(target_os = "linux") {
        names.push(format!("{prefix}onnxruntime{suffix}.1"));
    }
    names
}

#[cfg(unix)]
fn addon_dir() -> Option<PathBuf> {
    use std::ffi::CStr;
    // The folder of the shared object that holds this function: the `.node` file under Node.
    // SAFETY: `Dl_info` is a plain C struct of pointers, for which all zeroes is a valid value.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: `dladdr` only reads the address (a function of this object) and writes `info`.
    let found = unsafe { libc::dladdr(addon_dir as *const libc::c_void, &mut info) };
    if found == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: on success `dli_fname` is a NUL-terminated path owned by the loader, alive while
    // the object stays loaded (this function's own object), and copied out at once.
    let file = unsafe { CStr::from_ptr(info.dli_fname) }
        .to_string_lossy()
        .into_owned();
    Path::new(&file)
        .canonicalize()
        .ok()?
        .parent()
        .map(Path::to_path_buf)
}

#[cfg(not(unix))]
fn addon_dir() -> Option<PathBuf> {
    None
}

/// The loaded library's own version string (`OrtGetApiBase()->GetVersionString()`).
#[cfg(unix)]
fn library_version(path: &Path) -> String {
    use std::ffi::{CStr, CString};
    use std::os::unix::ffi::OsStrExt;
    let Ok(name) = CString::new(path.as_os_str().as_bytes()) else {
        return "unknown".into();
    };
    // SAFETY: `name` is a NUL-terminated path; RTLD_NOLOAD opens nothing new, it only takes
    // another reference to the library `ort` loaded, released below; `OrtGetApiBase` has this
    // signature in every ONNX Runtime (its C API's one stable entry point), and the version
    // string it points to is static in the library, copied before the reference is dropped.
    unsafe {
        // RTLD_NOLOAD: the library is already loaded by `ort`; this only takes another reference.
        let handle = libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD);
        if handle.is_null() {
            return "unknown".into();
        }
        let symbol = libc::dlsym(handle, c"OrtGetApiBase".as_ptr());
        let version = if symbol.is_null() {
            "unknown".into()
        } else {
            let get_base: unsafe extern "C" fn() -> *const ort::sys::OrtApiBase =
                std::mem::transmute(symbol);
            let base = get_base();
            CStr::from_ptr(((*base).GetVersionString)())
                .to_string_lossy()
                .into_owned()
        };
        libc::dlclose(handle);
        version
    }
}

#[cfg(not(unix))]
fn library_version(_path: &Path) -> String {
    "unknown".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_libraries_are_not_taken_for_the_runtime() {
        let so = std::env::consts::DLL_SUFFIX;
        let p = std::env::consts::DLL_PREFIX;
        assert!(is_onnxruntime_library(Path::new(&format!(
            "{p}onnxruntime{so}"
        ))));
        assert!(!is_onnxruntime_library(Path::new(&format!(
            "{p}onnxruntime_providers_cuda{so}"
        ))));
        assert!(!is_onnxruntime_library(Path::new(
            "onnxruntime_binding.node"
        )));
    }
}
