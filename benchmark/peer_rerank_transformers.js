// transformers.js's cross-encoder, as its model cards use it: AutoTokenizer on (query, document)
// pairs with padding and truncation, AutoModelForSequenceClassification on the same weights
// exported to ONNX, each query's documents in one call. Reads a JSON job from argv[2].
const job = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));

(async () => {
  const { AutoTokenizer, AutoModelForSequenceClassification, env } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.localModelPath = job.modelRoot;
  const tokenizer = await AutoTokenizer.from_pretrained(job.modelName, { local_files_only: true });
  const model = await AutoModelForSequenceClassification.from_pretrained(job.modelName, {
    dtype: 'fp32',
    local_files_only: true,
    session_options: { intraOpNumThreads: job.threads, interOpNumThreads: 1 },
  });
  const rerank = async (p) => {
    const inputs = tokenizer(p.docs.map(() => p.query), { text_pair: p.docs, padding: true, truncation: true, max_length: job.maxLength });
    const { logits } = await model(inputs);
    return Array.from(logits.data);
  };
  await rerank(job.pairs[0]);
  const query_ms = [];
  const scores = [];
  for (const p of job.pairs) {
    const t = performance.now();
    scores.push(await rerank(p));
    query_ms.push(performance.now() - t);
  }
  console.log(JSON.stringify({ query_ms, scores, peak_rss_mb: process.resourceUsage().maxRSS / 1024 }));
})().catch((e) => console.log(JSON.stringify({ error: e.message })));
