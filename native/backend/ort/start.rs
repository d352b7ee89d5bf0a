//! How an ONNX Runtime backend starts: a CPU graph built from safetensors starts from the graph
//! cache when it has the entry, and writes the entry when not; anything else is built in memory.
use std::path::{Path, PathBuf};

use super::cache::{Cache, Fingerprint};
use super::open::{load, load_cached, save};
use super::plan::{Provider, SessionPlan};
use super::runtime::Runtime;
use super::session::OrtBackend;
use crate::arch::AttentionDirection;
use crate::backend::{LazyWeights, ModelFacts};
use crate::choices::Choice;
use crate::error::Result;
use crate::settings::Precision;
use crate::weights::Safetensors;

/// What the graph cache did for this model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheUse {
    /// Started from this entry.
    Hit(PathBuf),
    /// Wrote this entry, then started from it.
    Written(PathBuf),
    /// Not used, and why.
    Off(String),
}

impl CacheUse {
    pub fn name(&self) -> &'static str {
        match self {
            CacheUse::Hit(_) => "hit",
            CacheUse::Written(_) => "written",
            CacheUse::Off(_) => "off",
        }
    }
}

/// Everything an ONNX Runtime backend starts from besides its weights.
pub struct Start<'a> {
    pub runtime: &'static Runtime,
    /// The snapshot's folder: its weight files and `config.json` are part of the cache key.
    pub snapshot: &'a Path,
    pub facts: ModelFacts,
    pub attention: AttentionDirection,
    pub max_length: usize,
    pub plan: SessionPlan,
    /// A reranker's head (`HeadPlan::describe`): the graph ends in it instead of the vector.
    pub head: Option<String>,
    /// The graph cache's folder; `None`: turned off.
    pub cache_dir: Option<&'a Path>,
}

/// The backend `start` describes, and what the graph cache did for it.
pub fn start(s: &Start, weights: &mut LazyWeights) -> Result<(OrtBackend, CacheUse)> {
    let why_not = match (s.plan.precision, s.plan.provider, s.cache_dir) {
        (None, _, _) => "an ONNX file runs as it is",
        (_, Provider::Cuda(_), _) => "only CPU graphs are cached",
        (_, _, None) => "turned off (cache: false or SEMANTIC_SEARCH_CACHE=off)",
        (Some(_), Provider::Cpu, Some(root)) => {
            let key = fingerprint(s)?.key();
            return start_cached(&Cache::new(root.to_path_buf()), &key, s, weights);
        }
    };
    let backend = load(s.runtime, s.facts, weights.get()?, s.max_length, s.plan)?;
    Ok((backend, CacheUse::Off(why_not.into())))
}

/// The CPU graph from the cache entry of `key`; without one, built, written to the cache and
/// started from it; when the cache cannot be written, built as without a cache.
fn start_cached(
    cache: &Cache,
    key: &str,
    s: &Start,
    weights: &mut LazyWeights,
) -> Result<(OrtBackend, CacheUse)> {
    let threads = s.plan.threads;
    let started = std::time::Instant::now();
    if let Some(entry) = cache.lookup(key) {
        let checked = started.elapsed().as_secs_f64();
        match load_cached(s.runtime, s.facts, &entry, threads) {
            Ok(backend) => {
                let session = started.elapsed().as_secs_f64() - checked;
                log::debug!(check_seconds = checked, session_seconds = session; "graph_cache_hit");
                return Ok((backend, CacheUse::Hit(entry)));
            }
            Err(e) => {
                log::warn!(result = "miss", reason:% = format!("ONNX Runtime could not start from the entry, which is discarded: {e}"), entry:% = entry.display(); "graph_cache");
                cache.discard(&entry)
            }
        }
    }
    let started = std::time::Instant::now();
    let written = cache.stage(key).and_then(|staged| {
        let weights = weights.get()?;
        let read = started.elapsed().as_secs_f64();
        let packed = save(s.runtime, s.facts, weights, s.max_length, s.plan, &staged)?;
        let saved = started.elapsed().as_secs_f64();
        let entry = staged.commit(packed)?;
        let checked = started.elapsed().as_secs_f64();
        log::debug!(read_seconds = read, save_seconds = saved - read, commit_seconds = checked - saved; "graph_cache_write");
        Ok(entry)
    });
    let problem = match written {
        // The session that wrote the entry had no pre-packed weights (see `save`); the model
        // starts from the entry, as every later start does.
        // An entry ONNX Runtime cannot start from here (as when onnxruntime-node created the
        // process's environment without shared thread pools) leaves the graph built in memory.
        Ok(entry) => match load_cached(s.runtime, s.facts, &entry, threads) {
            Ok(backend) => return Ok((backend, CacheUse::Written(entry))),
            Err(e) => e,
        },
        Err(e) => e,
    };
    let backend = load(s.runtime, s.facts, weights.get()?, s.max_length, s.plan)?;
    let why = format!("could not be used: {problem}");
    Ok((backend, CacheUse::Off(why)))
}

/// `modules.json` and the weights and config of each module folder (the Dense modules the graph
/// holds), in a stable order.
fn module_files(snapshot: &Path) -> Vec<PathBuf> {
    let mut folders: Vec<_> = std::fs::read_dir(snapshot)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("model.safetensors").is_file())
        .collect();
    folders.sort();
    let files = folders
        .iter()
        .flat_map(|d| [d.join("config.json"), d.join("model.safetensors")]);
    let modules = snapshot.join("modules.json");
    modules
        .is_file()
        .then_some(modules)
        .into_iter()
        .chain(files)
        .filter(|p| p.is_file())
        .collect()
}

/// Everything the optimised graph depends on: the weight files and config, the graph's
/// settings, ONNX Runtime's version and the CPU's features (an optimised graph may use kernels
/// only this CPU runs).
fn fingerprint(s: &Start) -> Result<Fingerprint> {
    let mut f = Fingerprint::new();
    if let Some((source, files)) = Safetensors::files(s.snapshot)? {
        for file in files.iter().chain([&source]) {
            f.add_file(file)?;
        }
    }
    f.add_file(&s.snapshot.join("config.json"))?;
    for file in module_files(s.snapshot) {
        f.add_file(&file)?;
    }
    let precision = s.plan.precision.map_or("onnx", Precision::name);
    f.add("precision", precision.as_bytes());
    f.add("pooling", s.facts.pooling.name().as_bytes());
    f.add("max_length", s.max_length.to_string().as_bytes());
    f.add("attention", s.attention.name().as_bytes());
    if let Some(head) = &s.head {
        // a judge's head holds the rows of its tokens: the tokenizer decides them
        f.add("head", head.as_bytes());
        f.add_file(&s.snapshot.join("tokenizer.json"))?;
    }
    f.add("ort", s.runtime.version.as_bytes());
    f.add("cpu", crate::cpu::features().as_bytes());
    if s.plan.precision == Some(Precision::Int8) {
        f.add("int8", s.plan.int8.name().as_bytes());
    }
    Ok(f)
}
