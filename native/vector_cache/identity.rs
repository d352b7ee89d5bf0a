//! Which model made a vector: the snapshot's commit when it comes from the Hugging Face cache,
//! else a hash of the content of every file that shapes the vectors, remembered in the cache by
//! (path, size, modification time) so that it is read once.
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use xxhash_rust::xxh3::Xxh3;

use super::store::Store;

/// The commit of a snapshot at `…/models--org--name/snapshots/<commit>`: Hugging Face names
/// the folder by the commit, and a commit's files never change.
pub fn hub_commit(snapshot: &Path) -> Option<String> {
    let real = snapshot.canonicalize().unwrap_or_else(|_| snapshot.into());
    let commit = real.file_name()?.to_str()?;
    let snapshots = real.parent()?;
    let repo = snapshots.parent()?.file_name()?.to_str()?;
    let is_commit = commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit());
    (is_commit && snapshots.file_name()? == "snapshots" && repo.starts_with("models--"))
        .then(|| format!("{repo}@{commit}"))
}

/// The files whose content decides the vectors: the snapshot's JSON files (config, tokenizer,
/// prompts, modules), each module folder's config and weights, and the weight files that run.
pub fn shaping_files(snapshot: &Path, weights: &[PathBuf]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in std::iter::once(snapshot.to_path_buf()).chain(module_folders(snapshot)) {
        let mut here: Vec<PathBuf> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                name.ends_with(".json") || (dir != snapshot && name.ends_with(".safetensors"))
            })
            .collect();
        here.sort();
        files.extend(here);
    }
    for file in weights {
        if !files.contains(file) {
            files.push(file.clone());
        }
    }
    files
}

/// Sub-folders of a sentence-transformers snapshot (`1_Pooling`, `2_Dense`, …).
fn module_folders(snapshot: &Path) -> Vec<PathBuf> {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(snapshot)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("config.json").is_file())
        .collect();
    folders.sort();
    folders
}

/// The weight files of an ONNX file: itself and its external data (`model.onnx_data`, …).
pub fn onnx_files(onnx: &Path) -> Vec<PathBuf> {
    let name = onnx.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let mut files: Vec<PathBuf> = onnx
        .parent()
        .and_then(|dir| std::fs::read_dir(dir).ok())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let other = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            other.starts_with(name) && other != name && p.is_file()
        })
        .collect();
    files.sort();
    files.insert(0, onnx.to_path_buf());
    files
}

/// Each file's path and content hash, read from the store when it knows this (path, size,
/// modification time), else hashed and remembered. A file that cannot be read is an error.
pub fn content_hashes(files: &[PathBuf], store: Option<&Store>) -> std::io::Result<Vec<u8>> {
    let mut all = Vec::new();
    for file in files {
        let meta = std::fs::metadata(file)?;
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        let size = i64::try_from(meta.len()).unwrap_or(i64::MAX);
        let path = file.display().to_string();
        let known = store.and_then(|s| s.file_hash(&path, size, modified).ok().flatten());
        let hash = match known {
            Some(hash) => hash,
            None => {
                let hash = hash_file(file)?.to_le_bytes().to_vec();
                if let Some(store) = store {
                    // only a cost next time if it cannot be remembered
                    let _ = store.remember_file(&path, size, modified, &hash);
                }
                hash
            }
        };
        // the name, not the folder: the same snapshot copied elsewhere makes the same vectors
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        all.extend_from_slice(name.unwrap_or_default().as_bytes());
        all.extend_from_slice(&hash);
    }
    Ok(all)
}

fn hash_file(path: &Path) -> std::io::Result<u128> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Xxh3::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(hasher.digest128());
        }
        hasher.update(&buffer[..n]);
    }
}
