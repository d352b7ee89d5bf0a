// This addon, measured like its peers: the whole corpus in one call, and in calls of 32.
// Reads a JSON job from argv[2], prints one JSON line of measurements.
const native = require('..');
const job = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));

(async () => {
  const info = await native.init(job.modelDir, job.options);
  await native.embed(job.texts.slice(0, 32));
  let t = performance.now();
  const vectors = await native.embed(job.texts);
  const corpus_s = (performance.now() - t) / 1000;
  // Raw float32 rows, for the fidelity of one dtype against another.
  if (job.vectorsFile) require('fs').writeFileSync(job.vectorsFile, Buffer.concat(vectors.map((v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength))));
  let calls32_s = null;
  if (job.calls32) {
    t = performance.now();
    for (let i = 0; i < job.texts.length; i += 32) await native.embed(job.texts.slice(i, i + 32));
    calls32_s = (performance.now() - t) / 1000;
  }
  const batch_ms = {};
  for (const n of job.batches || [1, 8, 32]) {
    t = performance.now();
    for (let r = 0; r < 3; r++) await native.embed(job.fixed.slice(0, n));
    batch_ms[n] = (performance.now() - t) / 3 / n;
  }
  const query_ms = [];
  for (const q of job.queries) {
    t = performance.now();
    await native.embed([q], true);
    query_ms.push(performance.now() - t);
  }
  console.log(JSON.stringify({ corpus_s, calls32_s, batch_ms, query_ms, peak_rss_mb: process.resourceUsage().maxRSS / 1024, weights: info.weights, int8Scheme: info.int8Scheme }));
})().catch((e) => console.log(JSON.stringify({ error: e.message })));
