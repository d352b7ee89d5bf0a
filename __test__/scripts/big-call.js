// 100,000 texts in one call: prints the resident memory before, the peak during the call, and
// the vectors' own size. Prints one JSON line.
const [addon, modelDir] = process.argv.slice(2);
const native = require(addon);
const mb = (b) => b / 1e6;

(async () => {
  const model = await native.Model.load(modelDir, { backend: 'cpu' });
  const texts = Array.from({ length: 100000 }, (_, i) => `symbol_${i} ${'x'.repeat(i % 40)} returns ${i % 97}`);
  await model.embed(texts.slice(0, 100));
  const before = mb(process.memoryUsage().rss);
  const t = performance.now();
  const vectors = await model.embed(texts);
  const seconds = (performance.now() - t) / 1000;
  const peak = (process.resourceUsage().maxRSS * 1024) / 1e6;
  const norms = vectors.filter((v, i) => i % 997 === 0).map((v) => Math.hypot(...v));
  console.log(JSON.stringify({ texts: vectors.length, dim: vectors[0].length, before, peak, vectorsMb: mb(vectors.length * vectors[0].length * 4), seconds, norms: [Math.min(...norms), Math.max(...norms)] }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
