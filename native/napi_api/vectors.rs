//! The vector cache for a model that does not run here (a remote server's): the TypeScript layer
//! looks a call's texts up, embeds the misses remotely, and keeps their vectors, in the same
//! SQLite file and with the same rules as a local model's.
use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::read::{self, js_error};
use crate::settings::Settings;
use crate::vector_cache::{Lookup, VectorCache};

#[napi]
pub struct VectorStore {
    cache: VectorCache,
}

/// The store that `options` (`vectorCache`, `vectorCacheMaxBytes`, `vectorCacheTimeout`, else
/// the environment) ask for, for the model `identity` names, whose vectors have `width` floats;
/// `null` when the cache is off.
#[napi(ts_args_type = "options: InitOptions | undefined | null, identity: string, width: number")]
pub fn open_vector_store(
    env: Env,
    options: Option<Unknown>,
    identity: String,
    width: u32,
) -> Result<Option<VectorStore>> {
    let settings = read::options(&env, options)
        .and_then(|options| Settings::from_process(&options))
        .map_err(|e| js_error(&env, e))?;
    Ok(settings.vector_cache.map(|config| VectorStore {
        cache: VectorCache::for_identity(config, identity.as_bytes(), width as usize),
    }))
}

#[napi]
impl VectorStore {
    /// The vectors stored for `texts` embedded with `prompt`.
    #[napi]
    pub fn lookup(&self, texts: Vec<String>, prompt: String) -> CacheLookup {
        CacheLookup {
            inner: self.cache.lookup(&texts, &prompt, None),
        }
    }

    /// Keeps the lookup's misses' vectors (`computed`: `width` floats each, in order).
    #[napi]
    pub fn keep(&self, lookup: &CacheLookup, computed: Float32Array) {
        self.cache.keep(&lookup.inner, &computed);
    }

    #[napi]
    pub fn path(&self) -> String {
        self.cache.path().display().to_string()
    }

    /// Why the cache was off, skipped or restarted, the last time it was.
    #[napi]
    pub fn note(&self) -> Option<String> {
        self.cache.note()
    }

    /// The file's bytes in use.
    #[napi]
    pub fn bytes(&self) -> f64 {
        self.cache.bytes() as f64
    }
}

#[napi]
pub struct CacheLookup {
    inner: Lookup,
}

#[napi]
impl CacheLookup {
    /// The positions of the texts not found.
    #[napi]
    pub fn misses(&self) -> Vec<u32> {
        let position = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
        self.inner.misses().into_iter().map(position).collect()
    }

    /// Every text's vector in order, `dim` of `width` floats each: found ones from the file, the
    /// others from `computed` (the misses', in order).
    #[napi]
    pub fn assemble(&self, computed: Float32Array, width: u32, dim: u32) -> Float32Array {
        Float32Array::new(self.inner.assemble(&computed, width as usize, dim as usize))
    }
}
