// What a user of the addon relies on: ranking, batch independence, truncation, query prefixes.
import * as fs from 'fs';
import * as path from 'path';
import * as native from '../index';
import { cosine, maxAbsDiff, modelCopy, requireModel, TEXTS } from './helpers';

const FUNCTIONS = [
  'function parseCsvLine(line: string): string[] { return line.split(",").map((cell) => cell.trim()); }',
  'function debounce(fn: () => void, ms: number) { let timer: any; return () => { clearTimeout(timer); timer = setTimeout(fn, ms); }; }',
  'async function readConfig(path: string) { const text = await fs.promises.readFile(path, "utf8"); return JSON.parse(text); }',
  'function shuffle<T>(items: T[]): T[] { for (let i = items.length - 1; i > 0; i--) { const j = Math.floor(Math.random() * (i + 1)); [items[i], items[j]] = [items[j], items[i]]; } return items; }',
  'function isPalindrome(word: string): boolean { const w = word.toLowerCase(); return w === w.split("").reverse().join(""); }',
];

describe('embedding behaviour', () => {
  const modelDir = requireModel();

  beforeAll(async () => {
    await native.init(modelDir);
  });

  test.each([
    ['split a comma separated line into cells', 0],
    ['delay a function until calls stop for a while', 1],
    ['load settings from a JSON file', 2],
    ['randomly reorder an array', 3],
    ['check whether a word reads the same backwards', 4],
  ])('the query "%s" ranks its function first', async (query, expected) => {
    const docs = await native.embed(FUNCTIONS);
    const [q] = await native.embed([query], true);
    const scores = docs.map((d) => cosine(q, d));
    expect(scores.indexOf(Math.max(...scores))).toBe(expected);
  });

  test('a text gets the same vector alone and among long texts (max abs diff <= 1e-5)', async () => {
    const short = 'const answer = 42;';
    const long = TEXTS[9];
    const [alone] = await native.embed([short]);
    const mixed = await native.embed([long, short, TEXTS[4], long + ' more', short]);
    expect(maxAbsDiff(alone, mixed[1])).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(alone, mixed[4])).toBeLessThanOrEqual(1e-5);
  });

  test('the vector does not depend on the token budget that cuts the batches', async () => {
    const big = await native.embed(TEXTS);
    await native.init(modelDir, { batchTokens: 64 });
    const small = await native.embed(TEXTS);
    await native.init(modelDir);
    small.forEach((v, i) => expect(maxAbsDiff(v, big[i])).toBeLessThanOrEqual(1e-5));
  });

  test('a 20,000-character text is truncated at maxLength tokens, not rejected', async () => {
    const words = Array.from({ length: 6000 }, (_, i) => `w${i % 97}`).join(' ');
    const text = words.slice(0, 20000);
    expect(text.length).toBe(20000);
    const [whole] = await native.embed([text]);
    // The first 150 words tokenise to more than 256 tokens, so truncation leaves the same tokens.
    const [head] = await native.embed([text.split(' ').slice(0, 150).join(' ')]);
    expect(maxAbsDiff(whole, head)).toBeLessThanOrEqual(1e-5);
    await native.init(modelDir, { maxLength: 16 });
    const [short] = await native.embed([text]);
    await native.init(modelDir);
    expect(cosine(short, whole)).toBeLessThan(0.999);
  });

  test('the query prefix of config_sentence_transformers.json is applied only when isQuery', async () => {
    const dir = modelCopy(modelDir);
    const prefix = 'Represent this query for searching relevant code: ';
    fs.writeFileSync(path.join(dir, 'config_sentence_transformers.json'), JSON.stringify({ prompts: { query: prefix, document: '' } }));
    try {
      const info = await native.init(dir);
      expect(info.queryPrefix).toBe(prefix);
      const q = 'sort a list of numbers';
      const [asQuery] = await native.embed([q], true);
      const [asDoc] = await native.embed([q], false);
      const [prefixedByHand] = await native.embed([prefix + q], false);
      expect(maxAbsDiff(asQuery, prefixedByHand)).toBeLessThanOrEqual(1e-5);
      expect(cosine(asQuery, asDoc)).toBeLessThan(0.999);
    } finally {
      await native.init(modelDir);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('pooling comes from 1_Pooling/config.json', async () => {
    const dir = modelCopy(modelDir);
    const file = path.join(dir, '1_Pooling', 'config.json');
    fs.writeFileSync(file, JSON.stringify({ word_embedding_dimension: 384, pooling_mode_cls_token: true, pooling_mode_mean_tokens: false }));
    try {
      const [mean] = await native.embed([TEXTS[4]]);
      const info = await native.init(dir);
      expect(info.pooling).toBe('cls');
      const [cls] = await native.embed([TEXTS[4]]);
      expect(cosine(mean, cls)).toBeLessThan(0.99);
    } finally {
      await native.init(modelDir);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('init replaces the model while an embed call is in flight; that call finishes on the old model', async () => {
    const texts = Array.from({ length: 64 }, () => TEXTS[9]);
    const [expected] = await native.embed([TEXTS[9]]);
    const inFlight = native.embed(texts);
    const swapped = native.init(modelDir, { maxLength: 8 });
    const [vectors] = await Promise.all([inFlight, swapped]);
    vectors.forEach((v) => expect(maxAbsDiff(v, expected)).toBeLessThanOrEqual(1e-5));
    expect(native.info().maxLength).toBe(8);
    await native.init(modelDir);
  });

  test('concurrent embed calls all return correct vectors', async () => {
    const expected = await native.embed(TEXTS);
    const results = await Promise.all(Array.from({ length: 8 }, () => native.embed(TEXTS)));
    results.forEach((r) => r.forEach((v, i) => expect(maxAbsDiff(v, expected[i])).toBeLessThanOrEqual(1e-5)));
  });
});
