// onnxruntime-node and this addon in one process, alternating: prints the ONNX Runtime library
// of each and every libonnxruntime the process has mapped.
const fs = require('fs');
const path = require('path');
const [addon, modelDir] = process.argv.slice(2);
const ort = require('onnxruntime-node');
const native = require(addon);

async function ortRun(session) {
  const ids = new ort.Tensor('int64', BigInt64Array.from([101n, 7592n, 102n]), [1, 3]);
  const mask = new ort.Tensor('int64', BigInt64Array.from([1n, 1n, 1n]), [1, 3]);
  const feeds = { input_ids: ids, attention_mask: mask };
  if (session.inputNames.includes('token_type_ids')) feeds.token_type_ids = new ort.Tensor('int64', new BigInt64Array(3), [1, 3]);
  const out = await session.run(feeds);
  return out[session.outputNames[0]].dims;
}

(async () => {
  const session = await ort.InferenceSession.create(path.join(modelDir, 'onnx', 'model.onnx'));
  const dims = [];
  for (let round = 0; round < 3; round++) {
    dims.push(await ortRun(session));
    await native.init(modelDir, { backend: 'cpu' });
    dims.push((await native.embed(['hello world']))[0].length);
  }
  const maps = fs.readFileSync('/proc/self/maps', 'utf8').split('\n').map((l) => l.split(/\s+/)[5]).filter((p) => p && /libonnxruntime\.so/.test(p));
  console.log(JSON.stringify({ dims, ortLibrary: native.info().ortLibrary, mapped: [...new Set(maps)] }));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
