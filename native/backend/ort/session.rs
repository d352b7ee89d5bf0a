//! One ONNX Runtime session, from an `.onnx` file or from the graph built from safetensors;
//! its inputs and outputs are read from the session, not assumed.
use std::borrow::Cow;
use std::path::Path;
use std::sync::Mutex;

use ort::session::{Session, SessionInputValue};
use ort::value::{DynValue, Tensor, TensorElementType};

use crate::batching::Batch;
use crate::error::{Error, Result};
use crate::pooling::{pool, Pooling};

use super::Provider;

pub struct OrtBackend {
    // `Session::run` takes `&mut self`: ONNX Runtime's allocators are not safe for concurrent runs.
    session: Mutex<Session>,
    inputs: Vec<(String, InputKind, TensorElementType)>,
    output: String,
    /// `Some` when the session outputs token states that we pool; `None` when it outputs pooled vectors.
    pooling: Option<Pooling>,
    dim: usize,
    provider: Provider,
}

#[derive(Clone, Copy)]
enum InputKind {
    Ids,
    Mask,
    TokenTypes,
}

impl OrtBackend {
    /// `source` names the weights in error messages.
    pub fn new(
        session: Session,
        source: &Path,
        pooling: Pooling,
        dim: usize,
        provider: Provider,
    ) -> Result<Self> {
        let inputs = session
            .inputs()
            .iter()
            .map(|i| {
                let kind = input_kind(i.name()).ok_or_else(|| {
                    Error::unsupported(
                        source,
                        format!(
                            "has an input \"{}\" this addon cannot feed (expected input_ids, attention_mask, token_type_ids)",
                            i.name()
                        ),
                    )
                })?;
                let ty = i.dtype().tensor_type().unwrap_or(TensorElementType::Int64);
                Ok((i.name().to_string(), kind, ty))
            })
            .collect::<Result<Vec<_>>>()?;
        let (output, pooled) = choose_output(&session, source)?;
        Ok(OrtBackend {
            session: Mutex::new(session),
            inputs,
            output,
            pooling: (!pooled).then_some(pooling),
            dim,
            provider,
        })
    }

    fn feeds(&self, batch: &Batch) -> Result<Vec<(Cow<'static, str>, SessionInputValue<'static>)>> {
        let shape = [batch.size() as i64, batch.seq as i64];
        self.inputs
            .iter()
            .map(|(name, kind, ty)| {
                let values = match kind {
                    InputKind::Ids => batch.input_ids.clone(),
                    InputKind::Mask => batch.attention_mask.clone(),
                    InputKind::TokenTypes => vec![0; batch.input_ids.len()],
                };
                Ok((
                    Cow::Owned(name.clone()),
                    int_tensor(shape, values, *ty)?.into(),
                ))
            })
            .collect()
    }
}

impl super::super::Backend for OrtBackend {
    fn forward(&self, batch: &Batch, out: &mut [f32]) -> Result<()> {
        let feeds = self.feeds(batch)?;
        let mut session = self
            .session
            .lock()
            .map_err(|_| Error::Internal("session lock poisoned".into()))?;
        let outputs = session.run(feeds).map_err(|e| classify(e.to_string()))?;
        let value = outputs
            .get(&self.output)
            .ok_or_else(|| Error::Internal(format!("output {} missing", self.output)))?;
        let (_, data) = value.try_extract_tensor::<f32>()?;
        match self.pooling {
            Some(pooling) => pool(pooling, data, batch.seq, self.dim, &batch.lengths, out),
            None => out.copy_from_slice(&data[..out.len()]),
        }
        Ok(())
    }

    fn kind(&self) -> &'static str {
        match self.provider {
            Provider::Cpu => "cpu",
            Provider::Cuda => "cuda",
        }
    }

    fn device(&self) -> String {
        match self.provider {
            Provider::Cpu => "cpu".into(),
            Provider::Cuda => "cuda:0".into(),
        }
    }
}

/// Out-of-memory failures are told apart so that the engine can retry with smaller batches.
fn classify(message: String) -> Error {
    let lower = message.to_lowercase();
    let oom = [
        "out of memory",
        "failed to allocate",
        "cudaerrormemoryallocation",
        "bad_alloc",
    ];
    if oom.iter().any(|m| lower.contains(m)) {
        Error::OutOfMemory(message)
    } else {
        Error::Ort(message)
    }
}

fn input_kind(name: &str) -> Option<InputKind> {
    match name {
        "input_ids" => Some(InputKind::Ids),
        "attention_mask" => Some(InputKind::Mask),
        "token_type_ids" => Some(InputKind::TokenTypes),
        _ => None,
    }
}

/// A pooled output (`sentence_embedding`, rank 2) when the session has one, else the token states.
fn choose_output(session: &Session, source: &Path) -> Result<(String, bool)> {
    let rank = |name: &str| {
        session
            .outputs()
            .iter()
            .find(|o| o.name() == name)
            .and_then(|o| o.dtype().tensor_shape().map(|s| s.len()))
    };
    for (name, pooled) in [
        (super::graph::OUTPUT, true),
        ("last_hidden_state", false),
        ("token_embeddings", false),
    ] {
        if let Some(r) = rank(name) {
            return Ok((name.to_string(), pooled && r == 2));
        }
    }
    session
        .outputs()
        .iter()
        .find(|o| o.dtype().tensor_shape().is_some_and(|s| s.len() == 3))
        .map(|o| (o.name().to_string(), false))
        .ok_or_else(|| {
            Error::model_file(
                source,
                "has no output of shape [batch, seq, hidden] or [batch, hidden]",
            )
        })
}

fn int_tensor(shape: [i64; 2], values: Vec<i64>, ty: TensorElementType) -> Result<DynValue> {
    Ok(match ty {
        TensorElementType::Int32 => {
            let narrow: Vec<i32> = values.into_iter().map(|v| v as i32).collect();
            Tensor::from_array((shape, narrow))?.into_dyn()
        }
        _ => Tensor::from_array((shape, values))?.into_dyn(),
    })
}
