// The TypeScript wrapper keeps the embedder API the semantic-search code calls.
import { defaultModelDir, Embedder } from '../js/embedder';
import { cosine, requireModel, TEXTS } from './helpers';

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
  });

  test('the default model directory comes from SEMANTIC_SEARCH_MODEL_DIR, else the user cache', () => {
    const saved = process.env.SEMANTIC_SEARCH_MODEL_DIR;
    process.env.SEMANTIC_SEARCH_MODEL_DIR = '/models/x';
    expect(defaultModelDir()).toBe('/models/x');
    delete process.env.SEMANTIC_SEARCH_MODEL_DIR;
    expect(defaultModelDir()).toMatch(/\.cache\/semantic-search\/models\/CodeRankEmbed$/);
    if (saved !== undefined) process.env.SEMANTIC_SEARCH_MODEL_DIR = saved;
  });
});
