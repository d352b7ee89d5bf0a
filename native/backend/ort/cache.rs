//! ONNX Runtime's optimised graph of a model, kept on disk so that the next process starts
//! from it instead of rebuilding and re-optimising the graph from `model.safetensors`.
//!
//! An entry is a folder named by a fingerprint of everything the graph depends on (the weight
//! files, `config.json`, the graph's settings, this addon's version and a hash of its sources,
//! ONNX Runtime's version, the CPU's features). It holds `model.onnx` (ONNX Runtime's optimised
//! graph), `model.onnx.data` (its weights, which ONNX Runtime maps rather than copies) and
//! `manifest.json` (each file's size, modification time, xxh3 checksum, and a checksum of a
//! sample of it). It is written in a private folder and renamed into place, so a reader sees a
//! whole entry or none, and two processes may write the same entry at once; an entry that fails
//! its checks is removed and rebuilt, never trusted.
//!
//! A start checks each file's size, modification time and sample (its first and last MiB and 32
//! blocks of 64 KiB between: 4 MiB read), and the whole checksum only when the time differs:
//! hashing a 1 GB entry at every start cost more than the rest of the check. What this trades: a
//! change that keeps a file's size and its time to the nanosecond and misses the sample (a
//! deliberate edit that puts the time back, or the disk's own rot) is not seen at start; ONNX
//! Runtime refusing the entry still removes it, and a write checks everything.
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{xxh3_128, Xxh3};

use crate::error::{Error, Result};

/// Changes whenever the layout of an entry does (2: weights pre-packed, sampled checks).
const FORMAT: u32 = 2;
pub const MODEL: &str = "model.onnx";
pub const DATA: &str = "model.onnx.data";
const MANIFEST: &str = "manifest.json";
/// Entries kept: the most recently used; older ones go when a new one is written.
const KEEP: usize = 16;
/// A staging folder this old was left by a process that died while writing.
const STALE_SECONDS: u64 = 3600;

#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
struct Manifest {
    format: u32,
    key: String,
    files: Vec<FileSum>,
    /// The data file holds the weights as ONNX Runtime pre-packs them, too.
    packed: bool,
}

#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
struct FileSum {
    name: String,
    size: u64,
    xxh3: String,
    /// Nanoseconds since the epoch, as the file system keeps them.
    modified: String,
    /// The checksum of the sampled blocks.
    sample: String,
}

/// Blocks of a file the start-up check reads: the first and last MiB, and this many of 64 KiB
/// spread evenly between.
const SAMPLE_EDGE: u64 = 1 << 20;
const SAMPLE_BLOCKS: u64 = 32;
const SAMPLE_BLOCK: u64 = 64 << 10;

/// What the graph depends on, hashed into an entry's name.
pub struct Fingerprint {
    parts: Vec<u8>,
}

impl Default for Fingerprint {
    fn default() -> Self {
        Fingerprint::new()
    }
}

impl Fingerprint {
    pub fn new() -> Fingerprint {
        let mut f = Fingerprint { parts: Vec::new() };
        f.add("format", FORMAT.to_string().as_bytes());
        f.add("addon", env!("CARGO_PKG_VERSION").as_bytes());
        f.add("source", env!("SEMANTIC_SEARCH_SOURCE").as_bytes());
        f
    }

    pub fn add(&mut self, name: &str, value: &[u8]) {
        for part in [name.as_bytes(), value] {
            self.parts
                .extend_from_slice(&(part.len() as u64).to_le_bytes());
            self.parts.extend_from_slice(part);
        }
    }

    /// A file by name, size and modification time (its content is not read: a rewritten
    /// file has a new time).
    pub fn add_file(&mut self, path: &Path) -> Result<()> {
        let meta = fs::metadata(path)
            .map_err(|e| Error::model_file(path, format!("cannot be read ({e})")))?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let value = format!("{}:{}:{}", path.display(), meta.len(), modified);
        self.add("file", value.as_bytes());
        Ok(())
    }

