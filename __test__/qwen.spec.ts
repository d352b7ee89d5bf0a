// The Qwen family with the real Qwen BPE tokenizer, against an independent numpy implementation
// (scripts/qwen_reference.py) that runs each text alone.
import * as fs from 'fs';
import * as native from '../index';
import { cosine, maxAbsDiff, QWEN_EOS, qwenReference, randomQwenDir, TEXTS } from './helpers';

const texts = [...TEXTS.slice(0, 9), 'x', 'interface Point { x: number; y: number }'];

describe.each([
  ['Qodo-Embed-1 layout (qwen2, bidirectional, EOS appended by us)', false],
  ['Qwen3-Embedding layout (qwen3, causal, EOS from the template)', true],
])('%s', (_, qwen3) => {
  const dir = randomQwenDir(qwen3 ? 3 : 2, qwen3);
  let model: native.Model;
  beforeAll(async () => {
    model = await native.Model.load(dir, { backend: 'cpu' });
  });
  afterAll(async () => {
    await model.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('info() reports what the snapshot says', () => {
    const info = model.info();
    expect(info).toMatchObject({
      arch: qwen3 ? 'qwen3' : 'qwen2',
      pooling: 'lasttoken',
      attention: qwen3 ? 'causal' : 'bidirectional',
      maxLength: 8192,
      dim: 32,
    });
    expect(info.weights).toMatch(/model\.safetensors\.index\.json$/);
  });

  test.each([false, true])('vectors match the numpy reference (isQuery %s)', async (isQuery) => {
    const info = model.info();
    const prefix = isQuery ? info.queryPrefix : '';
    const reference = qwenReference({ model_dir: dir, texts, max_length: info.maxLength, eos: QWEN_EOS, causal: qwen3, prefix });
    const ours = await model.embed(texts, isQuery);
    let worstCos = 1;
    let worstDiff = 0;
    ours.forEach((v, i) => {
      worstCos = Math.min(worstCos, cosine(v, reference.vectors[i]));
      worstDiff = Math.max(worstDiff, maxAbsDiff(v, reference.vectors[i]));
    });
    console.log(`${info.arch} vs numpy (isQuery ${isQuery}): min cosine ${worstCos.toFixed(7)}, max |diff| ${worstDiff.toExponential(2)}`);
    expect(worstCos).toBeGreaterThanOrEqual(0.99999);
    expect(worstDiff).toBeLessThanOrEqual(1e-4);
    // every sequence the reference ran ends with exactly one EOS
    reference.ids.forEach((ids) => expect(ids.filter((id) => id === QWEN_EOS)).toHaveLength(1));
  });

  test('a truncated text still ends with one EOS, pooled (maxLength 16)', async () => {
    const short = await native.Model.load(dir, { backend: 'cpu', maxLength: 16 });
    const long = texts[8] + ' ' + TEXTS[9];
    const reference = qwenReference({ model_dir: dir, texts: [long], max_length: 16, eos: QWEN_EOS, causal: qwen3, prefix: '' });
    expect(reference.ids[0]).toHaveLength(16);
    const [ours] = await short.embed([long]);
    expect(cosine(ours, reference.vectors[0])).toBeGreaterThanOrEqual(0.99999);
    expect(short.stats().tokens).toBe(16);
    await short.close();
  });
});
