// XLM-RoBERTa, ModernBERT and EmbeddingGemma from JavaScript: named prompts through Model and
// Embedder, and exportOnnx, each against the vectors sentence-transformers computed in PyTorch
// for the fixtures of tests/fixtures (scripts/make-encoder-fixtures.py; tests/encoders.rs holds
// the same fixtures to them from Rust, with a mutation each).
import * as fs from 'fs';
import * as path from 'path';
import { Embedder, exportOnnx, Model } from '../js';
import { cosine, fixtureCopy, MINILM } from './helpers';

interface Reference {
  texts: string[];
  document: number[][];
  query: number[][];
  'Code Retrieval'?: number[][];
}

const scratch: string[] = [];
afterAll(() => scratch.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** The fixture in a folder of its own with MiniLM's tokenizer beside it, and its reference. */
function fixture(name: string): { dir: string; reference: Reference } {
  return fixtureCopy<Reference>(name, path.join(MINILM, 'tokenizer.json'), scratch);
}

function expectClose(label: string, ours: Float32Array[] | number[][], theirs: number[][]): void {
  const cosines = ours.map((v, i) => cosine(v, theirs[i]));
  console.log(`${label}: min cosine ${Math.min(...cosines).toFixed(7)} over ${cosines.length} texts`);
  cosines.forEach((c) => expect(c).toBeGreaterThanOrEqual(0.99999));
}

describe('the long-context encoders against PyTorch', () => {
  test("EmbeddingGemma's named prompts: per call, per model, through the Embedder, and unknown names listed", async () => {
    const { dir, reference } = fixture('embeddinggemma');
    const model = await Model.load(dir, { backend: 'cpu' });
    try {
      expect(model.info().arch).toBe('gemma3_text');
      expect(model.info().prompts).toEqual(['Code Retrieval', 'Retrieval-query', 'document', 'query']);
      expect(model.info().dim).toBe(16);
      expectClose('EmbeddingGemma documents', await model.embed(reference.texts), reference.document);
      expectClose('EmbeddingGemma queries', await model.embed(reference.texts, true), reference.query);
      expectClose("EmbeddingGemma 'Code Retrieval' per call", await model.embed(reference.texts, true, { prompt: 'Code Retrieval' }), reference['Code Retrieval']!);
      const unknown = model.embed(reference.texts, true, { prompt: 'nl2code_query' });
      await expect(unknown).rejects.toThrow(/unknown prompt 'nl2code_query': this model's prompts are 'Code Retrieval', 'Retrieval-query', 'document', 'query'/);
      expect(await unknown.catch((e) => e.code)).toBe('ERR_INPUT');
    } finally {
      await model.close();
    }
    const byOption = await Model.load(dir, { backend: 'cpu', prompt: 'Code Retrieval' });
    expectClose("EmbeddingGemma 'Code Retrieval' as InitOptions.prompt", await byOption.embed(reference.texts, false), reference['Code Retrieval']!);
    await byOption.close();
    const embedder = new Embedder({ modelDir: dir, backend: 'cpu' });
    await embedder.init();
    expectClose("EmbeddingGemma 'Code Retrieval' through the Embedder", await embedder.embed(reference.texts, true, { prompt: 'Code Retrieval' }), reference['Code Retrieval']!);
    await embedder.close();
    await expect(Model.load(dir, { prompt: 'nope' })).rejects.toThrow(/unknown prompt 'nope'/);
  });

  test.each(['xlm-roberta', 'modernbert', 'embeddinggemma'])('%s: exportOnnx writes a file whose vectors are PyTorch\'s', async (name) => {
    const { dir, reference } = fixture(name);
    const file = path.join(dir, 'exported.onnx');
    await exportOnnx(dir, file);
    const model = await Model.load(dir, { backend: 'cpu', weights: 'onnx', onnxFile: 'exported.onnx' });
    try {
      expectClose(`${name} exported ONNX`, await model.embed(reference.texts), reference.document);
    } finally {
      await model.close();
    }
  });
});
