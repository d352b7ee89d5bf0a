//! The vector cache's settings: a leaf, so that `settings` can hold them.
use std::path::PathBuf;
use std::time::Duration;

/// Where the cache file is and how it behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheConfig {
    pub path: PathBuf,
    pub max_bytes: u64,
    /// How long a write waits for another process's write before the call goes on without it.
    pub busy: Duration,
}

/// Default size limit: 1 GB, about 240,000 vectors of 768 floats (4.1 KB each in the file).
pub const DEFAULT_MAX_BYTES: u64 = 1_000_000_000;
pub const DEFAULT_BUSY: Duration = Duration::from_secs(5);
