// Bad input gets a clear Error, the process survives, and the loaded model stays usable.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as native from '../index';
import { modelCopy, requireModel, ROOT, runNode, TEXTS } from './helpers';

describe('bad input', () => {
  const modelDir = requireModel();
  const scratch: string[] = [];

  const brokenCopy = (change: (dir: string) => void): string => {
    const dir = modelCopy(modelDir);
    scratch.push(dir);
    change(dir);
    return dir;
  };

  beforeAll(async () => {
    await native.init(modelDir);
  });

  afterAll(() => scratch.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  afterEach(async () => {
    // whatever failed, the loaded model still answers
    const [v] = await native.embed(['still alive']);
    expect(v).toHaveLength(384);
  });

  test('embed before init says to call init first (fresh process)', () => {
    const run = runNode(`
      const n = require('.');
      n.embed(['x']).then(() => console.log('resolved'), (e) => console.log('rejected:', e instanceof Error, e.message));
      try { n.info(); } catch (e) { console.log('info:', e.message); }
      console.log('isGpu:', n.isGpu());
    `);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('call and await init');
    expect(run.stdout).toContain('isGpu: false');
    expect(run.stdout).not.toContain('resolved');
  });

  test.each([
    ['a string', 'not an array', /texts must be an array of strings, got a string/],
    ['a number', 42, /texts must be an array of strings, got a number/],
    ['undefined', undefined, /texts must be an array of strings, got undefined/],
    ['an array holding a number', ['ok', 7], /texts\[1\] is a number, expected a string/],
    ['an array holding null', [null], /texts\[0\] is null, expected a string/],
  ])('embed of %s is rejected with a clear message', async (_, input, message) => {
    await expect(native.embed(input as any)).rejects.toThrow(message);
    expect(() => native.embedSync(input as any)).toThrow(message);
  });

  test('an empty array returns []', async () => {
    expect(await native.embed([])).toEqual([]);
    expect(native.embedSync([])).toEqual([]);
  });

  test('an empty string and a 1 MB string return vectors', async () => {
    const vectors = await native.embed(['', 'y'.repeat(1 << 20)]);
    expect(vectors).toHaveLength(2);
    vectors.forEach((v) => expect(Math.hypot(...v)).toBeCloseTo(1, 5));
  });

  test('init on a missing directory names it', async () => {
    const missing = path.join(os.tmpdir(), 'no-such-model-dir');
    await expect(native.init(missing)).rejects.toThrow(`${missing}: is not a directory`);
  });

  test('init on a directory without tokenizer.json names the file', async () => {
    const dir = brokenCopy((d) => fs.rmSync(path.join(d, 'tokenizer.json')));
    await expect(native.init(dir)).rejects.toThrow(/tokenizer\.json: is missing/);
  });

  test('init on a corrupt .onnx names the file', async () => {
    const dir = brokenCopy((d) => {
      fs.rmSync(path.join(d, 'onnx', 'model.onnx'));
      fs.writeFileSync(path.join(d, 'onnx', 'model.onnx'), 'this is not a protobuf');
    });
    await expect(native.init(dir, { weights: 'onnx' })).rejects.toThrow(/model\.onnx: is not a usable ONNX model/);
  });

  test('an unknown model_type runs from its ONNX file; without one, the error names it and the supported ones', async () => {
    const dir = brokenCopy((d) => {
      const config = JSON.parse(fs.readFileSync(path.join(d, 'config.json'), 'utf8'));
      fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ ...config, model_type: 'gpt2' }));
    });
    const info = await native.init(dir);
    expect(info).toMatchObject({ arch: 'gpt2', dim: 384 });
    expect(info.weights).toMatch(/model\.onnx$/);
    fs.rmSync(path.join(dir, 'onnx'), { recursive: true });
    await expect(native.init(dir)).rejects.toThrow(
      /config\.json: has model_type "gpt2", which this addon cannot build from model\.safetensors \(supported: "bert", "roberta", "xlm-roberta", "modernbert", "gemma3_text", "nomic_bert".*ONNX weights/,
    );
    await expect(native.init(dir, { weights: 'safetensors' })).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_MODEL' });
  });

  test('init on a corrupt model.safetensors names the file', async () => {
    const dir = brokenCopy((d) => {
      fs.rmSync(path.join(d, 'model.safetensors'));
      fs.writeFileSync(path.join(d, 'model.safetensors'), Buffer.from([8, 0, 0, 0, 0, 0, 0, 0, 123, 125]));
    });
    await expect(native.init(dir)).rejects.toThrow(/model\.safetensors: /);
  });

  test('weights: safetensors on a snapshot without them says so', async () => {
    const dir = brokenCopy((d) => fs.rmSync(path.join(d, 'model.safetensors')));
    await expect(native.init(dir, { weights: 'safetensors' })).rejects.toThrow(/has no model\.safetensors/);
  });

  test('init on a malformed config.json names the file', async () => {
    const dir = brokenCopy((d) => fs.writeFileSync(path.join(d, 'config.json'), '{ not json'));
    await expect(native.init(dir)).rejects.toThrow(/config\.json: is not valid JSON/);
  });

  test('init with bad options says what is allowed', async () => {
    await expect(native.init(modelDir, { maxLength: 4096 })).rejects.toThrow(/maxLength 4096 is more than this model was trained for \(512 tokens\)/);
    await expect(native.init(modelDir, { backend: 'tpu' as any })).rejects.toThrow(/unknown backend 'tpu'/);
    await expect(native.init(modelDir, { onnxFile: 'nope.onnx' })).rejects.toThrow(/nope\.onnx: was named by onnxFile but does not exist/);
    await expect(native.init(modelDir, { threads: 0 })).rejects.toThrow(/threads must be a positive integer/);
    await expect(native.init(modelDir, { weights: 'pt' as any })).rejects.toThrow(/unknown weights 'pt'/);
  });

  test('a failed init leaves the previous model in place', async () => {
    const before = native.info();
    await expect(native.init(path.join(os.tmpdir(), 'missing'))).rejects.toThrow();
    expect(native.info()).toEqual(before);
    expect((await native.embed(TEXTS)).length).toBe(TEXTS.length);
  });
});

