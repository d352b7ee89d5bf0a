//! Node.js exports: argument checks, the one engine, and errors as JavaScript `Error`s.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod arch;
pub mod backend;
pub mod batching;
pub mod config;
pub mod engine;
pub mod error;
pub mod model_dir;
pub mod pooling;
pub mod tokenize;
pub mod weights;

// Under `cargo test` the napi macros register nothing, so the exports look unused.
#[cfg_attr(test, allow(dead_code))]
mod napi_api;
