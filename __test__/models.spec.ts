// Several models in one process: the Model class, closing, concatenation, error codes, stats,
// configuration from the environment, and memory given back by close().
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as native from '../index';
import { Embedder } from '../js/embedder';
import { cosine, maxAbsDiff, modelCopy, pythonTokenCounts, randomNomicDir, requireModel, runNode, TEXTS } from './helpers';

const MINILM = requireModel();
const NOMIC = randomNomicDir(7);
afterAll(() => fs.rmSync(NOMIC, { recursive: true, force: true }));

/** The vectors of `texts` from a model loaded alone, then closed. */
async function alone(dir: string, texts: string[], isQuery = false): Promise<Float32Array[]> {
  const model = await native.Model.load(dir);
  try {
    return await model.embed(texts, isQuery);
  } finally {
    await model.close();
  }
}

/** The `code` of what `run` throws or rejects with. */
async function codeOf(run: () => unknown): Promise<string | undefined> {
  try {
    await run();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

describe('Model', () => {
  test('two models of different architectures embed concurrently, each as when loaded alone', async () => {
    const [bertAlone, nomicAlone] = [await alone(MINILM, TEXTS), await alone(NOMIC, TEXTS, true)];
    const [bert, nomic] = await Promise.all([native.Model.load(MINILM), native.Model.load(NOMIC)]);
    try {
      expect([bert.info().arch, nomic.info().arch]).toEqual(['bert', 'nomic_bert']);
      const runs = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? nomic.embed(TEXTS, true) : bert.embed(TEXTS))));
      let worst = 0;
      runs.forEach((vectors, i) => {
        const expected = i % 2 ? nomicAlone : bertAlone;
        vectors.forEach((v, j) => (worst = Math.max(worst, maxAbsDiff(v, expected[j]))));
      });
      console.log(`two models at once vs each alone: max |diff| ${worst.toExponential(2)} over ${runs.length} concurrent calls`);
      expect(worst).toBeLessThanOrEqual(1e-6);
      // without `threads`, both use the process's one pool: no thread per core per model
      expect([bert.info().threadPool, nomic.info().threadPool]).toEqual(['shared', 'shared']);
    } finally {
      await Promise.all([bert.close(), nomic.close()]);
    }
  });

  test('close() lets calls in flight finish, then later calls reject with ERR_MODEL_CLOSED', async () => {
    const model = await native.Model.load(MINILM);
    const [expected] = await model.embed([TEXTS[9]]);
    const inFlight = model.embed(Array.from({ length: 48 }, () => TEXTS[9]));
    const closing = model.close();
    const vectors = await inFlight;
    await closing;
    vectors.forEach((v) => expect(maxAbsDiff(v, expected)).toBeLessThanOrEqual(1e-6));
    expect(await codeOf(() => model.embed(['x']))).toBe('ERR_MODEL_CLOSED');
    expect(await codeOf(() => model.embedSync(['x']))).toBe('ERR_MODEL_CLOSED');
    expect(await codeOf(() => model.info())).toBe('ERR_MODEL_CLOSED');
    expect(await codeOf(() => model.stats())).toBe('ERR_MODEL_CLOSED');
    expect(model.isGpu()).toBe(false);
    await expect(model.embed(['x'])).rejects.toThrow(/this model was closed: load it again with Model\.load/);
    await model.close(); // twice is harmless
  });

  test('a Model is made by Model.load, not by new', () => {
    expect(() => new (native.Model as any)()).toThrow();
  });

  test('embedSync gives the vectors of embed', async () => {
    const model = await native.Model.load(MINILM);
    const sync = model.embedSync(TEXTS);
    const async_ = await model.embed(TEXTS);
    sync.forEach((v, i) => expect(maxAbsDiff(v, async_[i])).toBe(0));
    await model.close();
  });

  test('stats count calls, texts, the tokenizer\'s tokens, padding and passes', async () => {
    const model = await native.Model.load(MINILM);
    const info = model.info();
    await model.embed(TEXTS);
    await model.embed(TEXTS.slice(0, 3), true);
    await expect(model.embed([1 as any])).rejects.toThrow();
    const stats = model.stats();
    const counts = pythonTokenCounts(path.join(MINILM, 'tokenizer.json'), [...TEXTS, ...TEXTS.slice(0, 3)], info.maxLength);
    const tokens = counts.reduce((a, b) => a + b, 0);
    console.log(`stats after 2 calls: ${JSON.stringify(stats)}`);
    expect(stats.calls).toBe(2); // the refused call never reached the model
    expect(stats.texts).toBe(TEXTS.length + 3);
    expect(stats.tokens).toBe(tokens);
    expect(stats.paddedTokens).toBeGreaterThanOrEqual(tokens);
    expect(stats.forwardPasses).toBeGreaterThanOrEqual(2);
    expect(stats.oomRetries).toBe(0);
    expect(stats.backendSeconds).toBeGreaterThan(0);
    expect(stats.tokenizeSeconds).toBeGreaterThan(0);
    await model.close();
  });

  test('the default model keeps its own stats()', async () => {
    await native.init(MINILM);
    await native.embed(['a', 'b']);
    expect(native.stats()).toMatchObject({ calls: 1, texts: 2 });
  });
});

