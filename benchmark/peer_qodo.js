// The addon on a Qodo-Embed-1-shaped model in a fresh process: init time, resident memory at its
// peak and once loaded, and one forward pass of 16 texts of 256 tokens.
// Reads a JSON job from argv[2] ({ modelDir, options, loadOnly }), prints one JSON line.
const native = require('..');
const job = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));
const mb = (bytes) => bytes / 1e6;

(async () => {
  let t = performance.now();
  const model = await native.Model.load(job.modelDir, job.options);
  const init_s = (performance.now() - t) / 1000;
  const loaded_peak_mb = process.resourceUsage().maxRSS / 1024 * 1.048576;
  const settled_mb = mb(process.memoryUsage().rss);
  const cache = model.info().cache;
  if (job.loadOnly) return console.log(JSON.stringify({ init_s, loaded_peak_mb, settled_mb, cache }));
  // 'hello' then 254 ' hello': 255 tokens, and the EOS makes 256
  const text = 'hello' + ' hello'.repeat(254);
  await model.embed(['warm up']);
  t = performance.now();
  await model.embed(Array.from({ length: 16 }, () => text));
  const forward_s = (performance.now() - t) / 1000;
  const stats = model.stats();
  console.log(JSON.stringify({ init_s, loaded_peak_mb, settled_mb, cache, forward_s, tokens: stats.tokens - stats.tokens % 256, peak_rss_mb: process.resourceUsage().maxRSS / 1024 * 1.048576, info: model.info() }));
})().catch((e) => console.log(JSON.stringify({ error: e.message })));
