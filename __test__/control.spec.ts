// A model in a service: log events (to a logger, and to stderr only when SEMANTIC_SEARCH_LOG asks),
// the CUDA device choice, the CPU fallback setting, and health(). The fallback itself needs a GPU
// that fails: tests/control.rs drives it with a fake GPU backend.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Embedder, Model, health, init, runtimeInfo } from '../js';
import { MINILM, runNode } from './helpers';

type Seen = [string, string, Record<string, unknown>];

// Loads MiniLM in a fresh process (so that the ONNX Runtime library loads there too) with a logger,
// embeds twice, and prints the events it received.
const SCRIPT = (cacheDir: string) => `
const { Model } = require('./dist/index.js');
const seen = [];
Model.load(${JSON.stringify(MINILM)}, { backend: 'cpu', cacheDir: ${JSON.stringify(cacheDir)}, logger: (l, e, f) => seen.push([l, e, f]) })
  .then(async (m) => {
    await m.embed(['function add(a, b) { return a + b; }', 'adds two numbers']);
    await m.embed(['a query'], true);
    setTimeout(() => console.log(JSON.stringify(seen)), 50);
  }, (e) => console.log(JSON.stringify(e.code + ' ' + e.message)));`;

const LINE = /^semantic-search-native (error|warn|info|debug) [a-z_]+( [a-z_]+=("([^"\\]|\\.)*"|\S+))*$/;

function freshCache(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'ssn-log-cache-'));
}

function run(env: NodeJS.ProcessEnv) {
  const cache = freshCache();
  try {
    const out = runNode(SCRIPT(cache), { env: { ...process.env, SEMANTIC_SEARCH_LOG: '', ...env } });
    return { ...out, events: JSON.parse(out.stdout) as Seen[] };
  } finally {
    fs.rmSync(cache, { recursive: true, force: true });
  }
}

describe('log events', () => {
  test('a logger gets every event of its model once, as objects; nothing on stderr without SEMANTIC_SEARCH_LOG', () => {
    const { events, stderr } = run({});
    expect(stderr).toBe('');
    const named = (name: string) => events.filter(([, event]) => event === name);
    for (const name of ['ort_library', 'backend', 'init']) expect(named(name)).toHaveLength(1);
    expect(named('ort_library')[0]).toEqual(['info', 'ort_library', expect.objectContaining({ library: expect.stringMatching(/onnxruntime/), version: expect.any(String) })]);
    expect(named('backend')[0][2]).toMatchObject({ backend: 'cpu', device: 'cpu', dtype: 'float32', arch: 'bert', dim: 384 });
    expect(named('graph_cache').map(([, , f]) => f.result)).toEqual(['miss', 'write']);
    expect(named('graph_cache')[0][2].reason).toMatch(/no entry/);
    const { resident_before, resident_after, seconds } = named('init')[0][2] as Record<string, number>;
    expect(resident_after).toBeGreaterThan(resident_before);
    expect(seconds).toBeGreaterThan(0);
    const calls = named('call');
    expect(calls.map(([level, , f]) => [level, f.texts, f.outcome])).toEqual([['debug', 2, 'ok'], ['debug', 1, 'ok']]);
    expect(calls[0][2]).toMatchObject({ kind: 'embed', micro_batches: 1, running: 1, tokens: expect.any(Number), seconds: expect.any(Number) });
    expect(events.filter(([level]) => level === 'warn' || level === 'error')).toEqual([]);
  }, 60000);

  test('SEMANTIC_SEARCH_LOG writes one line per event at its level and above to stderr', () => {
    const info = run({ SEMANTIC_SEARCH_LOG: 'info' });
    const lines = info.stderr.trimEnd().split('\n');
    for (const line of lines) expect(line).toMatch(LINE);
    expect(lines.filter((l) => l.startsWith('semantic-search-native info backend backend=cpu device=cpu dtype=float32 '))).toHaveLength(1);
    expect(lines.some((l) => l.includes(' debug '))).toBe(false);
    expect(lines.filter((l) => / graph_cache result=/.test(l))).toHaveLength(2);
    // the logger still gets every event, debug included
    expect(info.events.filter(([, e]) => e === 'call')).toHaveLength(2);
    const debug = run({ SEMANTIC_SEARCH_LOG: 'debug' }).stderr.trimEnd().split('\n');
    expect(debug.filter((l) => l.startsWith('semantic-search-native debug call kind=embed texts='))).toHaveLength(2);
    const warn = run({ SEMANTIC_SEARCH_LOG: 'warn' });
    expect(warn.stderr).toBe('');
  }, 120000);

  test('bad SEMANTIC_SEARCH_LOG and logger values are named', async () => {
    const bad = run({ SEMANTIC_SEARCH_LOG: 'loud' });
    expect(bad.stdout).toMatch(/ERR_ENV SEMANTIC_SEARCH_LOG is 'loud': use one of error, warn, info, debug/);
    await expect(Model.load(MINILM, { logger: 'console' as never })).rejects.toMatchObject({
      code: 'ERR_INPUT',
      message: 'options.logger must be a function (level, event, fields) => void, got a string',
    });
  });
});

