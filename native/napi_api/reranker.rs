//! The reranker class JavaScript sees: `RerankerModel.load(modelDir, options)` and
//! `rerank(query, documents, options)`, with the embedding model's `info`, `isGpu`, `stats`
//! and `close`.
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::read::{self, guarded, js_error, EngineResult};
use super::{ran_twice, CancelToken, CloseTask, ExportTask, Slot};
use crate::cancel::Cancel;
use crate::engine::Engine;
use crate::error::Error as EngineError;
use crate::events::Sink;
use crate::info::Info;
use crate::rerank::{RerankHit, RerankOptions};
use crate::settings::Options;
use crate::stats::StatsSnapshot;

#[napi]
pub struct RerankerModel {
    slot: Arc<Slot>,
}

#[napi]
impl RerankerModel {
    #[napi(
        ts_args_type = "modelDir: string, options?: InitOptions | undefined | null",
        ts_return_type = "Promise<RerankerModel>"
    )]
    pub fn load(
        env: Env,
        model_dir: Unknown,
        options: Option<Unknown>,
    ) -> AsyncTask<LoadRerankerTask> {
        let job = read::model_dir(model_dir)
            .and_then(|dir| Ok((dir, read::load_options(&env, options)?)));
        AsyncTask::new(LoadRerankerTask { job })
    }

    /// The documents' hits for `query`, best first.
    #[napi(
        ts_args_type = "query: string, documents: string[], options?: RerankOptions, cancel?: CancelToken",
        ts_return_type = "Promise<RerankHit[]>"
    )]
    pub fn rerank(
        &self,
        query: Unknown,
        documents: Unknown,
        options: Option<RerankOptions>,
        cancel: Option<&CancelToken>,
    ) -> AsyncTask<RerankTask> {
        let job = read::query(query).and_then(|query| {
            let documents = read::documents(documents)?;
            Ok((self.slot.get()?, query, documents))
        });
        AsyncTask::new(RerankTask {
            job,
            options: options.unwrap_or_default(),
            cancel: cancel.map_or_else(Cancel::never, CancelToken::flag),
        })
    }

    /// What this reranker is (`head`) and where it runs.
    #[napi]
    pub fn info(&self, env: Env) -> Result<Info> {
        self.slot.info(&env)
    }

    /// True only when this reranker really runs on a GPU.
    #[napi]
    pub fn is_gpu(&self) -> bool {
        self.slot.is_gpu()
    }

    /// What this reranker has done since it was loaded (`texts`: the documents scored).
    #[napi]
    pub fn stats(&self, env: Env) -> Result<StatsSnapshot> {
        self.slot.stats(&env)
    }

    /// Whether this reranker is serving, where, and how fast.
    #[napi]
    pub fn health(&self, env: Env) -> Result<crate::health::Health> {
        self.slot.health(&env)
    }

    /// Frees the reranker: calls already running finish first, later calls reject with
    /// `ERR_MODEL_CLOSED`.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close(&self) -> AsyncTask<CloseTask> {
        self.slot.close()
    }
}

pub struct LoadRerankerTask {
    job: EngineResult<(PathBuf, (Options, Option<Sink>))>,
}

impl Task for LoadRerankerTask {
    type Output = EngineResult<Arc<Engine>>;
    type JsValue = RerankerModel;

    fn compute(&mut self) -> Result<Self::Output> {
        let job = std::mem::replace(&mut self.job, Err(ran_twice()));
        Ok(job.and_then(|(dir, (options, logger))| {
            let load = || Engine::load_reranker(&dir, &options);
            guarded(|| crate::events::scoped(logger.as_ref(), load)).map(Arc::new)
        }))
    }

    fn resolve(&mut self, env: Env, engine: Self::Output) -> Result<Self::JsValue> {
        let engine = engine.map_err(|e| js_error(&env, e))?;
        let slot = Slot {
            engine: RwLock::new(Some(engine)),
            empty: || {
                EngineError::Closed(
                    "this reranker was closed: load it again with Reranker.load(modelDir) to rerank with it".into(),
                )
            },
        };
        Ok(RerankerModel {
            slot: Arc::new(slot),
        })
    }
}

pub struct RerankTask {
    job: EngineResult<(Arc<Engine>, String, Vec<String>)>,
    options: RerankOptions,
    cancel: Cancel,
}

impl Task for RerankTask {
    type Output = EngineResult<Vec<RerankHit>>;
    type JsValue = Vec<RerankHit>;

    fn compute(&mut self) -> Result<Self::Output> {
        let job = std::mem::replace(&mut self.job, Err(ran_twice()));
        Ok(job.and_then(|(engine, query, documents)| {
            guarded(|| engine.rerank_cancellable(&query, &documents, &self.options, &self.cancel))
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> Result<Self::JsValue> {
        output.map_err(|e| js_error(&env, e))
    }
}

/// Writes a reranker built from `model.safetensors` as an ONNX file with a `logits` output
/// (`[batch, 1]`, each pair's raw score), for runtimes that take transformers' export of a
/// `*ForSequenceClassification` (transformers.js, Optimum, onnxruntime).
#[napi(
    ts_args_type = "modelDir: string, file: string, options?: InitOptions | undefined | null",
    ts_return_type = "Promise<void>"
)]
pub fn export_reranker_onnx(
    env: Env,
    model_dir: Unknown,
    file: String,
    options: Option<Unknown>,
) -> AsyncTask<ExportTask> {
    ExportTask::new(
        &env,
        model_dir,
        file,
        options,
        crate::export::export_reranker_onnx,
    )
}