describe('error codes', () => {
  test('every failure reachable from JavaScript carries its code', async () => {
    const unsupported = modelCopy(MINILM);
    const config = JSON.parse(fs.readFileSync(path.join(unsupported, 'config.json'), 'utf8'));
    fs.writeFileSync(path.join(unsupported, 'config.json'), JSON.stringify({ ...config, model_type: 'gpt2' }));
    fs.rmSync(path.join(unsupported, 'onnx'), { recursive: true }); // with ONNX weights it would run
    try {
      await native.init(MINILM);
      const cases: Array<[string, () => unknown]> = [
        ['ERR_INPUT', () => native.embed('not an array' as any)],
        ['ERR_INPUT', () => native.embedSync([null as any])],
        ['ERR_INPUT', () => native.Model.load(MINILM, { dtype: 'int4' as any })],
        ['ERR_INPUT', () => native.Model.load(MINILM, { maxLength: 100000 })],
        ['ERR_MODEL_FILE', () => native.Model.load(path.join(os.tmpdir(), 'no-such-snapshot'))],
        ['ERR_UNSUPPORTED_MODEL', () => native.Model.load(unsupported)],
        ['ERR_BACKEND_UNAVAILABLE', () => native.Model.load(MINILM, { backend: 'mlx' })],
        ['ERR_BACKEND_UNAVAILABLE', () => native.Model.load(MINILM, { backend: 'cuda' })],
        ['ERR_ORT_LIBRARY', () => native.Model.load(MINILM, { backend: 'cpu', ortLibrary: '/elsewhere/libonnxruntime.so.1' })],
      ];
      for (const [code, run] of cases) {
        expect([code, await codeOf(run)]).toEqual([code, code]);
      }
    } finally {
      fs.rmSync(unsupported, { recursive: true, force: true });
    }
  });

  test('ERR_NOT_LOADED before init, in a fresh process', () => {
    const run = runNode(`
      const n = require('.');
      n.embed(['x']).catch((e) => console.log('embed', e.code));
      try { n.info(); } catch (e) { console.log('info', e.code); }
      try { n.stats(); } catch (e) { console.log('stats', e.code); }
    `);
    expect(run.stdout).toContain('info ERR_NOT_LOADED');
    expect(run.stdout).toContain('stats ERR_NOT_LOADED');
    expect(run.stdout).toContain('embed ERR_NOT_LOADED');
  });

  test('the ErrorCode enum lists every code', () => {
    expect(Object.values(native.ErrorCode).sort()).toEqual(
      [
        'ERR_BACKEND_UNAVAILABLE', 'ERR_ENV', 'ERR_INPUT', 'ERR_INTERNAL', 'ERR_MODEL_CLOSED', 'ERR_MODEL_FILE',
        'ERR_NOT_LOADED', 'ERR_ORT_LIBRARY', 'ERR_OUT_OF_MEMORY', 'ERR_RUNTIME', 'ERR_TOKENIZER', 'ERR_UNSUPPORTED_MODEL',
        'ERR_MODEL_NOT_FOUND', 'ERR_DOWNLOAD', 'ERR_UNSUPPORTED_PLATFORM', 'ERR_BUSY', 'ABORT_ERR', 'ERR_REMOTE',
      ].sort(),
    );
  });
});

