// The seeds' embedder in a fresh process: Qodo-Embed-1 (safetensors, 1536) concatenated with
// Jina v3 (ONNX with task adapters, 1024) = 2560 dims, on shape-alike random weights. Init time,
// resident memory at its peak and once loaded, one batch of documents and one query.
// Reads a JSON job from argv[2] ({ models: [{ modelDir }], options, texts }), prints one JSON line.
const { Embedder } = require('../dist/embedder');
const job = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));
const mb = (bytes) => bytes / 1e6;
const peakMb = () => (process.resourceUsage().maxRSS / 1024) * 1.048576;

(async () => {
  let t = performance.now();
  const embedder = new Embedder({ ...job.options, models: job.models });
  await embedder.init();
  const init_s = (performance.now() - t) / 1000;
  const loaded_peak_mb = peakMb();
  const settled_mb = mb(process.memoryUsage().rss);
  // 'return' then 254 ' return': about 256 tokens for each model's tokenizer
  const text = 'return' + ' return'.repeat(254);
  await embedder.embed(['warm up']);
  t = performance.now();
  const documents = await embedder.embedFloat32(Array.from({ length: job.texts }, () => text), false);
  const documents_s = (performance.now() - t) / 1000;
  t = performance.now();
  await embedder.embedFloat32(['how are batches split by token budget'], true);
  const query_s = (performance.now() - t) / 1000;
  const info = embedder.info();
  const tokens = embedder.stats().map((s) => s.tokens);
  console.log(JSON.stringify({
    init_s, loaded_peak_mb, settled_mb, documents_s, query_s, dim: documents[0].length, tokens, peak_rss_mb: peakMb(),
    parts: info.parts.map((p) => ({ arch: p.info.arch, dim: p.info.dim, queryTask: p.info.queryTask, documentTask: p.info.documentTask })),
  }));
})().catch((e) => console.log(JSON.stringify({ error: e.message })));
