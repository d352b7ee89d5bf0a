// A worker_thread with its own require of the addon: loads the model it is given, embeds the
// texts, posts the vectors back (or, asked to, posts 'started' and keeps embedding until killed).
const { parentPort, workerData } = require('worker_threads');
const native = require(workerData.addon);

(async () => {
  const model = await native.Model.load(workerData.modelDir, { backend: 'cpu' });
  if (workerData.forever) {
    parentPort.postMessage('started');
    for (;;) await model.embed(workerData.texts);
  }
  const vectors = [];
  for (let round = 0; round < workerData.rounds; round++) vectors.push((await model.embed(workerData.texts)).map((v) => Array.from(v)));
  parentPort.postMessage(vectors);
})();