    pub fn key(&self) -> String {
        format!("{:032x}", xxh3_128(&self.parts))
    }
}

pub struct Cache {
    root: PathBuf,
}

impl Cache {
    pub fn new(root: PathBuf) -> Cache {
        Cache { root }
    }

    /// The entry of `key` when it is whole and its files match their checksums; a damaged one
    /// is removed.
    pub fn lookup(&self, key: &str) -> Option<PathBuf> {
        let entry = self.root.join(key);
        if !entry.is_dir() {
            log::info!(result = "miss", reason = "no entry for this model, settings and CPU", entry:% = entry.display(); "graph_cache");
            return None;
        }
        let checked = verify(&entry, key);
        if let Err(e) = &checked {
            log::warn!(result = "miss", reason:% = format!("the entry failed its check and is discarded: {e}"), entry:% = entry.display(); "graph_cache");
        }
        if checked.is_ok() {
            // its time is its last use, which decides what `prune` keeps
            let _ = fs::File::open(entry.join(MANIFEST))
                .and_then(|f| f.set_modified(SystemTime::now()));
            return Some(entry);
        }
        discard(&entry);
        None
    }

    /// A private folder to write `key`'s entry in.
    pub fn stage(&self, key: &str) -> Result<Staged> {
        let unique = format!(
            "{key}.tmp-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let tmp = self.root.join(unique);
        fs::create_dir_all(&tmp).map_err(|e| cache_error(&tmp, e))?;
        Ok(Staged {
            tmp,
            entry: self.root.join(key),
            key: key.to_string(),
        })
    }

    /// Removes a damaged entry (one ONNX Runtime refused).
    pub fn discard(&self, entry: &Path) {
        discard(entry);
    }

    /// Keeps the `KEEP` most recently used entries, and removes staging folders of processes
    /// that died while writing.
    pub fn prune(&self) {
        let Ok(listing) = fs::read_dir(&self.root) else {
            return;
        };
        let now = SystemTime::now();
        let mut entries = Vec::new();
        for item in listing.flatten() {
            let path = item.path();
            let name = item.file_name().to_string_lossy().into_owned();
            let age = |p: &Path| {
                fs::metadata(p)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| now.duration_since(t).ok())
            };
            if name.contains(".tmp-") || name.contains(".trash-") {
                if age(&path).is_some_and(|a| a.as_secs() > STALE_SECONDS) {
                    let _ = fs::remove_dir_all(&path);
                }
            } else if path.join(MANIFEST).is_file() {
                entries.push((age(&path.join(MANIFEST)).unwrap_or_default(), path));
            }
        }
        entries.sort();
        for (_, old) in entries.into_iter().skip(KEEP) {
            discard(&old);
        }
    }
}

/// An entry being written; removed unless committed.
pub struct Staged {
    tmp: PathBuf,
    entry: PathBuf,
    key: String,
}

impl Staged {
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.join(name)
    }

    /// Checksums the files, writes the manifest and renames the folder into place. Another
    /// process that got there first wins; its entry is as good as ours. `packed`: the data file
    /// holds pre-packed weights.
    pub fn commit(self, packed: bool) -> Result<PathBuf> {
        let files = [MODEL, DATA]
            .iter()
            .map(|name| checksum(&self.tmp.join(name), name))
            .collect::<Result<Vec<_>>>()?;
        let manifest = Manifest {
            format: FORMAT,
            key: self.key.clone(),
            files,
            packed,
        };
        let text = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| Error::Internal(format!("manifest: {e}")))?;
        let path = self.tmp.join(MANIFEST);
        fs::write(&path, text).map_err(|e| cache_error(&path, e))?;
        if fs::rename(&self.tmp, &self.entry).is_err() && !self.entry.is_dir() {
            return Err(Error::Runtime(format!(
                "cannot move the cache entry into {}",
                self.entry.display()
            )));
        }
        if let Some(root) = self.entry.parent() {
            Cache::new(root.to_path_buf()).prune();
        }
        Ok(self.entry.clone())
    }
}

