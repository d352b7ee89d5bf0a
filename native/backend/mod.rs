//! The seam between the engine and whatever runs the model's forward pass.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::arch::Encoder;
use crate::batching::Batch;
use crate::error::Result;

#[cfg(mlx)]
pub mod mlx;
pub mod ort;

/// What a backend needs to know of the model besides its weights.
#[derive(Debug, Clone, Copy)]
pub struct ModelFacts {
    pub pooling: crate::pooling::Pooling,
    /// The hidden size, when the config gives it.
    pub hidden: Option<usize>,
}

/// How a backend runs one micro-batch: `forward(batch, out)`.
pub type Forward<'a> = dyn Fn(&Batch, &mut [f32]) -> Result<()> + Sync + 'a;

/// What the engine does with one micro-batch of a call (the rows of its texts), given the
/// backend's way to run it.
pub type RunBatch<'a> = dyn Fn(Vec<usize>, &Forward) -> Result<()> + Sync + 'a;

/// The output contract: `forward` writes each text's **pooled** vector, `[batch.size(), dim]`
/// in the batch's row order, **not normalised**: the engine normalises once, after any
/// Matryoshka cut. (An ONNX file whose output is normalised already is normalised again, which
/// changes nothing but rounding.)
pub trait Backend: Send + Sync {
    fn forward(&self, batch: &Batch, out: &mut [f32]) -> Result<()>;
    /// Runs every micro-batch of one call through `run`: one after another with `forward` by
    /// default; a backend may run several at once, each with a way of its own.
    fn forward_all(&self, batches: Vec<Vec<usize>>, run: &RunBatch) -> Result<()> {
        for rows in batches {
            run(rows, &|batch, out| self.forward(batch, out))?;
        }
        Ok(())
    }
    /// How many micro-batches of one call it runs at once (for `info()`).
    fn lanes(&self) -> usize {
        1
    }
    /// `"cpu"`, `"cuda"` or `"mlx"`: where the heavy work really runs.
    fn kind(&self) -> &'static str;
    /// A human-readable name of the device.
    fn device(&self) -> String;
    fn is_gpu(&self) -> bool {
        self.kind() != "cpu"
    }
    /// The length of the vectors it pools, when the model itself says (an ONNX file's output).
    fn dim(&self) -> Option<usize> {
        None
    }
    /// It outputs token states that the engine's side pools (an ONNX file without a pooled
    /// output), so nothing after pooling, such as a `Dense` module, is applied.
    fn pools_outside(&self) -> bool {
        false
    }
    /// It has a `task_id` input, which every batch must set.
    fn takes_task(&self) -> bool {
        false
    }
}

/// The weights a backend runs: the encoder described from `model.safetensors` (shared with the
/// MLX thread, and dropped once every backend has taken its own copy), or an ONNX file.
pub enum WeightsSource {
    Encoder {
        encoder: Arc<Encoder>,
        source: PathBuf,
    },
    Onnx(PathBuf),
}

impl WeightsSource {
    /// An encoder whose tensors a graph took (the graph releases each once it holds it).
    pub fn spent(&self) -> bool {
        matches!(self, WeightsSource::Encoder { encoder, .. } if encoder.layers.is_empty())
    }

    pub fn path(&self) -> &Path {
        match self {
            WeightsSource::Encoder { source, .. } => source,
            WeightsSource::Onnx(file) => file,
        }
    }
}

/// The weights, opened when a backend first needs them (a graph-cache hit never does), and
/// again when a backend that failed took their tensors.
pub struct LazyWeights<'a> {
    open: Box<dyn FnMut() -> Result<WeightsSource> + 'a>,
    opened: Option<WeightsSource>,
}

impl<'a> LazyWeights<'a> {
    pub fn new(open: impl FnMut() -> Result<WeightsSource> + 'a) -> Self {
        LazyWeights {
            open: Box::new(open),
            opened: None,
        }
    }

    pub fn get(&mut self) -> Result<&mut WeightsSource> {
        if self.opened.as_ref().is_none_or(WeightsSource::spent) {
            self.opened = Some((self.open)()?);
        }
        self.opened
            .as_mut()
            .ok_or_else(|| crate::error::Error::Internal("weights not opened".into()))
    }
}
