// Memory soak: 10,000 embed calls of mixed sizes on one model; resident memory after the first
// 1,000 and after all 10,000. Then 100 init calls in a row on the default model. Prints one JSON line.
const [addon, modelDir] = process.argv.slice(2);
const native = require(addon);
const rss = () => process.memoryUsage().rss / 1e6;
let seed = 7;
const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
const text = () => 'token '.repeat(1 + Math.floor(next() * 120));

(async () => {
  const model = await native.Model.load(modelDir, { backend: 'cpu' });
  let calls = 0, texts = 0, at1000 = 0;
  for (; calls < 10000; calls++) {
    const batch = Array.from({ length: 1 + Math.floor(next() * 8) }, text);
    texts += batch.length;
    await model.embed(batch, next() < 0.5);
    if (calls === 999) {
      global.gc?.();
      at1000 = rss();
    }
  }
  global.gc?.();
  const at10000 = rss();
  await native.init(modelDir, { backend: 'cpu' });
  await native.embed(['warm']);
  for (let i = 0; i < 10; i++) await native.init(modelDir, { backend: 'cpu' });
  global.gc?.();
  const after10 = rss();
  for (let i = 0; i < 90; i++) await native.init(modelDir, { backend: 'cpu' });
  global.gc?.();
  const after100 = rss();
  console.log(JSON.stringify({ calls, texts, at1000, at10000, after10, after100 }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
