// Under load, faults, hostile files and bad input. What could crash the process runs in a child
// process, bounded in time; every test prints its figures.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as native from '../index';
import { MINILM, maxAbsDiff, modelCopy, randomNomicDir, requireModel, ROOT } from './helpers';

const SCRIPTS = path.join(__dirname, 'scripts');
const CRASH = /Segmentation fault|Aborted|core dumped|panicked|terminate called|FATAL ERROR|Assertion/i;

/** Runs one of `scripts/` in a fresh node, at most `seconds`; its last stdout line as JSON. */
function child(script: string, args: string[], seconds: number, nodeArgs: string[] = []): { status: number | null; signal: string | null; stderr: string; result: any } {
  const run = spawnSync(process.execPath, [...nodeArgs, path.join(SCRIPTS, script), ROOT, ...args], { encoding: 'utf8', timeout: seconds * 1000, maxBuffer: 1 << 26 });
  const last = (run.stdout || '').trim().split('\n').pop() || 'null';
  let result: any = null;
  try {
    result = JSON.parse(last);
  } catch {
    result = { stdout: last };
  }
  return { status: run.status, signal: run.signal, stderr: run.stderr || '', result };
}

describe('concurrency', () => {
  const modelDir = requireModel();

  test('16 calls in flight at once: each vector equals a single sequential call', async () => {
    const model = await native.Model.load(modelDir, { backend: 'cpu' });
    const calls = Array.from({ length: 16 }, (_, i) => Array.from({ length: 1 + (i % 5) }, (_, j) => `call ${i} text ${j} `.repeat(1 + ((i * j) % 9))));
    const alone: Float32Array[][] = [];
    for (const texts of calls) alone.push(await Promise.all(texts.map(async (t) => (await model.embed([t]))[0])));
    const together = await Promise.all(calls.map((texts) => model.embed(texts)));
    let max = 0;
    together.forEach((vectors, i) => vectors.forEach((v, j) => (max = Math.max(max, maxAbsDiff(v, alone[i][j])))));
    console.log(`16 calls in flight: max |diff| from sequential single calls ${max}`);
    expect(max).toBeLessThanOrEqual(1e-6);
    await model.close();
  });

  test('4 worker_threads with their own require embed at once; a worker terminated mid-call harms nothing', () => {
    const { status, stderr, result } = child('workers.js', [modelDir], 120);
    console.log(`worker threads: ${JSON.stringify(result)}`);
    expect(stderr).not.toMatch(CRASH);
    expect(status).toBe(0);
    expect(result.maxDiff).toBeLessThanOrEqual(1e-6);
    expect(result.vectorSets).toBe(14);
  });

  test('init with another model while calls are in flight: they finish on the old model, later calls use the new', async () => {
    const other = randomNomicDir(5, 64);
    await native.init(modelDir, { backend: 'cpu' });
    const texts = Array.from({ length: 64 }, (_, i) => `in flight ${i} `.repeat(10));
    const oldVectors = await native.embed(texts);
    const inFlight = Array.from({ length: 6 }, () => native.embed(texts));
    const replaced = native.init(other, { backend: 'cpu' });
    const finished = await Promise.all(inFlight);
    await replaced;
    finished.forEach((vectors) => vectors.forEach((v, i) => expect(maxAbsDiff(v, oldVectors[i])).toBeLessThanOrEqual(1e-6)));
    const later = await native.embed(texts.slice(0, 2));
    expect(later[0]).toHaveLength(64);
    expect(native.info().weights).toBe(path.join(other, 'model.safetensors'));
  });
});

