//! Node.js exports: argument checks, the models, and errors as JavaScript `Error`s with a code.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod arch;
pub mod backend;
pub mod batching;
pub mod cancel;
pub mod choices;
pub mod cpu;
pub mod decide;
pub mod engine;
pub mod error;
pub mod events;
pub mod export;
pub mod health;
pub mod info;
pub mod load;
pub mod memory;
pub mod model;
pub mod model_dir;
pub mod paths;
pub mod pooling;
pub mod rerank;
pub mod settings;
pub mod stats;
pub mod task;
pub mod tokenize;
pub mod vector_cache;
pub mod weights;

// Under `cargo test` the napi macros register nothing, so the exports look unused.
#[cfg_attr(test, allow(dead_code))]
mod napi_api;
