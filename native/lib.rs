//! Node.js exports: argument checks, the one engine, and errors as JavaScript `Error`s.
#![deny(clippy::unwrap_used)]

pub mod backend;
pub mod batching;
pub mod config;
pub mod engine;
pub mod error;
pub mod model_dir;
pub mod pooling;
pub mod tokenize;

mod napi_api;
