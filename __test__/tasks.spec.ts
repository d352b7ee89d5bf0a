// A snapshot laid out like jina-embeddings-v3 (tests/fixtures/task-tiny, made by
// scripts/make-task-model.py): an ONNX file of a model_type the addon builds no graph for, with
// external weights and a task_id input selecting a LoRA adapter; task instructions; Matryoshka
// dimensions. Held to Python onnxruntime + tokenizers + numpy (scripts/task_reference.py).
import { spawnSync } from 'child_process';
import * as path from 'path';
import * as native from '../index';
import { Embedder } from '../js/embedder';
import { cosine, maxAbsDiff, requireModel, ROOT } from './helpers';

const TASK_MODEL = path.join(ROOT, 'tests', 'fixtures', 'task-tiny');
const MAX_LENGTH = 128;
const TEXTS = [
  'sort a list of values by key',
  'read the file and return an error',
  'x',
  '',
  'Embed every SYMBOL of the code; search it with a query!',
  Array.from({ length: 200 }, (_, i) => `token${i % 10}`).join(' '), // truncated at 128 tokens
];

interface Job {
  texts: string[];
  task: string;
  onnx?: string;
  dims?: number;
  instruction?: string;
}

function reference({ onnx = 'model.onnx', ...job }: Job): number[][] {
  const run = spawnSync(path.join(ROOT, '.cache', 'venv', 'bin', 'python'), [path.join(ROOT, 'scripts', 'task_reference.py')], {
    input: JSON.stringify({ model_dir: TASK_MODEL, onnx, max_length: MAX_LENGTH, ...job }),
    maxBuffer: 1 << 26,
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`task_reference.py failed: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

function expectClose(got: Float32Array[], want: number[][], minCos = 0.99999): void {
  expect(got).toHaveLength(want.length);
  got.forEach((v, i) => {
    expect(v).toHaveLength(want[i].length);
    expect(cosine(v, want[i])).toBeGreaterThanOrEqual(minCos);
  });
}

describe('a model with tasks (jina-embeddings-v3 layout)', () => {
  let model: native.Model;
  beforeAll(async () => {
    model = await native.Model.load(TASK_MODEL);
  });
  afterAll(() => model.close());

  test('runs from its ONNX file with external weights; info lists the tasks', () => {
    const info = model.info();
    expect(info).toMatchObject({
      arch: 'xlm-roberta',
      dim: 32,
      pooling: 'mean',
      queryTask: 'retrieval.query',
      documentTask: 'retrieval.passage',
      queryPrefix: 'Represent the query for retrieving evidence documents: ',
      documentPrefix: 'Represent the document for retrieval: ',
    });
    expect(info.weights).toMatch(/onnx[\\/]model\.onnx$/);
    expect(info.tasks).toEqual(['retrieval.query', 'retrieval.passage', 'separation', 'classification', 'text-matching']);
  });

  test('queries use retrieval.query and documents retrieval.passage, adapter and instruction both', async () => {
    expectClose(await model.embed(TEXTS, true), reference({ texts: TEXTS, task: 'retrieval.query' }));
    expectClose(await model.embed(TEXTS, false), reference({ texts: TEXTS, task: 'retrieval.passage' }));
  });

  test('the adapter and the instruction each change the vector', async () => {
    const texts = TEXTS.slice(0, 2);
    const real = reference({ texts, task: 'retrieval.passage' });
    // the same adapter without the instruction, and the instruction with another adapter
    const noInstruction = reference({ texts, task: 'retrieval.passage', instruction: '' });
    const otherAdapter = reference({ texts, task: 'retrieval.query', instruction: 'Represent the document for retrieval: ' });
    real.forEach((v, i) => {
      expect(cosine(v, noInstruction[i])).toBeLessThan(0.99);
      expect(cosine(v, otherAdapter[i])).toBeLessThan(0.99);
    });
    expectClose(await model.embed(texts, false), real);
  });

  test('a task per call, or for the model, picks another adapter; an unknown one lists the known ones', async () => {
    const separation = reference({ texts: TEXTS, task: 'separation' });
    expectClose(await model.embed(TEXTS, true, { task: 'separation' }), separation);
    expectClose(model.embedSync(TEXTS, false, { task: 'separation' }), separation);
    const classifier = await native.Model.load(TASK_MODEL, { task: 'classification' });
    expectClose(await classifier.embed(TEXTS, true), reference({ texts: TEXTS, task: 'classification' }));
    expect(classifier.info().queryTask).toBe('classification');
    await classifier.close();
    await expect(model.embed(['x'], true, { task: 'clustering' })).rejects.toMatchObject({
      code: 'ERR_INPUT',
      message: expect.stringMatching(/unknown task 'clustering'.*'retrieval\.query'.*'text-matching'/),
    });
    await expect(native.Model.load(TASK_MODEL, { task: 'clustering' })).rejects.toMatchObject({ code: 'ERR_INPUT' });
  });

  test('dimensions cuts and renormalises; only the listed matryoshka_dimensions are accepted', async () => {
    const cut = await native.Model.load(TASK_MODEL, { dimensions: 16 });
    expect(cut.info().dim).toBe(16);
    const vectors = await cut.embed(TEXTS, true);
    expectClose(vectors, reference({ texts: TEXTS, task: 'retrieval.query', dims: 16 }));
    vectors.forEach((v) => expect(Math.hypot(...v)).toBeCloseTo(1, 6));
    await cut.close();
    await expect(native.Model.load(TASK_MODEL, { dimensions: 12 })).rejects.toMatchObject({
      code: 'ERR_INPUT',
      message: expect.stringMatching(/matryoshka_dimensions: \[8, 16, 32\]/),
    });
  });

  test('model_fp16.onnx is selectable, and its float16 output is pooled', async () => {
    const half = await native.Model.load(TASK_MODEL, { onnxFile: 'model_fp16.onnx' });
    expect(half.info().weights).toMatch(/model_fp16\.onnx$/);
    const want = reference({ texts: TEXTS, task: 'retrieval.query', onnx: 'model_fp16.onnx' });
    expectClose(await half.embed(TEXTS, true), want, 0.9999);
    await half.close();
  });

  test('dimensions works for models without a list too, and refuses more than the model has', async () => {
    const minilm = requireModel();
    const full = await native.Model.load(minilm);
    const cut = await native.Model.load(minilm, { dimensions: 100 });
    const [a] = await full.embed(['hello world']);
    const [b] = await cut.embed(['hello world']);
    expect(b).toHaveLength(100);
    expect(cosine(b, a.subarray(0, 100))).toBeGreaterThan(0.999999);
    await expect(native.Model.load(minilm, { dimensions: 385 })).rejects.toThrow(/from 1 to the model's 384/);
    await Promise.all([full.close(), cut.close()]);
  });
});

describe('two models of different architectures concatenated', () => {
  test('dimension, norm, and each part equal to its model alone', async () => {
    const minilm = requireModel();
    const embedder = new Embedder({ models: [{ modelDir: TASK_MODEL }, { modelDir: minilm }] });
    await embedder.init();
    expect(embedder.info().dim).toBe(32 + 384);
    const [task, bert] = await Promise.all([native.Model.load(TASK_MODEL), native.Model.load(minilm)]);
    for (const isQuery of [true, false]) {
      const both = await embedder.embedFloat32(TEXTS, isQuery);
      const first = await task.embed(TEXTS, isQuery);
      const second = await bert.embed(TEXTS, isQuery);
      both.forEach((v, i) => {
        expect(v).toHaveLength(416);
        expect(Math.hypot(...v)).toBeCloseTo(1, 6);
        // two unit vectors of weight 1, concatenated and normalised: each part is its vector / sqrt(2)
        expect(maxAbsDiff(v.subarray(0, 32).map((x) => x * Math.SQRT2), first[i])).toBeLessThan(1e-6);
        expect(maxAbsDiff(v.subarray(32).map((x) => x * Math.SQRT2), second[i])).toBeLessThan(1e-6);
      });
    }
    // a task reaches the model that knows it; the other runs as usual
    const separated = await embedder.embedFloat32(TEXTS.slice(0, 2), true, { task: 'separation' });
    const alone = await task.embed(TEXTS.slice(0, 2), true, { task: 'separation' });
    separated.forEach((v, i) => expect(maxAbsDiff(v.subarray(0, 32).map((x) => x * Math.SQRT2), alone[i])).toBeLessThan(1e-6));
    await expect(embedder.embed(['x'], true, { task: 'nope' })).rejects.toThrow(/unknown task 'nope'/);
    await Promise.all([task.close(), bert.close(), embedder.close()]);
  });
});
