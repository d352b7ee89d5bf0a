//! MLX backend (Metal on Apple Silicon; MLX's CPU backend in the Linux test build). MLX must not
//! evaluate concurrently on one stream, so one thread owned by the backend holds the weights and
//! runs every forward pass; callers queue micro-batches to it and wait for their vectors.
mod encoder;

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;

use mlx_rs::{Device, DeviceType, Dtype};

use crate::arch;
use crate::backend::Backend;
use crate::batching::Batch;
use crate::error::{Error, Result};
use crate::pooling::Pooling;
use crate::settings::Precision;
use encoder::{Encoder, Tokens};

struct Job {
    rows: usize,
    seq: usize,
    input_ids: Vec<i64>,
    attention_mask: Vec<i64>,
    token_types: Vec<i64>,
    reply: Sender<Result<Vec<f32>>>,
}

pub struct MlxBackend {
    jobs: Mutex<Option<Sender<Job>>>,
    worker: Option<JoinHandle<()>>,
    gpu: bool,
    dtype: Dtype,
}

/// MLX's dtype for a precision (`decide` keeps int8 away from MLX, with the user's message).
pub fn dtype(precision: Precision) -> Result<Dtype> {
    match precision {
        Precision::Float32 => Ok(Dtype::Float32),
        Precision::Float16 => Ok(Dtype::Float16),
        Precision::BFloat16 => Ok(Dtype::Bfloat16),
        Precision::Int8 => Err(Error::Internal("dtype 'int8' reached MLX".into())),
    }
}

/// Caps MLX's memory and its buffer cache. MLX keeps one limit per process, so the last model
/// loaded with a limit sets it for all.
pub fn limit_memory(bytes: u64) -> Result<()> {
    log::info!(backend = "mlx", bytes; "gpu_memory_limit");
    let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
    mlx_rs::memory::set_memory_limit(bytes)
        .and_then(|_| mlx_rs::memory::set_cache_limit(bytes))
        .map(drop)
        .map_err(|e| mlx_error("setting the memory limit", e))
}

pub fn dtype_name(dtype: Dtype) -> &'static str {
    match dtype {
        Dtype::Float16 => "float16",
        Dtype::Bfloat16 => "bfloat16",
        _ => "float32",
    }
}

impl MlxBackend {
    /// Starts the MLX thread and loads the weights there; returns once they are ready.
    pub fn load(spec: arch::Encoder, pooling: Pooling, dtype: Dtype) -> Result<Self> {
        let gpu = default_device_is_gpu();
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready, loaded) = mpsc::channel::<Result<()>>();
        let worker = std::thread::Builder::new()
            .name("semantic-search-mlx".into())
            .spawn(move || match Encoder::new(spec, pooling, dtype) {
                Ok(encoder) => {
                    let _ = ready.send(Ok(()));
                    serve(&encoder, queue);
                }
                Err(e) => {
                    let _ = ready.send(Err(mlx_error("loading the weights", e)));
                }
            })
            .map_err(|e| Error::BackendUnavailable(format!("cannot start the MLX thread: {e}")))?;
        loaded
            .recv()
            .map_err(|_| Error::Internal("the MLX thread ended while loading".into()))??;
        Ok(MlxBackend {
            jobs: Mutex::new(Some(jobs)),
            worker: Some(worker),
            gpu,
            dtype,
        })
    }
}

fn serve(encoder: &Encoder, queue: Receiver<Job>) {
    for job in queue {
        let tokens = Tokens {
            rows: job.rows,
            seq: job.seq,
            input_ids: &job.input_ids,
            attention_mask: &job.attention_mask,
            token_types: &job.token_types,
        };
        let result = encoder
            .forward(&tokens)
            .map_err(|e| mlx_error("the forward pass", e));
        let _ = job.reply.send(result);
    }
}

fn default_device_is_gpu() -> bool {
    Device::try_default()
        .and_then(|d| d.get_type())
        .is_ok_and(|t| matches!(t, DeviceType::Gpu))
}

fn mlx_error(during: &str, e: mlx_rs::error::Exception) -> Error {
    let message = e.to_string();
    if message.contains("memory") {
        Error::OutOfMemory(format!("MLX during {during}: {message}"))
    } else {
        Error::Runtime(format!("MLX failed during {during}: {message}"))
    }
}

impl Backend for MlxBackend {
    fn forward(&self, batch: &Batch, out: &mut [f32]) -> Result<()> {
        let (reply, answer) = mpsc::channel();
        let job = Job {
            rows: batch.size(),
            seq: batch.seq,
            input_ids: batch.input_ids.clone(),
            attention_mask: batch.attention_mask.clone(),
            token_types: batch.token_types.clone(),
            reply,
        };
        let sent = self
            .jobs
            .lock()
            .map_err(|_| Error::Internal("the MLX queue is poisoned".into()))?
            .as_ref()
            .map(|jobs| jobs.send(job).is_ok());
        if sent != Some(true) {
            return Err(Error::Internal("the MLX thread has stopped".into()));
        }
        let pooled = answer
            .recv()
            .map_err(|_| Error::Internal("the MLX thread ended mid-batch".into()))??;
        out.copy_from_slice(&pooled);
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "mlx"
    }

    fn device(&self) -> String {
        let device = if self.gpu { "Metal GPU" } else { "CPU" };
        format!("MLX on the {device} ({})", dtype_name(self.dtype))
    }

    fn is_gpu(&self) -> bool {
        self.gpu
    }
}

impl Drop for MlxBackend {
    /// Closing the queue ends the thread once it has answered what was already sent.
    fn drop(&mut self) {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}
