// The TypeScript wrapper keeps the embedder API the semantic-search code calls.
import { defaultModelDir, Embedder } from '../js/embedder';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { codeOf, cosine, maxAbsDiff, randomNomicDir, requireModel, TEXTS } from './helpers';

describe('Embedder', () => {
  const modelDir = requireModel();

  test('init() then embed(texts, isQuery) returns number[][]', async () => {
    const embedder = new Embedder({ modelDir });
    await embedder.init();
    const vectors = await embedder.embed(['hello', 'world']);
    expect(Array.isArray(vectors[0])).toBe(true);
    expect(vectors[0]).toHaveLength(384);
    expect(embedder.isGpu()).toBe(false);
    expect(embedder.info().dim).toBe(384);
  });

  test('embedFloat32 gives the same vectors as Float32Arrays', async () => {
    const embedder = new Embedder({ modelDir });
    await embedder.init();
    const plain = await embedder.embed(TEXTS);
    const typed = await embedder.embedFloat32(TEXTS);
    // Jest runs tests in another realm, so instanceof would compare two Float32Array constructors
    expect(Object.prototype.toString.call(typed[0])).toBe('[object Float32Array]');
    typed.forEach((v, i) => expect(cosine(v, plain[i])).toBeGreaterThan(0.999999));
  });

  test('onProgress reports growing counts up to the total, and vectors stay in input order', async () => {
    const embedder = new Embedder({ modelDir });
    await embedder.init();
    const texts = Array.from({ length: 600 }, (_, i) => `function f${i}() { return ${'x'.repeat(i % 50)}; }`);
    const calls: Array<[number, number]> = [];
    const withProgress = await embedder.embedFloat32(texts, false, { onProgress: (d, t) => calls.push([d, t]) });
    const without = await embedder.embedFloat32(texts);
    expect(calls[0]).toEqual([0, 600]);
    expect(calls[calls.length - 1]).toEqual([600, 600]);
    calls.forEach(([d], i) => i > 0 && expect(d).toBeGreaterThan(calls[i - 1][0]));
    withProgress.forEach((v, i) => expect(cosine(v, without[i])).toBeGreaterThan(0.99999));
  });

  test('embed before init() says to call init()', async () => {
    await expect(new Embedder({ modelDir }).embed(['x'])).rejects.toThrow(/call and await init\(\)/);
    await expect(new Embedder({ modelDir }).embed(['x'])).rejects.toMatchObject({ code: 'ERR_NOT_LOADED' });
  });

  test('two Embedders of different models in one process each give their own vectors', async () => {
    const nomicDir = randomNomicDir(11);
    try {
      const single = async (dir: string) => {
        const e = new Embedder({ modelDir: dir });
        await e.init();
        const v = await e.embedFloat32(TEXTS);
        await e.close();
        return v;
      };
      const [bertAlone, nomicAlone] = [await single(modelDir), await single(nomicDir)];
      const bert = new Embedder({ modelDir });
      const nomic = new Embedder({ modelDir: nomicDir });
      await bert.init();
      await nomic.init();
      const [b, n] = await Promise.all([bert.embedFloat32(TEXTS), nomic.embedFloat32(TEXTS)]);
      expect([b[0].length, n[0].length]).toEqual([384, 128]);
      b.forEach((v, i) => expect(maxAbsDiff(v, bertAlone[i])).toBeLessThanOrEqual(1e-6));
      n.forEach((v, i) => expect(maxAbsDiff(v, nomicAlone[i])).toBeLessThanOrEqual(1e-6));
      expect([bert.info().arch, nomic.info().arch]).toEqual(['bert', 'nomic_bert']);
      await Promise.all([bert.close(), nomic.close()]);
      await expect(bert.embed(['x'])).rejects.toThrow(/call and await init\(\)/);
    } finally {
      fs.rmSync(nomicDir, { recursive: true, force: true });
    }
  });

  test('models and modelDir together, an empty list, or a bad weight are refused', () => {
    expect(() => new Embedder({ modelDir, models: [{ modelDir }] })).toThrow(/either modelDir\/model or models/);
    expect(() => new Embedder({ models: [] })).toThrow(/models is empty/);
    expect(() => new Embedder({ models: [{ modelDir, weight: 0 }] })).toThrow(/weight .* must be a positive number/);
    for (const options of [{ modelDir, models: [{ modelDir }] }, { models: [] }, { models: [{ modelDir, weight: 0 }] }]) {
      expect(codeOf(() => new Embedder(options))).toBe('ERR_INPUT');
    }
  });

  test('modelDir and model together are refused at init', async () => {
    await expect(new Embedder({ modelDir, model: 'nomic-ai/CodeRankEmbed' }).init()).rejects.toThrow(/either modelDir or model, not both/);
    await expect(new Embedder({ modelDir, model: 'nomic-ai/CodeRankEmbed' }).init()).rejects.toMatchObject({ code: 'ERR_INPUT' });
  });

  test('the default model comes from SEMANTIC_SEARCH_MODEL_DIR, else the Hugging Face cache, else an error with the download command', () => {
    const saved = { ...process.env };
    const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'ssn-hf-'));
    try {
      process.env.SEMANTIC_SEARCH_MODEL_DIR = '/models/x';
      expect(defaultModelDir()).toBe('/models/x');
      delete process.env.SEMANTIC_SEARCH_MODEL_DIR;
      process.env.HF_HUB_CACHE = cache;
      if (fs.existsSync(path.join(os.homedir(), '.cache', 'semantic-search', 'models', 'CodeRankEmbed'))) return; // a user's own copy wins
      expect(() => defaultModelDir()).toThrow(/run `npx semantic-search-native download nomic-ai\/CodeRankEmbed`/);
      const snapshot = path.join(cache, 'models--nomic-ai--CodeRankEmbed', 'snapshots', 'a'.repeat(40));
      fs.mkdirSync(snapshot, { recursive: true });
      fs.writeFileSync(path.join(snapshot, 'config.json'), '{}');
      fs.mkdirSync(path.join(cache, 'models--nomic-ai--CodeRankEmbed', 'refs'));
      fs.writeFileSync(path.join(cache, 'models--nomic-ai--CodeRankEmbed', 'refs', 'main'), 'a'.repeat(40));
      expect(defaultModelDir()).toBe(snapshot);
    } finally {
      process.env = saved;
      fs.rmSync(cache, { recursive: true, force: true });
    }
  });
});
