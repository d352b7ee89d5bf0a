// 4 worker_threads, each with its own require of the addon, embed at once while the main thread
// does too; then a worker is terminated while its call is in flight, and the main thread goes
// on. Prints one JSON line: the largest difference from the main thread's sequential vectors.
const path = require('path');
const { Worker } = require('worker_threads');
const [addon, modelDir] = process.argv.slice(2);
const native = require(addon);
const texts = Array.from({ length: 24 }, (_, i) => `worker text ${i} `.repeat(1 + (i % 7)));
const worker = (data) => new Worker(path.join(__dirname, 'embed-worker.js'), { workerData: { addon, modelDir, texts, ...data } });

(async () => {
  const model = await native.Model.load(modelDir, { backend: 'cpu' });
  const reference = [];
  for (const t of texts) reference.push((await model.embed([t]))[0]);
  const results = await Promise.all([
    ...[0, 1, 2, 3].map(() => new Promise((resolve, reject) => {
      const w = worker({ rounds: 3 });
      w.once('message', (v) => w.terminate().then(() => resolve(v)));
      w.once('error', reject);
    })),
    (async () => [await model.embed(texts), await model.embed(texts)].map((r) => r.map((v) => Array.from(v))))(),
  ]);
  let maxDiff = 0;
  for (const rounds of results) for (const vectors of rounds) vectors.forEach((v, i) => v.forEach((x, j) => (maxDiff = Math.max(maxDiff, Math.abs(x - reference[i][j])))));
  // a worker terminated while its call is in flight
  const doomed = worker({ forever: true });
  await new Promise((resolve) => doomed.once('message', resolve));
  await new Promise((resolve) => setTimeout(resolve, 50));
  const code = await doomed.terminate();
  const after = await model.embed(texts.slice(0, 3));
  after.forEach((v, i) => v.forEach((x, j) => (maxDiff = Math.max(maxDiff, Math.abs(x - reference[i][j])))));
  console.log(JSON.stringify({ maxDiff, vectorSets: results.length * 3 - 1, terminatedExit: code }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
