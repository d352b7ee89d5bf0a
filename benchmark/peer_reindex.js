// Re-indexing with the vector cache, in one process: the first index (which fills the cache),
// then the corpus with 1 % of its texts changed, embedded without the cache and with it; or, with
// `job.coldLookup`, one call whose texts are all in the cache, in a fresh process (SQLite's page
// cache empty). Reads a JSON job from argv[2], prints one JSON line.
const fs = require('fs');
const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const { Model } = require('..');

async function timed(options, texts) {
  const model = await Model.load(job.modelDir, { ...job.options, ...options });
  const t = performance.now();
  const vectors = await model.embed(texts);
  const seconds = (performance.now() - t) / 1000;
  const stats = model.stats();
  await model.close();
  return { seconds, vectors, stats };
}

function maxAbsDiff(a, b) {
  let worst = 0;
  a.forEach((v, i) => v.forEach((x, j) => (worst = Math.max(worst, Math.abs(x - b[i][j])))));
  return worst;
}

(async () => {
  const cache = { vectorCache: job.file };
  if (job.coldLookup) {
    const hit = await timed(cache, job.texts);
    console.log(JSON.stringify({ seconds: hit.seconds, hits: hit.stats.cacheHits, misses: hit.stats.cacheMisses }));
    return;
  }
  fs.rmSync(job.file, { force: true });
  const changed = job.texts.map((t, i) => (i % 100 === 0 ? `${t} // changed` : t));
  const fill = await timed(cache, job.texts);
  const without = await timed({}, changed);
  const withCache = await timed(cache, changed);
  const rows = job.texts.length + withCache.stats.cacheMisses;
  console.log(JSON.stringify({
    texts: job.texts.length,
    changed: changed.filter((t, i) => t !== job.texts[i]).length,
    fillSeconds: fill.seconds,
    withoutSeconds: without.seconds,
    withSeconds: withCache.seconds,
    hits: withCache.stats.cacheHits,
    misses: withCache.stats.cacheMisses,
    fileBytes: fs.statSync(job.file).size,
    bytesPer1000: (withCache.stats.cacheBytes / rows) * 1000,
    maxAbsDiff: maxAbsDiff(withCache.vectors, without.vectors),
  }));
})().catch((e) => console.log(JSON.stringify({ error: e.message })));