impl Drop for Staged {
    /// Nothing is left when the folder was renamed into place; else the partial entry goes.
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.tmp);
    }
}

/// Whether a verified entry's data file holds pre-packed weights.
pub fn packed(entry: &Path) -> bool {
    fs::read(entry.join(MANIFEST))
        .ok()
        .and_then(|text| serde_json::from_slice::<Manifest>(&text).ok())
        .is_some_and(|m| m.packed)
}

fn verify(entry: &Path, key: &str) -> Result<()> {
    let path = entry.join(MANIFEST);
    let text = fs::read(&path).map_err(|e| cache_error(&path, e))?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| Error::model_file(&path, format!("is malformed ({e})")))?;
    if manifest.format != FORMAT || manifest.key != key {
        return Err(Error::model_file(&path, "is from another version"));
    }
    let names: Vec<&str> = manifest.files.iter().map(|f| f.name.as_str()).collect();
    if names != [MODEL, DATA] {
        return Err(Error::model_file(&path, "lists other files"));
    }
    for file in &manifest.files {
        let path = entry.join(&file.name);
        let meta = fs::metadata(&path).map_err(|e| cache_error(&path, e))?;
        if meta.len() != file.size {
            return Err(Error::model_file(&path, "is truncated or grown"));
        }
        if sample(&path, file.size)? != file.sample {
            return Err(Error::model_file(&path, "fails its sampled checksum"));
        }
        // a file whose time changed is read whole
        if modified(&meta) != file.modified && checksum(&path, &file.name)?.xxh3 != file.xxh3 {
            return Err(Error::model_file(&path, "fails its checksum"));
        }
    }
    Ok(())
}

fn modified(meta: &fs::Metadata) -> String {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
        .to_string()
}

/// The checksum of the file's sampled blocks (its whole content when it is small).
fn sample(path: &Path, size: u64) -> Result<String> {
    use std::io::{Seek, SeekFrom};
    let mut file = fs::File::open(path).map_err(|e| cache_error(path, e))?;
    let mut hasher = Xxh3::new();
    let mut read_at = |offset: u64, length: u64| -> Result<()> {
        let length = length.min(size.saturating_sub(offset));
        let mut buffer = vec![0u8; length as usize];
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_exact(&mut buffer))
            .map_err(|e| cache_error(path, e))?;
        hasher.update(&buffer);
        Ok(())
    };
    if size <= 2 * SAMPLE_EDGE + SAMPLE_BLOCKS * SAMPLE_BLOCK {
        read_at(0, size)?;
    } else {
        read_at(0, SAMPLE_EDGE)?;
        let span = size - 2 * SAMPLE_EDGE - SAMPLE_BLOCK;
        for i in 0..SAMPLE_BLOCKS {
            read_at(SAMPLE_EDGE + span * i / (SAMPLE_BLOCKS - 1), SAMPLE_BLOCK)?;
        }
        read_at(size - SAMPLE_EDGE, SAMPLE_EDGE)?;
    }
    Ok(format!("{:032x}", hasher.digest128()))
}