describe('configuration from the environment', () => {
  // The variables are read by the addon from the process environment, which Jest sandboxes:
  // each case runs in a child process.
  const load = (env: Record<string, string>, options: object = {}) => {
    const run = runNode(
      `require('.').Model.load(${JSON.stringify(MINILM)}, ${JSON.stringify(options)})
         .then((m) => console.log(JSON.stringify(m.info())), (e) => console.log(JSON.stringify({ code: e.code, message: e.message })));`,
      { env: { ...process.env, ...env } },
    );
    return JSON.parse(run.stdout.trim());
  };

  test.each([
    ['SEMANTIC_SEARCH_BACKEND', 'cpu', 'backend', (i: native.ModelInfo) => i.backend === 'cpu' && i.cudaUnavailable === undefined],
    ['SEMANTIC_SEARCH_DTYPE', 'float16', 'dtype', (i: native.ModelInfo) => i.dtype === 'float16'],
    ['SEMANTIC_SEARCH_THREADS', '1', 'threads', (i: native.ModelInfo) => i.threads === 1 && i.threadPool === 'own'],
    ['SEMANTIC_SEARCH_MAX_LENGTH', '32', 'maxLength', (i: native.ModelInfo) => i.maxLength === 32],
    ['SEMANTIC_SEARCH_BATCH_TOKENS', '333', 'batchTokens', (i: native.ModelInfo) => i.batchTokens === 333],
    ['SEMANTIC_SEARCH_GPU_MEMORY_LIMIT', '2GB', 'gpuMemoryLimit', (i: native.ModelInfo) => i.gpuMemoryLimit === 2e9],
  ])('%s=%s is used, and info() says it came from the environment', (variable, value, setting, holds) => {
    const info = load({ [variable]: value });
    expect(holds(info)).toBe(true);
    expect(info.sources[setting]).toBe('env');
    const others = Object.entries(info.sources).filter(([name]) => name !== setting);
    others.forEach(([, source]) => expect(source).toBe('default'));
  });

  test('options passed in code win over the environment', () => {
    const info = load(
      { SEMANTIC_SEARCH_BACKEND: 'cuda', SEMANTIC_SEARCH_MAX_LENGTH: '32', SEMANTIC_SEARCH_THREADS: 'bad' },
      { backend: 'cpu', maxLength: 64, threads: 1 },
    );
    expect([info.backend, info.maxLength, info.threads]).toEqual(['cpu', 64, 1]);
    expect(info.sources).toMatchObject({ backend: 'option', maxLength: 'option', threads: 'option' });
  });

  test.each([
    ['SEMANTIC_SEARCH_BACKEND', 'tpu', /SEMANTIC_SEARCH_BACKEND unknown backend 'tpu'/],
    ['SEMANTIC_SEARCH_DTYPE', 'int4', /SEMANTIC_SEARCH_DTYPE unknown dtype 'int4'/],
    ['SEMANTIC_SEARCH_THREADS', 'many', /SEMANTIC_SEARCH_THREADS is "many", expected a positive integer/],
    ['SEMANTIC_SEARCH_MAX_LENGTH', '0', /SEMANTIC_SEARCH_MAX_LENGTH is "0", expected a positive integer/],
    ['SEMANTIC_SEARCH_MAX_LENGTH', '100000', /SEMANTIC_SEARCH_MAX_LENGTH is too long: maxLength 100000 is more than this model was trained for/],
    ['SEMANTIC_SEARCH_BATCH_TOKENS', '1.5', /SEMANTIC_SEARCH_BATCH_TOKENS is "1.5", expected a positive integer/],
    ['SEMANTIC_SEARCH_GPU_MEMORY_LIMIT', 'lots', /SEMANTIC_SEARCH_GPU_MEMORY_LIMIT gpuMemoryLimit "lots" is not a size/],
  ])('a malformed %s=%s is an ERR_ENV naming the variable', (variable, value, message) => {
    const result = load({ [variable]: value });
    expect(result.code).toBe('ERR_ENV');
    expect(result.message).toMatch(message);
  });
});