describe('memory', () => {
  test('10,000 calls of mixed sizes, then 100 init calls: resident memory flat (within 5 %)', () => {
    const modelDir = randomNomicDir(9, 64);
    const { status, stderr, result } = child('soak.js', [modelDir], 300, ['--expose-gc']);
    console.log(`soak: ${JSON.stringify(result)}`);
    expect(stderr).not.toMatch(CRASH);
    expect(status).toBe(0);
    expect(result.calls).toBe(10000);
    expect(Math.abs(result.at10000 - result.at1000) / result.at1000).toBeLessThanOrEqual(0.05);
    expect(Math.abs(result.after100 - result.after10) / result.after10).toBeLessThanOrEqual(0.05);
  });

  test('100,000 texts in one call: unit vectors, memory bounded by one micro-batch plus the vectors', () => {
    const modelDir = randomNomicDir(10, 64);
    const { status, stderr, result } = child('big-call.js', [modelDir], 300);
    console.log(`100,000 texts in one call: ${JSON.stringify(result)}`);
    expect(stderr).not.toMatch(CRASH);
    expect(status).toBe(0);
    expect(result.texts).toBe(100000);
    expect(result.norms[0]).toBeCloseTo(1, 5);
    expect(result.norms[1]).toBeCloseTo(1, 5);
    // the vectors (25.6 MB), their JS views, token ids of 100,000 short texts and one micro-batch
    expect(result.peak - result.before).toBeLessThan(result.vectorsMb * 4 + 200);
  });
});

describe('odd input', () => {
  let model: native.Model;
  beforeAll(async () => {
    model = await native.Model.load(requireModel(), { backend: 'cpu' });
  });
  afterAll(() => model.close());

  test('texts of 1 MB take the work of what truncation keeps, and give the vector of that start', async () => {
    const words = Array.from({ length: 200000 }, (_, i) => `w${i % 1000}`).join(' ');
    const huge = words.slice(0, 1 << 20);
    const t = performance.now();
    const [v] = await model.embed([huge]);
    const ms = performance.now() - t;
    const [start] = await model.embed([huge.slice(0, 20000)]);
    console.log(`a 1 MB text: ${ms.toFixed(1)} ms`);
    expect(maxAbsDiff(v, start)).toBeLessThanOrEqual(1e-6);
    // one giant word, and long words the vocabulary cannot split: still the exact truncation
    const [giant] = await model.embed(['x'.repeat(1 << 20)]);
    expect(Math.hypot(...giant)).toBeCloseTo(1, 5);
    const unsplittable = Array.from({ length: 3000 }, () => 'q'.repeat(150)).join(' ');
    const [a] = await model.embed([unsplittable]);
    const [b] = await model.embed([unsplittable.slice(0, 150 * 300)]);
    expect(maxAbsDiff(a, b)).toBeLessThanOrEqual(1e-6);
  });

  test('empty strings, lone surrogates, NUL, many scripts and emoji give unit vectors', async () => {
    const odd = ['', ' ', '\uD800', 'a\uDC00b', 'nul\u0000inside\u0000', '日本語のテキスト', 'العربية', 'עברית', 'हिन्दी', 'ελληνικά', '😀🚀👩‍💻🏳️‍🌈', '\u202Eright-to-left override', 'e\u0301\u0302\u0303', '\t\n\r\f\v'];
    const vectors = await model.embed(odd);
    expect(vectors).toHaveLength(odd.length);
    vectors.forEach((v) => {
      expect(v.every(Number.isFinite)).toBe(true);
      expect(Math.hypot(...v)).toBeCloseTo(1, 5);
    });
  });

  test('a sparse array is a clear error, a throwing getter throws its own error; the model carries on', async () => {
    // eslint-disable-next-line no-sparse-arrays
    const sparse = ['a', , 'b'] as string[];
    await expect(model.embed(sparse)).rejects.toMatchObject({ code: 'ERR_INPUT', message: expect.stringMatching(/texts\[1\]/) });
    const trap = ['a', 'b'];
    Object.defineProperty(trap, 1, { get: () => { throw new Error('getter says no'); } });
    // the getter runs while the call reads its arguments: the call throws (or rejects) saying which text
    const failure = async (f: () => unknown) => {
      try {
        await f();
        return null;
      } catch (e) {
        return e as Error;
      }
    };
    for (const call of [() => model.embed(trap), () => model.embedSync(trap)]) {
      expect((await failure(call))?.message).toMatch(/texts\[1\] could not be read|getter says no/);
    }
    expect(await model.embed(['still fine'])).toHaveLength(1);
  });
});

