// Reranking from JavaScript: Reranker.load and rerank() on the fixtures of tests/fixtures
// (scripts/make-reranker-fixtures.py; tests/rerankers.rs holds them to PyTorch from Rust, with
// a mutation each), the Embedder's reranker option, and every bad input.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Embedder, exportRerankerOnnx, Reranker } from '../js';
import { fixtureCopy, MINILM, QWEN_TOKENIZER, ROOT, runNode } from './helpers';

interface Case {
  query: string;
  instruction: string | null;
  logits: number[];
}
interface Reference {
  docs: string[];
  max_length: number;
  cases: Case[];
}

const scratch: string[] = [];
afterAll(() => scratch.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** The fixture in a folder of its own with its tokenizer beside it, and PyTorch's scores. */
function fixture(name: string): { dir: string; reference: Reference } {
  const tokenizer = name === 'rerank-qwen3' ? QWEN_TOKENIZER : path.join(MINILM, 'tokenizer.json');
  return fixtureCopy<Reference>(name, tokenizer, scratch);
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** PyTorch's hits: indices by logit, best first. */
function bestFirst(logits: number[]): number[] {
  return logits.map((_, i) => i).sort((a, b) => logits[b] - logits[a]);
}

describe('Reranker', () => {
  test.each(['rerank-bert', 'rerank-xlm-roberta', 'rerank-modernbert', 'rerank-qwen3-seq-cls', 'rerank-qwen3'])('%s: hits best first, scores as PyTorch computes them', async (name) => {
    const { dir, reference } = fixture(name);
    const reranker = await Reranker.load(dir, { backend: 'cpu', maxLength: reference.max_length });
    try {
      expect(reranker.info().dim).toBe(1);
      expect(reranker.info().head).toMatch(/ForSequenceClassification|ForCausalLM/);
      expect(reranker.isGpu()).toBe(false);
      for (const c of reference.cases) {
        const instruction = c.instruction ?? undefined;
        const hits = await reranker.rerank(c.query, reference.docs, { instruction });
        expect(hits.map((h) => h.index)).toEqual(bestFirst(c.logits));
        hits.forEach((h) => expect(Math.abs(h.score - sigmoid(c.logits[h.index]))).toBeLessThanOrEqual(1e-5));
        const raw = await reranker.rerank(c.query, reference.docs, { instruction, rawScores: true, topK: 3 });
        expect(raw).toHaveLength(3);
        raw.forEach((h) => expect(Math.abs(h.score - c.logits[h.index])).toBeLessThanOrEqual(1e-4));
        console.log(`${name}: max |raw - PyTorch| ${Math.max(...raw.map((h) => Math.abs(h.score - c.logits[h.index]))).toExponential(2)}`);
      }
      expect(reranker.stats().calls).toBe(2 * reference.cases.length);
    } finally {
      await reranker.close();
    }
    await expect(reranker.rerank('q', ['d'])).rejects.toMatchObject({ code: 'ERR_MODEL_CLOSED' });
  });

  test.each(['rerank-bert', 'rerank-modernbert'])('%s: exportRerankerOnnx writes a file whose logits are PyTorch\'s in onnxruntime-node', async (name) => {
    const { dir, reference } = fixture(name);
    const file = path.join(dir, 'reranker.onnx');
    await exportRerankerOnnx(dir, file, { maxLength: reference.max_length });
    // onnxruntime-node in a process of its own: Jest's sandbox has typed arrays of another realm
    const script = `
      const ort = require('onnxruntime-node');
      const { cases } = JSON.parse(require('fs').readFileSync(${JSON.stringify(path.join(ROOT, 'tests', 'fixtures', name, 'reference.json'))}, 'utf8'));
      (async () => {
        const session = await ort.InferenceSession.create(${JSON.stringify(file)});
        const logits = [];
        for (const c of cases) for (let i = 0; i < c.ids.length; i++) {
          const tensor = (v) => new ort.Tensor('int64', BigInt64Array.from(v.map(BigInt)), [1, v.length]);
          const feeds = { input_ids: tensor(c.ids[i]), attention_mask: tensor(c.ids[i].map(() => 1)) };
          if (session.inputNames.includes('token_type_ids')) feeds.token_type_ids = tensor(c.types[i]);
          logits.push((await session.run(feeds)).logits.data[0]);
        }
        console.log(JSON.stringify({ inputs: session.inputNames, outputs: session.outputNames, logits }));
      })();`;
    const run = runNode(script);
    expect(run.stderr).toBe('');
    const result = JSON.parse(run.stdout) as { inputs: string[]; outputs: string[]; logits: number[] };
    expect(result.outputs).toEqual(['logits']);
    expect(result.inputs.includes('token_type_ids')).toBe(name === 'rerank-bert');
    const expected = reference.cases.flatMap((c) => c.logits);
    const worst = Math.max(...result.logits.map((l, i) => Math.abs(l - expected[i])));
    console.log(`${name} exported ONNX in onnxruntime-node: max |logit - PyTorch| ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(1e-4);
  });

  test('loads by hub id from the Hugging Face cache', async () => {
    const { dir, reference } = fixture('rerank-bert');
    const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'ssn-hub-'));
    scratch.push(cache);
    const snapshot = path.join(cache, 'models--cross-encoder--tiny', 'snapshots', 'abc123');
    fs.mkdirSync(path.dirname(snapshot), { recursive: true });
    fs.cpSync(dir, snapshot, { recursive: true });
    fs.mkdirSync(path.join(cache, 'models--cross-encoder--tiny', 'refs'));
    fs.writeFileSync(path.join(cache, 'models--cross-encoder--tiny', 'refs', 'main'), 'abc123');
    const previous = process.env.HF_HUB_CACHE;
    process.env.HF_HUB_CACHE = cache;
    try {
      const reranker = await Reranker.load({ model: 'cross-encoder/tiny' }, { backend: 'cpu', maxLength: reference.max_length });
      expect(reranker.modelDir).toBe(snapshot);
      const hits = await reranker.rerank(reference.cases[0].query, reference.docs, { rawScores: true });
      expect(hits.map((h) => h.index)).toEqual(bestFirst(reference.cases[0].logits));
      await reranker.close();
    } finally {
      if (previous === undefined) delete process.env.HF_HUB_CACHE;
      else process.env.HF_HUB_CACHE = previous;
    }
  });

  test('the Embedder embeds with its model and reranks with its reranker', async () => {
    const { dir, reference } = fixture('rerank-bert');
    const embedder = new Embedder({ modelDir: MINILM, reranker: dir, backend: 'cpu', maxLength: reference.max_length });
    await expect(embedder.rerank('q', ['d'])).rejects.toMatchObject({ code: 'ERR_NOT_LOADED' });
    await embedder.init();
    try {
      const [vector] = await embedder.embed(['fn main() {}']);
      expect(vector).toHaveLength(384);
      const hits = await embedder.rerank(reference.cases[0].query, reference.docs);
      expect(hits.map((h) => h.index)).toEqual(bestFirst(reference.cases[0].logits));
    } finally {
      await embedder.close();
    }
    const plain = new Embedder({ modelDir: MINILM, backend: 'cpu' });
    await expect(plain.rerank('q', ['d'])).rejects.toMatchObject({ code: 'ERR_INPUT' });
  });

  test('bad input is an error that says what is wrong, and the reranker survives it', async () => {
    const { dir, reference } = fixture('rerank-bert');
    const reranker = await Reranker.load(dir, { backend: 'cpu' });
    const bad: Array<[string, () => Promise<unknown>, RegExp]> = [
      ['a query that is not a string', () => reranker.rerank(42 as unknown as string, ['d']), /query must be a string, got a number/],
      ['documents that are not an array', () => reranker.rerank('q', 'd' as unknown as string[]), /documents must be an array of strings, got a string/],
      ['a document that is not a string', () => reranker.rerank('q', ['d', null as unknown as string]), /documents\[1\] is null, expected a string/],
      ['topK 0', () => reranker.rerank('q', ['d'], { topK: 0 }), /topK must be a positive integer.*got 0/],
      ['topK -1', () => reranker.rerank('q', ['d'], { topK: -1 }), /topK must be a positive integer.*got -1/],
      ['topK 1.5', () => reranker.rerank('q', ['d'], { topK: 1.5 }), /topK must be a positive integer.*got 1.5/],
      ['topK "3"', () => reranker.rerank('q', ['d'], { topK: '3' as unknown as number }), /topK must be a positive integer.*got string/],
      ['an instruction for a cross-encoder', () => reranker.rerank('q', ['d'], { instruction: 'judge' }), /instruction applies to a yes\/no judge/],
    ];
    for (const [what, call, message] of bad) {
      const error = await call().then(() => null, (e: Error & { code?: string }) => e);
      expect({ what, code: error?.code, message: error?.message }).toMatchObject({ what, code: 'ERR_INPUT', message: expect.stringMatching(message) });
    }
    expect(await reranker.rerank('q', [])).toEqual([]);
    const hits = await reranker.rerank(reference.cases[0].query, reference.docs);
    expect(hits).toHaveLength(reference.docs.length);
    await reranker.close();

    const embedding = Reranker.load(MINILM, { backend: 'cpu' });
    await expect(embedding).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_MODEL', message: expect.stringMatching(/an embedding model, with no classification head/) });
    await expect(Reranker.load({ modelDir: dir, model: 'a/b' })).rejects.toMatchObject({ code: 'ERR_INPUT' });
    await expect(Reranker.load(dir, { dimensions: 1 })).rejects.toMatchObject({ code: 'ERR_INPUT', message: expect.stringMatching(/dimensions does not apply to a reranker/) });
  });
});
