// Token counts for chunkers, from JavaScript: countTokens against the Python tokenizers package
// with the same prompt, on Model, the module-level default model and the Embedder (the most
// tokens any of its models reads), and stats().truncatedTexts.
import * as path from 'path';
import { countTokens, Embedder, init, Model } from '../js';
import { MINILM, pythonTokenCounts, TEXTS } from './helpers';

const LONG = ['the '.repeat(3000), `${'ab '.repeat(900)}tail`];
const ALL = [...TEXTS, ...LONG];

describe('countTokens', () => {
  test('counts every token before truncation, prompt included, as the Python tokenizers package does', async () => {
    const model = await Model.load(MINILM, { backend: 'cpu', maxLength: 64, queryPrefix: 'search_query: ' });
    try {
      const tokenizer = path.join(MINILM, 'tokenizer.json');
      const documents = model.countTokens(ALL);
      expect(documents.constructor.name).toBe('Uint32Array');
      expect(Array.from(documents)).toEqual(pythonTokenCounts(tokenizer, ALL, 1_000_000));
      const queries = model.countTokens(ALL, true);
      expect(Array.from(queries)).toEqual(pythonTokenCounts(tokenizer, ALL.map((t) => `search_query: ${t}`), 1_000_000));
      expect(documents[TEXTS.length]).toBe(3002);
      await model.embed(ALL);
      expect(model.stats().truncatedTexts).toBe(Array.from(documents).filter((n) => n > 64).length);
      expect(() => model.countTokens([1 as unknown as string])).toThrow(/texts\[0\] is a number/);
    } finally {
      await model.close();
    }
  });

  test('the module-level model and an Embedder of two models (the most tokens either reads)', async () => {
    await init(MINILM, { backend: 'cpu' });
    const single = Array.from(countTokens(ALL));
    const embedder = new Embedder({ models: [{ modelDir: MINILM }, { modelDir: MINILM, queryPrefix: 'a much longer query prompt: ' }], backend: 'cpu' });
    await embedder.init();
    try {
      expect(Array.from(embedder.countTokens(ALL))).toEqual(single);
      const prompted = pythonTokenCounts(path.join(MINILM, 'tokenizer.json'), ALL.map((t) => `a much longer query prompt: ${t}`), 1_000_000);
      expect(Array.from(embedder.countTokens(ALL, true))).toEqual(prompted);
    } finally {
      await embedder.close();
    }
  });
});
