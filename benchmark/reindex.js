// Re-indexing a repository after a commit: the corpus with 1 % of its symbols changed, embedded
// with the vector cache (only the changed ones computed) against without it, on MiniLM (the
// corpus) and the CodeRankEmbed-shaped NomicBert (every 4th symbol); the cache file's size per
// 1,000 vectors; and a cold lookup of 3,000 keys (a fresh process, all texts in the cache).
const path = require('path');

async function reindexBench(ctx) {
  const { cache, texts, log, runJson, withJobFile, models, options, nomicEvery } = ctx;
  const node = (job) => withJobFile(job, (f) => runJson(process.execPath, [path.join(__dirname, 'peer_reindex.js'), f]));
  const file = (name) => path.join(cache, `reindex-${name}.sqlite`);
  const runs = {};
  log(`re-indexing MiniLM: ${texts.length} symbols, 1 % changed ...`);
  runs.minilm = node({ modelDir: models.dir, options, texts, file: file('minilm') });
  log('a cold lookup of 3,000 keys in a fresh process ...');
  runs.coldLookup = node({ modelDir: models.dir, options, texts: texts.slice(0, 3000), file: file('minilm'), coldLookup: true });
  const nomicTexts = texts.filter((_, i) => i % nomicEvery === 0);
  log(`re-indexing the NomicBert shape: ${nomicTexts.length} symbols, 1 % changed ...`);
  runs.nomicBert = node({ modelDir: models.nomic, options, texts: nomicTexts, file: file('nomic') });
  return runs;
}

function printReindex(runs, flags) {
  console.log('\nRe-indexing with the vector cache (vectorCache), 1 % of the symbols changed: seconds of the embed call');
  const pad = (s, n) => String(s).padEnd(n);
  console.log(`${pad('model', 22)}${pad('texts', 7)}${pad('changed', 9)}${pad('first s', 9)}${pad('without s', 11)}${pad('with s', 9)}${pad('speed-up', 10)}${pad('KB/1000 vectors', 17)}max |delta|`);
  for (const [name, r] of [['MiniLM (384)', runs.minilm], ['NomicBert shape (768)', runs.nomicBert]]) {
    if (r.error) {
      console.log(`${pad(name, 22)}${r.error.slice(0, 160)}`);
      continue;
    }
    const speedup = (r.withoutSeconds / r.withSeconds).toFixed(1);
    console.log(`${pad(name, 22)}${pad(r.texts, 7)}${pad(r.changed, 9)}${pad(r.fillSeconds.toFixed(2), 9)}${pad(r.withoutSeconds.toFixed(2), 11)}${pad(r.withSeconds.toFixed(3), 9)}${pad(`${speedup}x`, 10)}${pad((r.bytesPer1000 / 1024).toFixed(0), 17)}${r.maxAbsDiff.toExponential(1)}`);
  }
  const cold = runs.coldLookup;
  console.log(cold.error ? `cold lookup: ${cold.error}` : `cold lookup of ${cold.hits} keys (fresh process, all found): ${(cold.seconds * 1000).toFixed(1)} ms (cpu flags: ${flags.join(' ')})`);
  console.log('(the speed-up is bounded by 1 / 0.01 = 100x: the changed 1 % is embedded as before; "first" writes every vector)');
}

module.exports = { reindexBench, printReindex };