fn checksum(path: &Path, name: &str) -> Result<FileSum> {
    let mut file = fs::File::open(path).map_err(|e| cache_error(path, e))?;
    let mut hasher = Xxh3::new();
    let mut buffer = vec![0u8; 8 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer).map_err(|e| cache_error(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    let meta = fs::metadata(path).map_err(|e| cache_error(path, e))?;
    Ok(FileSum {
        name: name.to_string(),
        size,
        xxh3: format!("{:032x}", hasher.digest128()),
        modified: modified(&meta),
        sample: sample(path, size)?,
    })
}

/// Moves an entry aside (so no new reader finds it) and deletes it; a process that has it
/// mapped keeps its pages.
fn discard(entry: &Path) {
    let aside = entry.with_extension(format!("trash-{}", std::process::id()));
    if fs::rename(entry, &aside).is_ok() {
        let _ = fs::remove_dir_all(&aside);
    }
}

fn cache_error(path: &Path, e: std::io::Error) -> Error {
    Error::Runtime(format!("cache {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(root: &Path, key: &str, data: &[u8]) -> PathBuf {
        let cache = Cache::new(root.to_path_buf());
        let staged = cache.stage(key).unwrap();
        fs::write(staged.path(MODEL), b"graph").unwrap();
        fs::write(staged.path(DATA), data).unwrap();
        staged.commit(false).unwrap()
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ssn-cache-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_committed_entry_is_found_and_a_damaged_one_is_removed() {
        let root = temp("damage");
        let cache = Cache::new(root.clone());
        let path = entry(&root, "k1", &[7u8; 1000]);
        assert_eq!(cache.lookup("k1"), Some(path.clone()));
        assert_eq!(cache.lookup("k2"), None);
        // one flipped byte, same size
        let mut data = fs::read(path.join(DATA)).unwrap();
        data[500] ^= 1;
        fs::write(path.join(DATA), &data).unwrap();
        assert_eq!(cache.lookup("k1"), None);
        assert!(!path.exists());
        // truncated
        let path = entry(&root, "k1", &[7u8; 1000]);
        fs::write(path.join(DATA), [7u8; 10]).unwrap();
        assert_eq!(cache.lookup("k1"), None);
        // a large file: a byte changed where the sample reads is found though its time is put
        // back; one changed elsewhere, by its new time
        let big = vec![3u8; 8 << 20];
        for (at, put_time_back) in [(0, true), (5 << 20, false)] {
            let path = entry(&root, "k5", &big);
            let when = fs::metadata(path.join(DATA)).unwrap().modified().unwrap();
            let mut data = big.clone();
            data[at] ^= 1;
            fs::write(path.join(DATA), &data).unwrap();
            if put_time_back {
                let file = fs::File::options()
                    .write(true)
                    .open(path.join(DATA))
                    .unwrap();
                file.set_modified(when).unwrap();
            }
            assert_eq!(cache.lookup("k5"), None, "byte {at}");
            assert!(!path.exists());
        }
        // a manifest of another key (another version) is not trusted
        let path = entry(&root, "k3", &[1u8; 10]);
        fs::rename(&path, root.join("k4")).unwrap();
        assert_eq!(cache.lookup("k4"), None);
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn an_uncommitted_entry_leaves_nothing_and_a_second_writer_yields() {
        let root = temp("stage");
        let cache = Cache::new(root.clone());
        drop(cache.stage("k").unwrap());
        assert_eq!(fs::read_dir(&root).unwrap().count(), 0);
        entry(&root, "k", b"first");
        let second = entry(&root, "k", b"second");
        assert_eq!(cache.lookup("k"), Some(second));
        assert_eq!(
            fs::read_dir(&root).unwrap().count(),
            1,
            "no staging folder left"
        );
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn only_the_most_recently_used_entries_are_kept() {
        let root = temp("prune");
        let cache = Cache::new(root.clone());
        let aged = |i: usize| {
            let path = entry(&root, &format!("k{i}"), b"x");
            let when = SystemTime::now() - std::time::Duration::from_secs(1000 - i as u64);
            let manifest = fs::File::open(path.join(MANIFEST)).unwrap();
            manifest.set_modified(when).unwrap();
        };
        // each commit prunes: the oldest go first
        (0..KEEP + 3).for_each(aged);
        assert_eq!(fs::read_dir(&root).unwrap().count(), KEEP);
        assert!(!root.join("k2").exists() && root.join("k3").exists());
        // a hit makes an entry the newest, so the next commit removes another
        assert!(cache.lookup("k3").is_some());
        aged(KEEP + 3);
        assert!(root.join("k3").exists() && !root.join("k4").exists());
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn the_key_changes_with_every_part() {
        let mut a = Fingerprint::new();
        a.add("precision", b"float32");
        let mut b = Fingerprint::new();
        b.add("precision", b"int8");
        let mut c = Fingerprint::new();
        c.add("precisionf", b"loat32");
        assert_ne!(a.key(), b.key());
        assert_ne!(a.key(), c.key());
    }
}
