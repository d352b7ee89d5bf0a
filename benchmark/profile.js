// Where the time goes, per ONNX Runtime operator, in the addon's fp32 and int8 graphs of
// all-MiniLM-L6-v2 on every 10th corpus symbol. Usage: npm run bench:profile (after npm run bench
// has prepared .cache/).
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { buildCorpus } = require('./corpus');

const ROOT = path.join(__dirname, '..');
const CACHE = path.join(ROOT, '.cache', 'bench');
const MODEL = path.join(ROOT, '.cache', 'models', 'all-MiniLM-L6-v2');
const native = require('..');

async function main() {
const graphs = {};
for (const dtype of ['float32', 'int8']) {
  graphs[dtype] = path.join(CACHE, `profile-${dtype}.onnx`);
  await native.exportOnnx(MODEL, graphs[dtype], { dtype, maxLength: 512 });
}
const texts = buildCorpus(ROOT).map((s) => s.text).filter((_, i) => i % 10 === 0);
const job = { tokenizer: path.join(MODEL, 'tokenizer.json'), texts, max_length: 256, threads: 2, graphs };
const run = spawnSync(path.join(ROOT, '.cache', 'venv', 'bin', 'python'), [path.join(__dirname, 'profile.py')], { input: JSON.stringify(job), encoding: 'utf8', maxBuffer: 1 << 26 });
if (run.status !== 0) throw new Error(`profile.py failed: ${run.stderr}`);
const result = JSON.parse(run.stdout.trim().split('\n').pop());
console.log(`all-MiniLM-L6-v2, ${texts.length} code symbols, 2 threads, batches of at most 1024 tokens sorted by length`);
for (const [name, r] of Object.entries(result)) {
  const total = Object.values(r.ops_s).reduce((a, b) => a + b, 0);
  const shares = Object.entries(r.ops_s).filter(([, s]) => s / total >= 0.01).map(([op, s]) => `${op} ${s.toFixed(2)} s (${((s / total) * 100).toFixed(0)}%)`);
  console.log(`${name}: ${r.wall_s} s; ${shares.join(', ')}`);
}
for (const file of Object.values(graphs)) fs.rmSync(file, { force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
