// The addon's Reranker on a rerank job: each query's documents in one rerank() call, timed per
// query after one warm-up call. Reads a JSON job from argv[2], prints one JSON line.
const job = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));
const { Reranker } = require('..');

(async () => {
  const reranker = await Reranker.load(job.modelDir, job.options);
  const rerank = (p) => reranker.rerank(p.query, p.docs, { rawScores: true, instruction: job.instruction });
  await rerank(job.pairs[0]);
  const query_ms = [];
  const scores = [];
  for (const p of job.pairs) {
    const t = performance.now();
    const hits = await rerank(p);
    query_ms.push(performance.now() - t);
    scores.push(hits.sort((a, b) => a.index - b.index).map((h) => h.score));
  }
  const info = reranker.info();
  await reranker.close();
  console.log(JSON.stringify({ query_ms, scores, head: info.head, peak_rss_mb: process.resourceUsage().maxRSS / 1024 }));
})().catch((e) => console.log(JSON.stringify({ error: e.message })));
