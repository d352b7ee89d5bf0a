// Reranking, side by side: the addon's Reranker against transformers.js (the cross-encoder's
// AutoModelForSequenceClassification on the same weights, exported to ONNX by the addon) and
// PyTorch (sentence-transformers' CrossEncoder; Qwen3-Reranker's model-card code) where a Python
// with torch is at hand. Random weights at real shapes: cross-encoder/ms-marco-MiniLM-L6-v2's and
// Qwen/Qwen3-Reranker-0.6B's. Each query's candidates are corpus symbols.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { percentile } = require('./fidelity');

const CROSS = { queries: 20, docs: 100, maxLength: 512 };
// the judge costs ~40x the cross-encoder per token: fewer pairs, the same per-query shape
const JUDGE = { queries: 4, docs: 25, maxLength: 1024 };

/** The two random rerankers, and the cross-encoder's ONNX copy as transformers.js loads it. */
async function prepare({ cache, makeRandom, minilmTokenizer, qwenTokenizer, minilmCopy }) {
  const cross = path.join(cache, 'ms-marco-minilm-shaped');
  if (!fs.existsSync(path.join(cross, 'model.safetensors'))) makeRandom('cross-encoder', cross, minilmTokenizer);
  const judge = path.join(cache, 'qwen3-reranker-shaped');
  if (!fs.existsSync(path.join(judge, 'model.safetensors'))) makeRandom('judge', judge, qwenTokenizer);
  // torch's Qwen2 tokenizer needs the tokenizer_config (the Qwen3 package's own)
  fs.copyFileSync(path.join(path.dirname(qwenTokenizer), 'tokenizer_config.json'), path.join(judge, 'tokenizer_config.json'));
  const onnx = path.join(cache, 'ms-marco-minilm-onnx');
  fs.mkdirSync(path.join(onnx, 'onnx'), { recursive: true });
  for (const f of ['config.json', 'tokenizer.json']) fs.copyFileSync(path.join(cross, f), path.join(onnx, f));
  const tokenizerConfig = JSON.parse(fs.readFileSync(path.join(minilmCopy, 'tokenizer_config.json'), 'utf8'));
  const config = JSON.stringify({ ...tokenizerConfig, model_max_length: CROSS.maxLength });
  fs.writeFileSync(path.join(onnx, 'tokenizer_config.json'), config);
  fs.writeFileSync(path.join(cross, 'tokenizer_config.json'), config);
  fs.copyFileSync(path.join(minilmCopy, 'special_tokens_map.json'), path.join(onnx, 'special_tokens_map.json'));
  const file = path.join(onnx, 'onnx', 'model.onnx');
  if (!fs.existsSync(file)) await require('..').exportRerankerOnnx(cross, file, { maxLength: CROSS.maxLength });
  return { cross, judge, onnx };
}

/** `queries` queries, each with `docs` corpus symbols as its candidates (a different slice each). */
function jobPairs(texts, queries, { queries: q, docs }) {
  return queries.slice(0, q).map((query, k) => {
    const start = (k * docs * 7) % Math.max(1, texts.length - docs);
    return { query, docs: texts.slice(start, start + docs) };
  });
}

/** A Python with torch and sentence-transformers: BENCH_TORCH_PYTHON, else the bench's venv. */
function torchPython(venvPython) {
  for (const python of [process.env.BENCH_TORCH_PYTHON, venvPython].filter(Boolean)) {
    if (spawnSync(python, ['-c', 'import torch, sentence_transformers, transformers']).status === 0) return { python };
  }
  return { why: "no Python with torch, transformers and sentence-transformers (the bench's venv has none; set BENCH_TORCH_PYTHON to one)" };
}

function summary(r, pairs) {
  if (r.error) return { error: r.error };
  const total = r.query_ms.reduce((a, b) => a + b, 0) / 1000;
  const count = pairs.reduce((n, p) => n + p.docs.length, 0);
  return { pairs: count, seconds: +total.toFixed(2), pairsPerSecond: +(count / total).toFixed(1), queryMsP50: +percentile(r.query_ms, 50).toFixed(1), peakRssMb: Math.round(r.peak_rss_mb), scores: r.scores };
}

/** Largest |score - score| between two runners over every pair (both raw logits). */
function agreement(a, b) {
  if (!a.scores || !b.scores) return null;
  let worst = 0;
  a.scores.forEach((row, i) => row.forEach((s, j) => (worst = Math.max(worst, Math.abs(s - b.scores[i][j])))));
  return +worst.toExponential(2);
}