describe('concatenated embeddings', () => {
  test('Embedder({ models }) concatenates weighted unit vectors into one unit vector', async () => {
    const [bert, nomic] = [await alone(MINILM, TEXTS), await alone(NOMIC, TEXTS)];
    const embedder = new Embedder({ models: [{ modelDir: MINILM }, { modelDir: NOMIC, weight: 2 }] });
    await embedder.init();
    try {
      const info = embedder.info();
      expect(info.dim).toBe(384 + 128);
      expect(info.parts.map((p) => [p.info.arch, p.info.dim, p.weight])).toEqual([['bert', 384, 1], ['nomic_bert', 128, 2]]);
      const vectors = await embedder.embedFloat32(TEXTS);
      vectors.forEach((v, i) => {
        expect(v).toHaveLength(512);
        expect(Math.hypot(...v)).toBeCloseTo(1, 5);
        const [first, second] = [v.subarray(0, 384), v.subarray(384)];
        expect(cosine(first, bert[i])).toBeGreaterThan(0.999999);
        expect(cosine(second, nomic[i])).toBeGreaterThan(0.999999);
        expect(Math.hypot(...second) / Math.hypot(...first)).toBeCloseTo(2, 5);
      });
    } finally {
      await embedder.close();
    }
  });

  test('isQuery applies each model\'s own prompt, and progress covers every part', async () => {
    const nomicQuery = await alone(NOMIC, [TEXTS[0]], true);
    const bertQuery = await alone(MINILM, [TEXTS[0]], true);
    const embedder = new Embedder({ models: [{ modelDir: MINILM }, { modelDir: NOMIC }] });
    await embedder.init();
    const calls: number[] = [];
    const texts = Array.from({ length: 300 }, (_, i) => (i === 7 ? TEXTS[0] : `item ${i}`));
    const vectors = await embedder.embedFloat32(texts, true, { onProgress: (done) => calls.push(done) });
    await embedder.close();
    expect(calls).toEqual([0, 256, 300]);
    expect(cosine(vectors[7].subarray(0, 384), bertQuery[0])).toBeGreaterThan(0.999999);
    expect(cosine(vectors[7].subarray(384), nomicQuery[0])).toBeGreaterThan(0.999999);
  });
});

test('resident memory after close() is within 10% of what it was before load', () => {
  // The first model of a process also pages in ONNX Runtime's code and starts its thread pools,
  // which stay: the cycle measured is a second load, after a first model was loaded and closed.
  const run = runNode(
    `
    const n = require('.');
    const rss = () => { global.gc(); return process.memoryUsage().rss; };
    const cycle = async (options) => {
      const before = rss();
      const m = await n.Model.load(${JSON.stringify(MINILM)}, options);
      await m.embed(${JSON.stringify(TEXTS)});
      const loaded = rss();
      await m.close();
      return { before, loaded, after: rss() };
    };
    n.runtimeInfo();
    (async () => {
      const first = await cycle({ weights: 'onnx' });
      const second = await cycle({ weights: 'safetensors' });
      const third = await cycle({ weights: 'safetensors' });
      console.log(JSON.stringify({ first, second, third }));
    })();
  `,
    { env: { ...process.env, NODE_OPTIONS: '--expose-gc' } },
  );
  const cycles = JSON.parse(run.stdout.trim());
  const mb = (b: number) => `${(b / 1e6).toFixed(0)} MB`;
  for (const [name, c] of Object.entries<{ before: number; loaded: number; after: number }>(cycles)) {
    console.log(`${name} load/close: before ${mb(c.before)}, loaded ${mb(c.loaded)}, after close ${mb(c.after)} (${((c.after / c.before - 1) * 100).toFixed(1)}%)`);
  }
  for (const c of [cycles.second, cycles.third]) {
    expect(c.loaded - c.before).toBeGreaterThan(80e6); // the weights were really resident
    expect(c.after).toBeLessThanOrEqual(c.before * 1.1);
  }
});
