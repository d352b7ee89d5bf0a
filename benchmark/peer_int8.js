// int8 against fp32 in one process, interleaved: both models loaded, the corpus in chunks, each
// chunk run by both (which goes first alternates), so that this machine's drift in speed (±20 %
// between runs minutes apart) falls on both alike. Reads a JSON job from argv[2], prints one
// JSON line: seconds of each over the whole corpus.
const native = require('..');
const job = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));
const CHUNK = 100;

(async () => {
  const models = {
    fp32: await native.Model.load(job.modelDir, job.options),
    int8: await native.Model.load(job.modelDir, { ...job.options, dtype: 'int8' }),
  };
  for (const model of Object.values(models)) await model.embed(job.texts.slice(0, 32));
  // sorted by length, so that each chunk pads about as little as the whole corpus in one call
  const texts = [...job.texts].sort((a, b) => a.length - b.length);
  const seconds = { fp32: 0, int8: 0 };
  for (let i = 0; i < texts.length; i += CHUNK) {
    const chunk = texts.slice(i, i + CHUNK);
    for (const name of (i / CHUNK) % 2 ? ['int8', 'fp32'] : ['fp32', 'int8']) {
      const t = performance.now();
      await models[name].embed(chunk);
      seconds[name] += (performance.now() - t) / 1000;
    }
  }
  console.log(JSON.stringify({ fp32: +seconds.fp32.toFixed(2), int8: +seconds.int8.toFixed(2), ratio: +(seconds.fp32 / seconds.int8).toFixed(2), int8Scheme: models.int8.info().int8Scheme }));
})().catch((e) => console.log(JSON.stringify({ error: e.message })));