describe('the process', () => {
  test('exits cleanly after using the addon (no crash at exit)', () => {
    const modelDir = requireModel();
    const run = runNode(`
      const n = require('.');
      n.init(${JSON.stringify(modelDir)}).then(() => n.embed(['a', 'b'])).then((v) => console.log('done', v.length));
    `);
    expect(run.signal).toBeNull();
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('done 2');
  });

  test('when no ONNX Runtime library loads, the error lists every place tried', () => {
    // A copy of the addon away from node_modules, so that onnxruntime-node is not found either.
    const modelDir = requireModel();
    const lonely = fs.mkdtempSync(path.join(os.tmpdir(), 'ssn-addon-'));
    const addon = fs.readdirSync(ROOT).find((f) => f.endsWith('.node'))!;
    fs.copyFileSync(path.join(ROOT, addon), path.join(lonely, 'addon.node'));
    try {
      const run = runNode(
        `require('./addon.node').init(${JSON.stringify(modelDir)}, { backend: 'cpu', ortLibrary: '/nonexistent/libonnxruntime.so' })
           .then(() => console.log('loaded'), (e) => console.log(e.message));`,
        { cwd: lonely, env: { ...process.env, ORT_DYLIB_PATH: '/also/missing/libonnxruntime.so' } },
      );
      expect(run.status).toBe(0);
      expect(run.stdout).toContain('could not load the ONNX Runtime library. Tried:');
      expect(run.stdout).toContain('/nonexistent/libonnxruntime.so (ortLibrary option): no such file');
      expect(run.stdout).toContain('/also/missing/libonnxruntime.so (ORT_DYLIB_PATH): no such file');
      expect(run.stdout).toMatch(/libonnxruntime\.so \(system library\)/);
    } finally {
      fs.rmSync(lonely, { recursive: true, force: true });
    }
  });

  test('an ortLibrary that does not load falls back to the next place', () => {
    const run = runNode(`
      require('.').init(${JSON.stringify(requireModel())}, { backend: 'cpu', ortLibrary: '/nonexistent/libonnxruntime.so' })
        .then((info) => console.log('loaded', info.ortLibrary), (e) => console.log(e.message));
    `);
    expect(run.stdout).toMatch(/loaded .*onnxruntime-node/);
  });
});
