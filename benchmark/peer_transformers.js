// transformers.js (the embedder semantic-search runs today): feature-extraction pipeline on the
// same local model files, mean pooling and normalisation, batches of 32 in input order.
// Reads a JSON job from argv[2], prints one JSON line of measurements.
const job = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));

(async () => {
  const { pipeline, env } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.localModelPath = job.modelRoot;
  const extract = await pipeline('feature-extraction', job.modelName, {
    dtype: job.dtype,
    local_files_only: true,
    session_options: { intraOpNumThreads: job.threads, interOpNumThreads: 1 },
  });
  const embed = async (texts) => {
    for (let i = 0; i < texts.length; i += 32) {
      await extract(texts.slice(i, i + 32), { pooling: 'mean', normalize: true });
    }
  };
  await embed(job.texts.slice(0, 32));
  let t = performance.now();
  await embed(job.texts);
  const corpus_s = (performance.now() - t) / 1000;
  const batch_ms = {};
  for (const n of [1, 8, 32]) {
    t = performance.now();
    for (let r = 0; r < 3; r++) await embed(job.fixed.slice(0, n));
    batch_ms[n] = (performance.now() - t) / 3 / n;
  }
  const query_ms = [];
  for (const q of job.queries) {
    t = performance.now();
    await embed([q]);
    query_ms.push(performance.now() - t);
  }
  console.log(JSON.stringify({ corpus_s, batch_ms, query_ms, peak_rss_mb: process.resourceUsage().maxRSS / 1024 }));
})().catch((e) => {
  console.log(JSON.stringify({ error: e.message }));
});
