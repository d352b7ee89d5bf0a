//! ONNX Runtime backends: a session from an `.onnx` file, or from a graph built from
//! `model.safetensors`; on the CUDA execution provider when it is usable, else the CPU.
pub mod cache;
pub mod cuda;
pub mod graph;
mod lanes;
mod open;
mod plan;
pub mod runtime;
mod session;
pub mod start;

pub use plan::{Provider, SessionPlan};
pub use session::OrtBackend;
