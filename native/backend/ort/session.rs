//! One ONNX Runtime session, from an `.onnx` file or from the graph built from safetensors;
//! its inputs and outputs are read from the session, not assumed.
use std::borrow::Cow;
use std::path::Path;
use std::sync::Mutex;

use ort::session::{Session, SessionInputValue};
use ort::value::{DynValue, Tensor, TensorElementType};

use crate::backend::{Backend, RunBatch};
use crate::batching::Batch;
use crate::error::{Error, Result};
use crate::pooling::{pool, Pooling};

use super::lanes::{run_in_lanes, run_shared, Lanes};
use super::plan::Provider;

pub struct OrtBackend {
    // `ort`'s `Session::run` takes `&mut self`; only the lanes' CPU session runs unlocked
    // (`run_shared`).
    session: Mutex<Session>,
    /// A single-threaded session that several threads run at once, a micro-batch each.
    lanes: Option<Lanes>,
    inputs: Vec<(String, InputKind, TensorElementType)>,
    output: String,
    /// The output holds float16 (an fp16 ONNX file), converted to f32 for pooling.
    half_output: bool,
    /// `Some` when the session outputs token states that we pool; `None` when it outputs pooled vectors.
    pooling: Option<Pooling>,
    dim: usize,
    provider: Provider,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum InputKind {
    Ids,
    Mask,
    TokenTypes,
    Positions,
    /// `task_id`: a scalar, or `[1]` when the input has rank 1.
    Task {
        rank: usize,
    },
}

impl OrtBackend {
    /// `source` names the weights in error messages; `config_dim` is `config.json`'s hidden size,
    /// used when the output's last dimension is not fixed.
    pub fn new(
        session: Session,
        source: &Path,
        pooling: Pooling,
        config_dim: Option<usize>,
        provider: Provider,
    ) -> Result<Self> {
        let inputs = session
            .inputs()
            .iter()
            .map(|i| {
                let rank = i.dtype().tensor_shape().map_or(0, |s| s.len());
                let kind = input_kind(i.name(), rank).ok_or_else(|| {
                    Error::unsupported(
                        source,
                        format!(
                            "has an input \"{}\" this addon cannot feed (it feeds input_ids, attention_mask, token_type_ids, position_ids and task_id)",
                            i.name()
                        ),
                    )
                })?;
                let ty = i.dtype().tensor_type().unwrap_or(TensorElementType::Int64);
                Ok((i.name().to_string(), kind, ty))
            })
            .collect::<Result<Vec<_>>>()?;
        if !inputs.iter().any(|(_, kind, _)| *kind == InputKind::Ids) {
            return Err(Error::unsupported(source, "has no input_ids input"));
        }
        let output = choose_output(&session, source)?;
        let dim = output.dim.or(config_dim).filter(|&d| d > 0).ok_or_else(|| {
            Error::model_file(
                source,
                "does not say how long its vectors are (its output's last dimension is not fixed, and config.json has no hidden_size)",
            )
        })?;
        Ok(OrtBackend {
            session: Mutex::new(session),
            lanes: None,
            inputs,
            output: output.name,
            half_output: output.half,
            pooling: (!output.pooled).then_some(pooling),
            dim,
            provider,
        })
    }

    /// Adds a single-threaded session, opened by `open` when first needed, for `count` threads
    /// to run at once (see `lanes`). Only a CPU graph with a pooled float32 output (every cache
    /// entry) takes lanes.
    pub fn with_lanes(
        mut self,
        count: usize,
        open: impl Fn() -> Result<Session> + Send + Sync + 'static,
    ) -> Self {
        if self.provider == Provider::Cpu && self.pooling.is_none() && !self.half_output {
            self.lanes = Some(Lanes::new(count, Box::new(open)));
        }
        self
    }

    fn feeds(&self, batch: &Batch) -> Result<Vec<(Cow<'static, str>, SessionInputValue<'static>)>> {
        Ok(self
            .values(batch)?
            .into_iter()
            .map(|(name, value)| (Cow::Owned(name.to_string()), value.into()))
            .collect())
    }

    fn values<'a>(&'a self, batch: &Batch) -> Result<Vec<(&'a str, DynValue)>> {
        let shape = [batch.size() as i64, batch.seq as i64];
        self.inputs
            .iter()
            .map(|(name, kind, ty)| {
                let (shape, values) = match kind {
                    InputKind::Ids => (shape.to_vec(), batch.input_ids.clone()),
                    InputKind::Mask => (shape.to_vec(), batch.attention_mask.clone()),
                    InputKind::TokenTypes if !batch.token_types.is_empty() => {
                        (shape.to_vec(), batch.token_types.clone())
                    }
                    InputKind::TokenTypes => (shape.to_vec(), vec![0; batch.input_ids.len()]),
                    InputKind::Positions => (shape.to_vec(), positions(batch)),
                    InputKind::Task { rank } => {
                        let id = batch.task.ok_or_else(|| {
                            Error::Internal("a batch without a task for a task_id input".into())
                        })?;
                        (vec![1; *rank], vec![id])
                    }
                };
                Ok((name.as_str(), int_tensor(shape, values, *ty)?))
            })
            .collect()
    }

    /// `forward` on the lanes' session, on the calling thread alone.
    fn forward_in_lane(&self, lanes: &Lanes, batch: &Batch, out: &mut [f32]) -> Result<()> {
        let inputs = self.values(batch)?;
        let mut pooled = Tensor::from_array(([batch.size(), self.dim], vec![0f32; out.len()]))?;
        run_shared(lanes.session()?, &inputs, &self.output, &mut pooled)?;
        out.copy_from_slice(pooled.try_extract_tensor::<f32>()?.1);
        Ok(())
    }
}

