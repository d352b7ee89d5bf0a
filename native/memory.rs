//! Heap policy for a process that loads and frees models of hundreds of megabytes.

/// Large blocks (weights, activations) get their own mappings, returned to the system when
/// freed. glibc otherwise raises its mmap threshold after the first such free (up to 32 MiB),
/// and later weights land in per-thread heaps that fragment (a load/close cycle then kept memory
/// resident: benchmark/README.md). Fixing the threshold at glibc's own default (128 KiB) turns
/// the adjustment off. This is process-wide: the README says so. Runs once.
pub fn keep_large_blocks_mapped() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        // SAFETY: mallopt only sets a glibc tunable; M_MMAP_THRESHOLD with a value within its
        // documented range has no other effect, and glibc serialises it with allocation.
        ONCE.call_once(|| unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        });
    }
}

/// Hands freed heap pages back to the system after a model is dropped.
pub fn release_free_memory() {
    // SAFETY: malloc_trim only returns free pages of glibc's heaps to the system; it takes
    // glibc's own locks and touches no memory in use.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The process's resident memory in bytes, where the system says it cheaply (Linux's
/// `/proc/self/statm`); `None` elsewhere.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}
