//! The vector cache: vectors a model already computed, kept in a SQLite file and found again by
//! (the model and everything that shapes its vectors, the call's prompt and task, the text), so
//! that re-indexing embeds only what changed. It never fails a call: trouble with the file
//! turns it off or skips it for the call, and `note` says why.
pub mod config;
mod identity;
mod store;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use xxhash_rust::xxh3::xxh3_128;

use crate::choices::Choice;
use crate::info::Info;
use crate::weights::Safetensors;
use store::{now_ms, Store, Trouble};

pub use config::{CacheConfig, DEFAULT_BUSY, DEFAULT_MAX_BYTES};
pub use identity::onnx_files;
pub use store::SCHEMA_VERSION;

enum State {
    Open(Store),
    /// Not open now (another process held it): tried again on the next call.
    Closed,
    /// Cannot be used (its folder cannot be written, the model's files cannot be read).
    Off,
}

pub struct VectorCache {
    config: CacheConfig,
    /// The model's identity and every setting that shapes its vectors, hashed.
    model: u128,
    /// Floats per stored vector: the model's, before any `dimensions` cut.
    width: usize,
    state: Mutex<State>,
    note: Mutex<Option<String>>,
    bytes: AtomicU64,
}

/// One call's keys and the vectors found for them.
pub struct Lookup {
    keys: Vec<[u8; 32]>,
    found: Vec<Option<Vec<f32>>>,
}

impl VectorCache {
    /// The cache of the model at `snapshot` (running `weights`), with `settings`: every
    /// setting that changes its vectors, as bytes.
    pub fn open(
        config: CacheConfig,
        snapshot: &Path,
        weights: &[PathBuf],
        settings: &[u8],
        width: usize,
    ) -> VectorCache {
        VectorCache::open_as(config, width, |store| {
            let mut bytes = match identity::hub_commit(snapshot) {
                Some(commit) => commit.into_bytes(),
                None => {
                    identity::content_hashes(&identity::shaping_files(snapshot, weights), store)?
                }
            };
            bytes.extend_from_slice(settings);
            Ok(bytes)
        })
    }

    /// The cache of a model that `identity` names on its own: a remote server's API, URL, model
    /// id and revision.
    pub fn for_identity(config: CacheConfig, identity: &[u8], width: usize) -> VectorCache {
        VectorCache::open_as(config, width, |_| Ok(identity.to_vec()))
    }

    fn open_as(
        config: CacheConfig,
        width: usize,
        identify: impl FnOnce(Option<&Store>) -> std::io::Result<Vec<u8>>,
    ) -> VectorCache {
        let mut cache = VectorCache {
            config,
            model: 0,
            width,
            state: Mutex::new(State::Closed),
            note: Mutex::new(None),
            bytes: AtomicU64::new(0),
        };
        let mut state = cache.open_store();
        let store = match &state {
            State::Open(store) => Some(store),
            _ => None,
        };
        match identify(store) {
            Ok(bytes) => cache.model = xxh3_128(&bytes),
            Err(e) => {
                cache.say(format!("the vector cache is off: the model's files could not be read to identify it ({e})"));
                state = State::Off;
            }
        }
        if let State::Open(store) = &state {
            cache.bytes.store(store.bytes().unwrap_or(0), Relaxed);
        }
        cache.state = Mutex::new(state);
        cache
    }

    pub fn path(&self) -> &Path {
        &self.config.path
    }

    /// Why the cache was off, skipped or restarted, the last time it was.
    pub fn note(&self) -> Option<String> {
        self.note.lock().ok().and_then(|n| n.clone())
    }

