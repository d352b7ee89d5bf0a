//! ONNX Runtime's optimised graph of a model, kept on disk so that the next process starts
//! from it instead of rebuilding and re-optimising the graph from `model.safetensors`.
//!
//! An entry is a folder named by a fingerprint of everything the graph depends on (the weight
//! files, `config.json`, the graph's settings, this addon's version and a hash of its sources,
//! ONNX Runtime's version, the CPU's features). It holds `model.onnx` (ONNX Runtime's optimised
//! graph), `model.onnx.data` (its weights, which ONNX Runtime maps rather than copies) and
//! `manifest.json` (each file's size and xxh3 checksum). It is written in a private folder and renamed into place, so a
//! reader sees a whole entry or none, and two processes may write the same entry at once; an
//! entry that fails its checks is removed and rebuilt, never trusted.
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{xxh3_128, Xxh3};

use crate::error::{Error, Result};

/// Changes whenever the layout of an entry does.
const FORMAT: u32 = 1;
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
}

#[derive(Serialize, Deserialize, PartialEq, Eq, Debug)]
struct FileSum {
    name: String,
    size: u64,
    xxh3: String,
}

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
    /// process that got there first wins; its entry is as good as ours.
    pub fn commit(self) -> Result<PathBuf> {
        let files = [MODEL, DATA]
            .iter()
            .map(|name| checksum(&self.tmp.join(name), name))
            .collect::<Result<Vec<_>>>()?;
        let manifest = Manifest {
            format: FORMAT,
            key: self.key.clone(),
            files,
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
        let size = fs::metadata(&path)
            .map_err(|e| cache_error(&path, e))?
            .len();
        if size != file.size {
            return Err(Error::model_file(&path, "is truncated or grown"));
        }
    }
    for file in &manifest.files {
        if checksum(&entry.join(&file.name), &file.name)? != *file {
            return Err(Error::model_file(
                &entry.join(&file.name),
                "fails its checksum",
            ));
        }
    }
    Ok(())
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
    Ok(FileSum {
        name: name.to_string(),
        size,
        xxh3: format!("{:032x}", hasher.digest128()),
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
        staged.commit().unwrap()
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