describe('damaged and hostile snapshots', () => {
  const good = requireModel();
  const st = (dir: string) => path.join(dir, 'model.safetensors');
  /** A copy of MiniLM (without its ONNX file, so the safetensors are what loads) broken by `damage`. */
  function broken(damage: (dir: string) => void): string {
    const dir = modelCopy(good);
    fs.rmSync(path.join(dir, 'onnx'), { recursive: true, force: true });
    // a file of its own, not modelCopy's link to the real model
    fs.rmSync(st(dir));
    fs.copyFileSync(st(good), st(dir));
    damage(dir);
    return dir;
  }
  function header(dir: string): { json: any; dataStart: number; bytes: Buffer } {
    const bytes = fs.readFileSync(st(dir));
    const len = Number(bytes.readBigUInt64LE(0));
    return { json: JSON.parse(bytes.subarray(8, 8 + len).toString()), dataStart: 8 + len, bytes };
  }
  function rewriteHeader(dir: string, edit: (json: any) => void): void {
    const { json, dataStart, bytes } = header(dir);
    edit(json);
    const text = Buffer.from(JSON.stringify(json));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(text.length));
    fs.writeFileSync(st(dir), Buffer.concat([len, text, bytes.subarray(dataStart)]));
  }
  const cases: Array<[string, (dir: string) => void, RegExp]> = [
    ['a truncated model.safetensors', (d) => fs.truncateSync(st(d), fs.statSync(st(d)).size >> 1), /model\.safetensors: .*past the end|truncated/],
    ['offsets past the end of the file', (d) => rewriteHeader(d, (j) => { const k = Object.keys(j).find((n) => n !== '__metadata__')!; j[k].data_offsets[1] += 1e12; }), /model\.safetensors: (.*past the end|has a malformed header \(invalid)/],
    ['overlapping offsets', (d) => rewriteHeader(d, (j) => { const [a, b] = Object.keys(j).filter((n) => n !== '__metadata__' && j[n].dtype === 'F32').slice(0, 2); j[b].data_offsets = [...j[a].data_offsets]; j[b].shape = [...j[a].shape]; }), /model\.safetensors: (.*overlapping|has a malformed header \(invalid offset)/],
    ['a tensor of the wrong shape', (d) => rewriteHeader(d, (j) => { const k = Object.keys(j).find((n) => n.endsWith('word_embeddings.weight'))!; j[k].shape = [j[k].shape[1], j[k].shape[0]]; }), /model\.safetensors: .*word_embeddings\.weight of shape/],
    ['a tensor of an unsupported dtype', (d) => rewriteHeader(d, (j) => { const k = Object.keys(j).find((n) => n.endsWith('word_embeddings.weight'))!; j[k].dtype = 'I32'; }), /model\.safetensors: stores .* as I32/],
    ['a config.json with a hidden size of 10^9', (d) => { const p = path.join(d, 'config.json'); fs.writeFileSync(p, JSON.stringify({ ...JSON.parse(fs.readFileSync(p, 'utf8')), hidden_size: 1e9 })); }, /config\.json: gives the hidden size as 1000000000/],
    ['a config.json that lies about the layers', (d) => { const p = path.join(d, 'config.json'); fs.writeFileSync(p, JSON.stringify({ ...JSON.parse(fs.readFileSync(p, 'utf8')), num_hidden_layers: 7 })); }, /model\.safetensors: has no tensor named .*layer\.6/],
    ['a tokenizer.json that is not JSON', (d) => fs.writeFileSync(path.join(d, 'tokenizer.json'), '{ not json'), /tokenizer\.json: is not a valid Hugging Face tokenizer/],
    ['a pooling path outside the snapshot (..)', (d) => fs.writeFileSync(path.join(d, 'modules.json'), JSON.stringify([{ idx: 1, name: '1', path: '../..', type: 'sentence_transformers.models.Pooling' }])), /modules\.json: puts the pooling module at "\.\.\/\.\.", outside the snapshot/],
    ['an absolute pooling path', (d) => fs.writeFileSync(path.join(d, 'modules.json'), JSON.stringify([{ idx: 1, name: '1', path: '/etc', type: 'sentence_transformers.models.Pooling' }])), /modules\.json: puts the pooling module at "\/etc", outside the snapshot/],
  ];

  test.each(cases)('%s: refused with the file and the problem; the loaded model keeps working', async (_, damage, message) => {
    await native.init(good, { backend: 'cpu', cache: false });
    const before = await native.embed(['still here']);
    const dir = broken(damage);
    const failure = await native.init(dir, { backend: 'cpu', cache: false }).then(() => null, (e) => e);
    expect(failure).not.toBeNull();
    expect(failure.message).toMatch(message);
    expect(['ERR_MODEL_FILE', 'ERR_UNSUPPORTED_MODEL']).toContain(failure.code);
    expect(maxAbsDiff((await native.embed(['still here']))[0], before[0])).toBe(0);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('an .onnx that is not ONNX, and a shard index naming a file outside the snapshot', async () => {
    const notOnnx = modelCopy(good);
    fs.rmSync(path.join(notOnnx, 'onnx', 'model.onnx')); // modelCopy's link to the real file
    fs.writeFileSync(path.join(notOnnx, 'onnx', 'model.onnx'), 'not a protobuf at all');
    await expect(native.Model.load(notOnnx, { weights: 'onnx' })).rejects.toThrow(/model\.onnx: is not a usable ONNX model/);
    const escape = broken((d) => {
      fs.renameSync(st(d), path.join(d, 'shard.safetensors'));
      fs.writeFileSync(path.join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { 'embeddings.word_embeddings.weight': '../../../etc/passwd' } }));
    });
    await expect(native.Model.load(escape)).rejects.toThrow(/index\.json: names a shard outside the snapshot/);
  });

  test('failed loads release their memory', () => {
    const script = `
      const native = require(${JSON.stringify(ROOT)});
      const dir = process.argv[1];
      (async () => {
        for (let i = 0; i < 5; i++) await native.Model.load(dir).catch(() => {});
        const first = process.memoryUsage().rss;
        for (let i = 0; i < 40; i++) await native.Model.load(dir).catch(() => {});
        console.log(JSON.stringify({ first: first / 1e6, last: process.memoryUsage().rss / 1e6 }));
      })();`;
    // every tensor read, then a layer that is not there: the most memory a failure can hold
    const dir = broken((d) => { const p = path.join(d, 'config.json'); fs.writeFileSync(p, JSON.stringify({ ...JSON.parse(fs.readFileSync(p, 'utf8')), num_hidden_layers: 7 })); });
    const run = spawnSync(process.execPath, ['-e', script, dir], { encoding: 'utf8', timeout: 120000 });
    const { first, last } = JSON.parse(run.stdout.trim());
    console.log(`40 failed loads: resident ${first.toFixed(0)} MB -> ${last.toFixed(0)} MB`);
    expect(last - first).toBeLessThan(first * 0.05);
  });
});

describe('the process', () => {
  test('onnxruntime-node and the addon alternate in one process on one ONNX Runtime library', () => {
    const { status, stderr, result } = child('with-onnxruntime-node.js', [MINILM], 120);
    console.log(`with onnxruntime-node: ${JSON.stringify(result)} ${stderr}`);
    expect(stderr).not.toMatch(CRASH);
    expect(status).toBe(0);
    expect(result.dims).toHaveLength(6);
    expect(result.mapped).toHaveLength(1);
    expect(fs.realpathSync(result.mapped[0])).toBe(fs.realpathSync(result.ortLibrary));
  });

  test.each([
    ['normal', 0, null],
    ['exit', 0, null],
  ])('exits %s with calls in flight: code %s, no crash', (how, code, signal) => {
    const run = child('exit.js', [MINILM, how as string], 60);
    expect(run.stderr).not.toMatch(CRASH);
    expect([run.status, run.signal]).toEqual([code, signal]);
  });

  test('SIGTERM with calls in flight ends the process by the signal, no crash', async () => {
    const { spawn } = await import('child_process');
    const proc = spawn(process.execPath, [path.join(SCRIPTS, 'exit.js'), ROOT, MINILM, 'signal']);
    let stderr = '';
    proc.stderr.on('data', (d) => (stderr += d));
    await new Promise<void>((resolve) => proc.stdout.on('data', (d) => String(d).includes('ready') && resolve()));
    proc.kill('SIGTERM');
    const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => proc.on('exit', (c, s) => resolve([c, s])));
    expect(stderr).not.toMatch(CRASH);
    expect([code, signal]).toEqual([null, 'SIGTERM']);
  });
});
