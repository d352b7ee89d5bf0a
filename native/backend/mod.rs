//! The seam between the engine and whatever runs the model's forward pass.
use crate::batching::Batch;
use crate::error::Result;

#[cfg(mlx)]
pub mod mlx;
pub mod ort;

pub trait Backend: Send + Sync {
    /// Runs one micro-batch and writes its pooled, not yet normalised vectors to `out`
    /// (`[batch.size(), dim]`, in the batch's row order).
    fn forward(&self, batch: &Batch, out: &mut [f32]) -> Result<()>;
    /// How many micro-batches it runs at once, each on one thread (`forward_in_lane`); 1 when
    /// every forward pass has all the threads.
    fn lanes(&self) -> usize {
        1
    }
    /// `forward`, on one thread, while other threads run other micro-batches.
    fn forward_in_lane(&self, batch: &Batch, out: &mut [f32]) -> Result<()> {
        self.forward(batch, out)
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
    /// It has a `task_id` input, which every batch must set.
    fn takes_task(&self) -> bool {
        false
    }
}
