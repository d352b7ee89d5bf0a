//! A reranker's calls: (query, document) pairs scored by the model's head.
use std::time::Instant;

use super::{CallState, Engine};
use crate::cancel::Cancel;
use crate::error::{Error, Result};
use crate::rerank::{self, RerankHit, RerankOptions};

impl Engine {
    /// The documents' hits for `query`, best first: a reranker's scores of each (query,
    /// document) pair, each pair computed as if alone.
    pub fn rerank(
        &self,
        query: &str,
        docs: &[String],
        options: &RerankOptions,
    ) -> Result<Vec<RerankHit>> {
        self.rerank_cancellable(query, docs, options, &Cancel::never())
    }

    /// The same, stopped with `Error::Aborted` before the next micro-batch once `cancel` is set.
    pub fn rerank_cancellable(
        &self,
        query: &str,
        docs: &[String],
        options: &RerankOptions,
        cancel: &Cancel,
    ) -> Result<Vec<RerankHit>> {
        self.call("rerank", docs.len(), cancel, |state| {
            self.rerank_counted(query, docs, options, state)
        })
    }

    fn rerank_counted(
        &self,
        query: &str,
        docs: &[String],
        options: &RerankOptions,
        state: &CallState,
    ) -> Result<Vec<RerankHit>> {
        let pairs = self.pairs.as_ref().ok_or_else(|| {
            Error::Input("this model embeds and has no head to score pairs with: load a reranker (Reranker.load) to rerank".into())
        })?;
        rerank::check(options)?;
        let started = Instant::now();
        let instruction = options.instruction.as_deref();
        let (ids, types): (Vec<_>, Vec<_>) = pairs
            .encode(&self.tokenizer, query, docs, instruction)?
            .into_iter()
            .unzip();
        let tokens = ids.iter().map(Vec::len).sum();
        state
            .tokens
            .fetch_add(tokens, std::sync::atomic::Ordering::Relaxed);
        self.stats.call(docs.len(), tokens, started.elapsed());
        let logits = self.run(&ids, &types, None, self.dim, state)?;
        Ok(rerank::rank(&logits, options))
    }
}