describe('GPU device and CPU fallback settings', () => {
  test("device: 'cuda:7' fails clearly, naming the devices there are", async () => {
    const devices = runtimeInfo().cudaDevices;
    const error = await Model.load(MINILM, { device: 'cuda:7' }).then(() => null, (e) => e);
    if (devices > 7) return expect(error).toBeNull(); // a machine with 8 GPUs runs it
    expect(error).toMatchObject({ code: 'ERR_BACKEND_UNAVAILABLE' });
    expect(error.message).toMatch(devices === 0 ? /cuda:7 was asked for, but there are 0 CUDA devices/ : new RegExp(`cuda:7 was asked for, but the NVIDIA driver reports ${devices} CUDA device`));
  });

  test('bad device and cpuFallback values, as options and variables, are named', async () => {
    await expect(Model.load(MINILM, { device: 'gpu1' })).rejects.toMatchObject({ code: 'ERR_INPUT', message: expect.stringMatching(/device "gpu1" is not a CUDA device: use 'cuda:N'/) });
    await expect(Model.load(MINILM, { device: 'cuda:0', backend: 'cpu' })).rejects.toMatchObject({ code: 'ERR_INPUT', message: expect.stringMatching(/names a CUDA device, but backend is 'cpu'/) });
    await expect(Model.load(MINILM, { cpuFallback: 'yes' as never })).rejects.toMatchObject({ code: 'ERR_INPUT', message: expect.stringMatching(/cpuFallback/) });
    const script = `
const { Model } = require('./dist/index.js');
Model.load(${JSON.stringify(MINILM)}, { backend: 'cpu', cache: false })
  .then((m) => console.log(JSON.stringify(m.info().cpuFallback)), (e) => console.log(JSON.stringify(e.code + ' ' + e.message)));`;
    const load = (env: NodeJS.ProcessEnv) => JSON.parse(runNode(script, { env: { ...process.env, ...env } }).stdout);
    expect(load({ SEMANTIC_SEARCH_GPU_DEVICE: 'first' })).toMatch(/^ERR_ENV SEMANTIC_SEARCH_GPU_DEVICE device "first" is not a CUDA device/);
    expect(load({ SEMANTIC_SEARCH_CPU_FALLBACK: 'maybe' })).toMatch(/^ERR_ENV SEMANTIC_SEARCH_CPU_FALLBACK is "maybe", expected true or false/);
    expect(load({ SEMANTIC_SEARCH_CPU_FALLBACK: 'on' })).toBe(true);
    expect(load({})).toBe(false);
  }, 60000);
});

describe('health()', () => {
  test('a model reports its status, calls, errors, latency and queue', async () => {
    const model = await Model.load(MINILM, { backend: 'cpu', cache: false, maxConcurrentCalls: 1 });
    try {
      const fresh = model.health();
      expect(fresh).toMatchObject({ status: 'ok', backend: 'cpu', device: 'cpu', calls: 0, errors: 0, queue: { running: 0, waiting: 0 } });
      expect(fresh.latency.p50 ?? null).toBeNull();
      const calls = [model.embed(['one']), model.embed(['two']), model.embed(['three'])];
      expect(model.health().queue.waiting).toBe(2);
      await Promise.all(calls);
      await expect(model.embed(['x'], false, { task: 'no-such-task' })).rejects.toMatchObject({ code: 'ERR_INPUT' });
      const after = model.health();
      expect(after).toMatchObject({ status: 'ok', calls: 4, errors: 1, lastError: expect.stringMatching(/no-such-task/), queue: { running: 0, waiting: 0 } });
      expect(after.latency.p50).toBeGreaterThan(0);
      expect(after.latency.p99).toBeGreaterThanOrEqual(after.latency.p50!);
      expect(after.uptimeSeconds).toBeGreaterThan(0);
    } finally {
      await model.close();
    }
  });

  test('an Embedder and the default model report health too', async () => {
    const embedder = new Embedder({ models: [{ modelDir: MINILM }, { modelDir: MINILM, dimensions: 128 }], backend: 'cpu', cache: false });
    await embedder.init();
    try {
      await embedder.embed(['some code']);
      const h = embedder.health();
      expect(h).toMatchObject({ status: 'ok', backend: 'cpu', calls: 1, errors: 0 });
      expect(h.parts).toHaveLength(2);
      expect(h.latency.p50).toBe(Math.max(h.parts[0].latency.p50!, h.parts[1].latency.p50!));
    } finally {
      await embedder.close();
    }
    await init(MINILM, { backend: 'cpu', cache: false });
    expect(health()).toMatchObject({ status: 'ok', backend: 'cpu', calls: 0 });
  });
});