async function rerankBench(ctx) {
  const { cache, threads, texts, queries, log, runJson, withJobFile, venvPython } = ctx;
  const models = await prepare(ctx);
  const node = (script, job, options = {}) => withJobFile(job, (f) => runJson(process.execPath, [path.join(__dirname, script), f], options));
  const torch = torchPython(venvPython);
  const torchRun = (job) => (torch.python ? runJson(torch.python, [path.join(__dirname, 'peer_rerank_torch.py')], { input: JSON.stringify({ ...job, threads }) }) : { error: `not run: ${torch.why}` });
  const options = { threads, backend: 'cpu' };
  const runs = {};
  const measure = (name, pairs, run) => {
    log(`running ${name} on ${pairs.length} queries x ${pairs[0].docs.length} documents ...`);
    runs[name] = summary(run(), pairs);
  };
  const cross = jobPairs(texts, queries, CROSS);
  const crossOptions = { ...options, maxLength: CROSS.maxLength };
  measure('addon cross-encoder fp32', cross, () => node('peer_rerank_addon.js', { modelDir: models.cross, options: crossOptions, pairs: cross }));
  measure('addon cross-encoder int8', cross, () => node('peer_rerank_addon.js', { modelDir: models.cross, options: { ...crossOptions, dtype: 'int8' }, pairs: cross }));
  measure('transformers.js cross-encoder fp32', cross, () => node('peer_rerank_transformers.js', { modelRoot: cache, modelName: 'ms-marco-minilm-onnx', threads, maxLength: CROSS.maxLength, pairs: cross }, { cwd: __dirname }));
  measure('PyTorch CrossEncoder fp32', cross, () => torchRun({ kind: 'cross', model_dir: models.cross, max_length: CROSS.maxLength, pairs: cross }));
  const judge = jobPairs(texts, queries, JUDGE);
  const judgeOptions = { ...options, maxLength: JUDGE.maxLength };
  measure('addon Qwen3-Reranker fp32', judge, () => node('peer_rerank_addon.js', { modelDir: models.judge, options: judgeOptions, pairs: judge }));
  measure('addon Qwen3-Reranker int8', judge, () => node('peer_rerank_addon.js', { modelDir: models.judge, options: { ...judgeOptions, dtype: 'int8' }, pairs: judge }));
  measure('PyTorch Qwen3-Reranker fp32', judge, () => torchRun({ kind: 'judge', model_dir: models.judge, max_length: JUDGE.maxLength, pairs: judge }));
  const speed = (name) => (runs[name] && runs[name].pairsPerSecond) || NaN;
  const ratio = (a, b) => +(speed(a) / speed(b)).toFixed(2);
  const ratios = {
    crossVsTransformersJs: ratio('addon cross-encoder fp32', 'transformers.js cross-encoder fp32'),
    crossVsPyTorch: ratio('addon cross-encoder fp32', 'PyTorch CrossEncoder fp32'),
    crossInt8VsFp32: ratio('addon cross-encoder int8', 'addon cross-encoder fp32'),
    judgeVsPyTorch: ratio('addon Qwen3-Reranker fp32', 'PyTorch Qwen3-Reranker fp32'),
    judgeInt8VsFp32: ratio('addon Qwen3-Reranker int8', 'addon Qwen3-Reranker fp32'),
  };
  const agree = {
    crossVsTransformersJs: agreement(runs['addon cross-encoder fp32'], runs['transformers.js cross-encoder fp32']),
    crossVsPyTorch: agreement(runs['addon cross-encoder fp32'], runs['PyTorch CrossEncoder fp32']),
    judgeVsPyTorch: agreement(runs['addon Qwen3-Reranker fp32'], runs['PyTorch Qwen3-Reranker fp32']),
  };
  for (const r of Object.values(runs)) delete r.scores;
  return { runs, ratios, agree, shapes: { cross: CROSS, judge: JUDGE } };
}

function printRerank(result, flags, threads) {
  const pad = (s, n) => String(s).padEnd(n);
  const { cross, judge } = result.shapes;
  console.log(`\nReranking, ${threads} threads, random weights at real shapes: ms-marco-MiniLM-L6-shaped cross-encoder (384 x 6) on ${cross.queries} queries x ${cross.docs} corpus symbols (maxLength ${cross.maxLength}); Qwen3-Reranker-0.6B-shaped judge (1024 x 28) on ${judge.queries} x ${judge.docs} (maxLength ${judge.maxLength}); each query's documents in one call`);
  console.log(`${pad('runner', 38)}${pad('pairs', 7)}${pad('seconds', 9)}${pad('pairs/s', 9)}${pad('query p50 ms', 14)}peak MB`);
  for (const [name, r] of Object.entries(result.runs)) {
    console.log(r.error ? `${pad(name, 38)}${r.error.slice(0, 160)}` : `${pad(name, 38)}${pad(r.pairs, 7)}${pad(r.seconds, 9)}${pad(r.pairsPerSecond, 9)}${pad(r.queryMsP50, 14)}${r.peakRssMb}`);
  }
  const r = result.ratios;
  console.log(`rerank ratios (pairs/s, same weights): cross-encoder addon / transformers.js ${r.crossVsTransformersJs}x, / PyTorch CrossEncoder ${r.crossVsPyTorch}x, int8 / fp32 ${r.crossInt8VsFp32}x; Qwen3-Reranker addon / PyTorch ${r.judgeVsPyTorch}x, int8 / fp32 ${r.judgeInt8VsFp32}x (cpu flags: ${flags.join(' ')})`);
  console.log(`raw scores agree (max |delta| over every pair): cross-encoder vs transformers.js ${result.agree.crossVsTransformersJs}, vs PyTorch ${result.agree.crossVsPyTorch}; Qwen3-Reranker vs PyTorch ${result.agree.judgeVsPyTorch} (transformers.js differs only on pairs cut at maxLength: its batched call keeps other tokens there than Python's tokenizers, which the addon and CrossEncoder follow)`);
  console.log("transformers.js and the Qwen3-Reranker judge: not run: transformers.js runs Qwen3 only as Qwen3ForCausalLM from a KV-cache ONNX export with full-vocabulary logits, which nothing in this offline bench can produce");
}

module.exports = { rerankBench, printRerank };
