// int8 against fp32 on ONNX Runtime's AVX2 kernels, on a CPU that has AVX-512: a copy of
// onnxruntime-node's library whose kernel dispatch skips its AVX-512 branches (two conditional
// jumps made unconditional, found by their bytes), so MLAS runs the AVX2/FMA3 GEMMs that an
// AVX2-only CPU runs. The cores stay this CPU's: a proxy for such a CPU, not one. The shipped
// library runs the same jobs in the same run, alternating, each best of ROUNDS.
// Usage: node benchmark/avx2_proxy.js [--json] (after npm run bench has prepared .cache/bench).
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { buildCorpus } = require('./corpus');
const { fidelity } = require('./fidelity');

const ROOT = path.join(__dirname, '..');
const CACHE = path.join(ROOT, '.cache', 'bench');
const SHIPPED = path.join(ROOT, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux', 'x64', 'libonnxruntime.so.1');
const PROXY = path.join(CACHE, 'libonnxruntime-avx2.so');
const ROUNDS = 2;
// MLAS's platform set-up: `test $0x10000,%r10d; je` (AVX512F in CPUID 7's ebx) becomes `jmp`;
// ONNX Runtime's CPUIDInfo: `cmp $0xe6,%r14d; je` (the OS saves AVX-512 state) becomes nops.
const PATCHES = [
  { find: '41f7c20000010074', at: 7, from: 0x74, to: [0xeb], what: 'MLAS AVX512F branch' },
  { find: '4181fee600000074', at: 7, from: 0x74, to: [0x90, 0x90], what: 'CPUIDInfo AVX-512 state' },
];

function makeProxy() {
  const bytes = fs.readFileSync(SHIPPED);
  const hex = bytes.toString('hex');
  for (const p of PATCHES) {
    const found = [];
    for (let i = hex.indexOf(p.find); i >= 0; i = hex.indexOf(p.find, i + 1)) if (i % 2 === 0) found.push(i / 2);
    if (found.length !== 1) throw new Error(`${p.what}: ${found.length} matches of ${p.find} in ${SHIPPED} (this script knows ONNX Runtime 1.30's build)`);
    const at = found[0] + p.at;
    if (bytes[at] !== p.from) throw new Error(`${p.what}: unexpected byte at ${at}`);
    p.to.forEach((b, i) => { bytes[at + i] = b; });
  }
  fs.writeFileSync(PROXY, bytes);
}

function run(library, model, texts, options, vectorsFile) {
  const job = path.join(CACHE, 'avx2-proxy-job.json');
  fs.writeFileSync(job, JSON.stringify({ texts, queries: [], fixed: texts.slice(0, 1), batches: [], modelDir: model, options: { threads: 2, maxLength: 256, backend: 'cpu', weights: 'safetensors', cache: false, ...options }, vectorsFile }));
  const out = execFileSync(process.execPath, [path.join(__dirname, 'peer_addon.js'), job], { env: { ...process.env, ORT_DYLIB_PATH: library }, maxBuffer: 1 << 26 }).toString();
  const r = JSON.parse(out.trim().split('\n').pop());
  if (r.error) throw new Error(r.error);
  return r.corpus_s;
}

function main() {
  makeProxy();
  const flags = (/^flags\s*:(.*)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8')) || ['', ''])[1];
  const cpuFlags = ['avx2', 'avx512f', 'avx512_vnni', 'avx_vnni', 'avx512_bf16'].filter((f) => ` ${flags} `.includes(` ${f} `));
  const texts = buildCorpus(ROOT).map((s) => s.text);
  const models = [
    { name: 'MiniLM', dir: path.join(CACHE, 'minilm'), texts: texts.filter((_, i) => i % 2 === 0), dim: 384 },
    { name: 'NomicBert', dir: path.join(CACHE, 'nomic-random'), texts: texts.filter((_, i) => i % 8 === 0), dim: 768 },
  ];
  const kernels = { avx512: { library: SHIPPED, schemes: ['s8'] }, avx2: { library: PROXY, schemes: ['s8a7', 'u8', 's8'] } };
  const result = { cpuFlags, rounds: ROUNDS, runs: {} };
  for (const m of models) {
    for (const [kind, k] of Object.entries(kernels)) {
      const runs = [['fp32', { dtype: 'float32' }], ...k.schemes.map((s) => [s, { dtype: 'int8', int8Scheme: s }])];
      const best = {};
      for (let round = 0; round < ROUNDS; round++) {
        for (const [label, options] of runs) {
          const seconds = run(k.library, m.dir, m.texts, options, path.join(CACHE, `avx2-proxy-${label}.f32`));
          best[label] = Math.min(best[label] ?? Infinity, seconds);
        }
      }
      const rows = {};
      for (const [label] of runs) {
        const c = fidelity(path.join(CACHE, 'avx2-proxy-fp32.f32'), path.join(CACHE, `avx2-proxy-${label}.f32`), m.dim);
        rows[label] = { seconds: +best[label].toFixed(2), vsFp32: +(best.fp32 / best[label]).toFixed(2), minCos: c.min, p1Cos: c.p1 };
      }
      result.runs[`${m.name} ${kind} kernels (${m.texts.length} symbols)`] = rows;
    }
  }
  for (const f of fs.readdirSync(CACHE).filter((f) => f.startsWith('avx2-proxy-'))) fs.rmSync(path.join(CACHE, f));
  console.log(`cpu flags: ${cpuFlags.join(' ')}; 2 threads; best of ${ROUNDS} alternating runs; cosine to fp32 of the same kernels`);
  for (const [name, rows] of Object.entries(result.runs)) {
    console.log(name);
    for (const [label, r] of Object.entries(rows)) console.log(`  ${label.padEnd(5)} ${r.seconds.toFixed(1).padStart(6)} s  ${r.vsFp32.toFixed(2)}x fp32  min cos ${r.minCos.toFixed(5)}  p1 ${r.p1Cos.toFixed(5)}`);
  }
  if (process.argv.includes('--json')) console.log(JSON.stringify(result));
}

main();