impl Backend for OrtBackend {
    fn lanes(&self) -> usize {
        self.lanes.as_ref().map_or(1, |l| l.count)
    }

    /// With lanes and several micro-batches, they run on `lanes` threads at once.
    fn forward_all(&self, batches: Vec<Vec<usize>>, run: &RunBatch) -> Result<()> {
        match &self.lanes {
            Some(lanes) if lanes.count > 1 && batches.len() > 1 => {
                let count = lanes.count.min(batches.len());
                run_in_lanes(count, batches, |rows| {
                    run(rows, &|batch, out| self.forward_in_lane(lanes, batch, out))
                })
            }
            _ => batches
                .into_iter()
                .try_for_each(|rows| run(rows, &|batch, out| self.forward(batch, out))),
        }
    }

    fn forward(&self, batch: &Batch, out: &mut [f32]) -> Result<()> {
        let feeds = self.feeds(batch)?;
        let mut session = self
            .session
            .lock()
            .map_err(|_| Error::Internal("session lock poisoned".into()))?;
        let outputs = session
            .run(feeds)
            .map_err(|e| Error::from_run(e.to_string()))?;
        let value = outputs
            .get(&self.output)
            .ok_or_else(|| Error::Internal(format!("output {} missing", self.output)))?;
        let widened: Vec<f32>;
        let data = if self.half_output {
            let (_, half) = value.try_extract_tensor::<half::f16>()?;
            widened = half.iter().map(|h| h.to_f32()).collect();
            &widened[..]
        } else {
            value.try_extract_tensor::<f32>()?.1
        };
        match self.pooling {
            Some(pooling) => pool(pooling, data, batch.seq, self.dim, &batch.lengths, out),
            None => out.copy_from_slice(&data[..out.len()]),
        }
        Ok(())
    }

    fn dim(&self) -> Option<usize> {
        Some(self.dim)
    }

    fn pools_outside(&self) -> bool {
        self.pooling.is_some()
    }

    fn takes_task(&self) -> bool {
        self.inputs
            .iter()
            .any(|(_, kind, _)| matches!(kind, InputKind::Task { .. }))
    }

    fn kind(&self) -> &'static str {
        match self.provider {
            Provider::Cpu => "cpu",
            Provider::Cuda(_) => "cuda",
        }
    }

    fn device(&self) -> String {
        match self.provider {
            Provider::Cpu => "cpu".into(),
            Provider::Cuda(device) => format!("cuda:{device}"),
        }
    }
}

fn input_kind(name: &str, rank: usize) -> Option<InputKind> {
    match name {
        "input_ids" => Some(InputKind::Ids),
        "attention_mask" => Some(InputKind::Mask),
        "token_type_ids" => Some(InputKind::TokenTypes),
        "position_ids" => Some(InputKind::Positions),
        "task_id" if rank <= 1 => Some(InputKind::Task { rank }),
        _ => None,
    }
}

/// Each row's positions 0, 1, 2, ... (padding comes last, so real tokens count from 0).
fn positions(batch: &Batch) -> Vec<i64> {
    let row: Vec<i64> = (0..batch.seq as i64).collect();
    row.repeat(batch.size())
}

struct Output {
    name: String,
    /// `[batch, dim]`: vectors already pooled by the model.
    pooled: bool,
    half: bool,
    /// Its last dimension, when fixed.
    dim: Option<usize>,
}

/// A pooled output (`sentence_embedding`, rank 2) when the session has one, else the token
/// states under their usual names (`last_hidden_state`, `token_embeddings`, `text_embeds`), else
/// the first output of rank 3.
fn choose_output(session: &Session, source: &Path) -> Result<Output> {
    let described = |o: &ort::value::Outlet| {
        let shape = o.dtype().tensor_shape()?;
        let half = o.dtype().tensor_type() == Some(TensorElementType::Float16);
        let dim = shape.last().and_then(|&d| usize::try_from(d).ok());
        Some((o.name().to_string(), shape.len(), half, dim))
    };
    let outputs: Vec<_> = session.outputs().iter().filter_map(described).collect();
    let named = [
        super::graph::OUTPUT,
        "last_hidden_state",
        "token_embeddings",
        "text_embeds",
    ]
    .iter()
    .find_map(|name| {
        outputs
            .iter()
            .find(|o| o.0 == *name && (o.1 == 2 || o.1 == 3))
    });
    let chosen = named
        .or_else(|| outputs.iter().find(|o| o.1 == 3))
        .ok_or_else(|| {
            Error::model_file(
                source,
                "has no output of shape [batch, seq, hidden] or [batch, hidden]",
            )
        })?;
    let (name, rank, half, dim) = chosen.clone();
    Ok(Output {
        name,
        pooled: rank == 2,
        half,
        dim,
    })
}

fn int_tensor(shape: Vec<i64>, values: Vec<i64>, ty: TensorElementType) -> Result<DynValue> {
    Ok(match ty {
        TensorElementType::Int32 => {
            let narrow: Vec<i32> = values.into_iter().map(|v| v as i32).collect();
            Tensor::from_array((shape, narrow))?.into_dyn()
        }
        _ => Tensor::from_array((shape, values))?.into_dyn(),
    })
}
