// The addon against an independent computation of the same ONNX file: Python onnxruntime,
// Python tokenizers and numpy pooling.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as native from '../index';
import { cosine, pythonReference, requireModel, TEXTS } from './helpers';

/** The Python reference's vectors of TEXTS through `onnx`, with MiniLM's tokenizer, truncation and pooling. */
const minilmReference = (onnx: string) =>
  pythonReference({ model_dir: requireModel(), onnx, texts: TEXTS, max_length: 256, pooling: 'mean' });

describe('real all-MiniLM-L6-v2 int8 ONNX', () => {
  const modelDir = requireModel();
  let info: native.ModelInfo;

  beforeAll(async () => {
    info = await native.init(modelDir, { weights: 'onnx' });
  });

  test('reads the model facts from the snapshot files', () => {
    expect(info).toMatchObject({ backend: 'cpu', arch: 'bert', dim: 384, maxLength: 256, pooling: 'mean', queryPrefix: '' });
    expect(info.weights).toBe(path.join(modelDir, 'onnx', 'model.onnx'));
    expect(info.ortVersion).toMatch(/^1\.\d+\.\d+/);
    expect(native.isGpu()).toBe(false);
  });

  test('matches Python onnxruntime + tokenizers + numpy with cosine >= 0.99999 for every text', async () => {
    const ours = await native.embed(TEXTS);
    const theirs = minilmReference(path.join(modelDir, 'onnx', 'model.onnx'));
    const cosines = ours.map((v, i) => cosine(v, theirs[i]));
    console.log(`cosine to the Python reference: min ${Math.min(...cosines).toFixed(7)} over ${cosines.length} texts`);
    cosines.forEach((c) => expect(c).toBeGreaterThanOrEqual(0.99999));
  });

  test('returns unit-length vectors of the model dimension, in input order', async () => {
    const all = await native.embed(TEXTS);
    const one = await native.embed([TEXTS[4]]);
    expect(all).toHaveLength(TEXTS.length);
    all.forEach((v) => expect(Math.hypot(...v)).toBeCloseTo(1, 5));
    expect(cosine(all[4], one[0])).toBeGreaterThan(0.99999);
  });

  test('embedSync gives the same vectors as embed', async () => {
    const a = await native.embed(TEXTS.slice(0, 4));
    const b = native.embedSync(TEXTS.slice(0, 4));
    b.forEach((v, i) => expect(cosine(v, a[i])).toBeGreaterThan(0.999999));
  });
});

describe('real all-MiniLM-L6-v2 from model.safetensors (graph built in memory)', () => {
  const modelDir = requireModel();

  test('auto picks model.safetensors when present and names it', async () => {
    const info = await native.init(modelDir);
    expect(info.weights).toBe(path.join(modelDir, 'model.safetensors'));
  });

  test('matches the Python reference and the int8 ONNX within cosine >= 0.995 for every text', async () => {
    await native.init(modelDir, { weights: 'safetensors' });
    const fp32 = await native.embed(TEXTS);
    await native.init(modelDir, { weights: 'onnx' });
    const int8 = await native.embed(TEXTS);
    const python = minilmReference(path.join(modelDir, 'onnx', 'model.onnx'));
    const toPython = fp32.map((v, i) => cosine(v, python[i]));
    const toInt8 = fp32.map((v, i) => cosine(v, int8[i]));
    console.log(`safetensors fp32 vs Python int8 reference: min cosine ${Math.min(...toPython).toFixed(5)}; vs our int8 ONNX: ${Math.min(...toInt8).toFixed(5)}`);
    toPython.forEach((c) => expect(c).toBeGreaterThanOrEqual(0.995));
    toInt8.forEach((c) => expect(c).toBeGreaterThanOrEqual(0.995));
  });

  test('exportOnnx writes the same graph as a standard ONNX file that Python onnxruntime runs to the same vectors', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ssn-export-')), 'model.onnx');
    try {
      await native.exportOnnx(modelDir, file);
      await native.init(modelDir, { weights: 'safetensors' });
      const ours = await native.embed(TEXTS);
      const python = minilmReference(file);
      const cosines = ours.map((v, i) => cosine(v, python[i]));
      console.log(`exported fp32 ONNX under Python onnxruntime vs the addon: min cosine ${Math.min(...cosines).toFixed(7)}`);
      cosines.forEach((c) => expect(c).toBeGreaterThanOrEqual(0.99999));
    } finally {
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
    }
  });

  // Both sides run each text alone (the reference script's batch of 1).
  test("exportOnnx with dtype 'int8' writes the quantised graph, which Python onnxruntime runs to the addon's int8 vectors", async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ssn-export-')), 'model.onnx');
    try {
      await native.exportOnnx(modelDir, file, { dtype: 'int8' });
      expect(fs.statSync(file).size).toBeLessThan(0.8 * fs.statSync(path.join(modelDir, 'model.safetensors')).size);
      await native.init(modelDir, { weights: 'safetensors', dtype: 'int8' });
      const ours = [];
      for (const text of TEXTS) ours.push((await native.embed([text]))[0]);
      const python = pythonReference({ model_dir: modelDir, onnx: file, texts: TEXTS, max_length: 256, pooling: 'mean', batch: 1 });
      const cosines = ours.map((v, i) => cosine(v, python[i]));
      console.log(`exported int8 ONNX under Python onnxruntime vs the addon's int8: min cosine ${Math.min(...cosines).toFixed(7)}`);
      cosines.forEach((c) => expect(c).toBeGreaterThanOrEqual(0.99999));
      await expect(native.exportOnnx(modelDir, file, { dtype: 'int4' as any })).rejects.toThrow(/unknown dtype 'int4'/);
      // a precision the CPU graph cannot take is refused, not written as float32
      await expect(native.exportOnnx(modelDir, file, { dtype: 'bfloat16' })).rejects.toMatchObject({
        code: 'ERR_INPUT',
        message: expect.stringMatching(/bfloat16' runs on MLX only/),
      });
    } finally {
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
    }
  });
});