    /// The bytes of the file's pages in use, as of the last call.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Relaxed)
    }

    /// The vectors stored for `texts` embedded with `prompt` and `task`; none when the file
    /// cannot be read now.
    pub fn lookup(&self, texts: &[String], prompt: &str, task: Option<i64>) -> Lookup {
        let call = self.call_key(prompt, task);
        let keys: Vec<[u8; 32]> = texts
            .iter()
            .map(|text| {
                let mut key = [0u8; 32];
                key[..16].copy_from_slice(&call.to_le_bytes());
                key[16..].copy_from_slice(&xxh3_128(text.as_bytes()).to_le_bytes());
                key
            })
            .collect();
        let bytes = self.width * 4;
        let found = self
            .with_store(|store| store.read(&keys, bytes))
            .unwrap_or_else(|| vec![None; keys.len()]);
        Lookup { keys, found }
    }

    /// Keeps the vectors computed for the lookup's misses (`width` floats each, in order) and
    /// marks its hits used; then evicts down to the size limit.
    pub fn keep(&self, lookup: &Lookup, computed: &[f32]) {
        let misses = lookup.misses();
        let new: Vec<([u8; 32], &[f32])> = misses
            .iter()
            .zip(computed.chunks_exact(self.width))
            .map(|(&i, vector)| (lookup.keys[i], vector))
            .collect();
        let read: Vec<[u8; 32]> = (0..lookup.keys.len())
            .filter(|&i| lookup.found[i].is_some())
            .map(|i| lookup.keys[i])
            .collect();
        let max = self.config.max_bytes;
        let bytes = self.with_store(|store| {
            store.write(&new, &read)?;
            store.evict(max)?;
            store.bytes()
        });
        if let Some(bytes) = bytes {
            self.bytes.store(bytes, Relaxed);
        }
    }

    fn call_key(&self, prompt: &str, task: Option<i64>) -> u128 {
        let mut parts = self.model.to_le_bytes().to_vec();
        parts.extend_from_slice(&(prompt.len() as u64).to_le_bytes());
        parts.extend_from_slice(prompt.as_bytes());
        parts.extend_from_slice(format!("task:{task:?}").as_bytes());
        xxh3_128(&parts)
    }

    /// Runs `f` on the open file (opening it first when closed); on trouble, says so and
    /// returns `None`: a damaged file is moved aside, a busy one skipped for this call.
    fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> rusqlite::Result<T>) -> Option<T> {
        let mut state = self.state.lock().ok()?;
        if let State::Closed = *state {
            *state = self.open_store();
        }
        let State::Open(store) = &mut *state else {
            return None;
        };
        match f(store).map_err(Trouble::of) {
            Ok(value) => Some(value),
            Err(Trouble::Busy(why)) => {
                self.say(format!("the vector cache was skipped for a call: {why}"));
                None
            }
            Err(trouble) => {
                *state = State::Closed;
                if let Trouble::Damaged(why) = &trouble {
                    self.move_aside(why);
                } else {
                    self.say(format!(
                        "the vector cache was skipped for a call: {}",
                        trouble.message()
                    ));
                }
                None
            }
        }
    }

    fn open_store(&self) -> State {
        let path = &self.config.path;
        if let Some(folder) = path.parent() {
            if let Err(e) = std::fs::create_dir_all(folder) {
                self.say(format!(
                    "the vector cache is off: its folder {} cannot be made ({e})",
                    folder.display()
                ));
                return State::Off;
            }
        }
        let opened = match Store::open(path, self.config.busy) {
            Err(Trouble::Damaged(why)) => {
                self.move_aside(&why);
                Store::open(path, self.config.busy)
            }
            other => other,
        };
        match opened {
            Ok(store) => State::Open(store),
            Err(Trouble::Busy(why)) => {
                self.say(format!("the vector cache was skipped for a call: {why}"));
                State::Closed
            }
            Err(trouble) => {
                self.say(format!(
                    "the vector cache is off: {} cannot be used ({})",
                    path.display(),
                    trouble.message()
                ));
                State::Off
            }
        }
    }

    /// Renames the file (and its WAL, which must not be replayed into a new file) to
    /// `<name>.damaged-<ms>`, so a new cache starts where it was.
    fn move_aside(&self, why: &str) {
        let path = &self.config.path;
        let stamp = now_ms();
        let aside = with_suffix(path, &format!(".damaged-{stamp}"));
        let moved = std::fs::rename(path, &aside);
        for side in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(with_suffix(path, side));
        }
        self.say(match moved {
            Ok(()) => format!(
                "the vector cache file {} was moved aside to {} and a new one started: {why}",
                path.display(),
                aside.display()
            ),
            Err(e) => format!(
                "the vector cache file {} is not usable ({why}) and could not be moved aside ({e})",
                path.display()
            ),
        });
    }

    fn say(&self, note: String) {
        if let Ok(mut slot) = self.note.lock() {
            *slot = Some(note);
        }
    }
}

/// The cache of an engine's model: identified by its snapshot and the weights it runs, with
/// every setting `info` shows that changes its vectors, and this build of the addon (its
/// graphs and kernels).
pub fn open_for(
    config: CacheConfig,
    info: &Info,
    weights: &Path,
    snapshot: &Path,
    width: usize,
) -> VectorCache {
    let files = match weights.extension().and_then(|e| e.to_str()) {
        Some("onnx") => onnx_files(weights),
        _ => Safetensors::files(snapshot)
            .ok()
            .flatten()
            .map_or_else(Vec::new, |(_, files)| files),
    };
    let settings = format!(
        "addon={}:{} backend={} device={} dtype={:?} int8={:?} pooling={} max_length={} attention={} ort={:?} cpu={} weights={}",
        env!("CARGO_PKG_VERSION"),
        env!("SEMANTIC_SEARCH_SOURCE"),
        info.backend,
        info.device,
        info.dtype.map(|d| d.name()),
        info.int8_scheme,
        info.pooling.name(),
        info.max_length,
        info.attention.name(),
        info.ort_version,
        crate::cpu::features(),
        weights.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
    );
    VectorCache::open(config, snapshot, &files, settings.as_bytes(), width)
}

impl Lookup {
    pub fn hits(&self) -> usize {
        self.found.iter().filter(|v| v.is_some()).count()
    }

    /// The positions of the texts to embed.
    pub fn misses(&self) -> Vec<usize> {
        (0..self.found.len())
            .filter(|&i| self.found[i].is_none())
            .collect()
    }

    /// Every text's vector in order, cut to its first `dim` of `width` floats: found ones from
    /// the file, the others from `computed` (the misses' vectors, in order).
    pub fn assemble(&self, computed: &[f32], width: usize, dim: usize) -> Vec<f32> {
        let mut fresh = computed.chunks_exact(width);
        let mut out = Vec::with_capacity(self.found.len() * dim);
        for found in &self.found {
            let vector = match found {
                Some(v) => &v[..],
                None => fresh.next().unwrap_or(&[]),
            };
            out.extend_from_slice(&vector[..dim.min(vector.len())]);
        }
        out
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
