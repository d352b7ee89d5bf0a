// Provider choice tells the truth: on a machine whose ONNX Runtime has no CUDA provider, `auto`
// runs on the CPU and says why, `cuda` fails with that reason, and out of memory is survived.
import * as native from '../index';
import { APPLE_SILICON, maxAbsDiff, requireModel, runNode, TEXTS } from './helpers';

// onnxruntime-node's library offers the CUDA provider but ships without its libraries when
// installed with ONNXRUNTIME_NODE_INSTALL=skip; other libraries do not offer it at all.
const UNUSABLE = /^(the CUDA execution provider failed to start: .*install ONNX Runtime's CUDA provider libraries|the ONNX Runtime library .* has no CUDA execution provider)/;

describe('provider selection without a usable GPU', () => {
  const modelDir = requireModel();

  (APPLE_SILICON ? test : test.skip)("backend 'auto' on Apple Silicon runs MLX on Metal", async () => {
    const info = await native.init(modelDir);
    expect(info.backend).toBe('mlx');
    expect(native.isGpu()).toBe(true);
    expect(info.mlxUnavailable).toBeUndefined();
  });

  (APPLE_SILICON ? test.skip : test)("backend 'auto' runs on the CPU and gives the reason in one line", async () => {
    const info = await native.init(modelDir);
    expect(info.backend).toBe('cpu');
    expect(native.isGpu()).toBe(false);
    expect(info.cudaUnavailable).toMatch(UNUSABLE);
    expect(info.cudaUnavailable).not.toContain('\n');
  });

  test("backend 'cpu' does not look for CUDA", async () => {
    const info = await native.init(modelDir, { backend: 'cpu' });
    expect(info.backend).toBe('cpu');
    expect(info.cudaUnavailable).toBeUndefined();
  });

  test("backend 'cuda' fails with the reason instead of falling back", async () => {
    const before = await native.init(modelDir);
    await expect(native.init(modelDir, { backend: 'cuda' })).rejects.toThrow(/backend 'cuda' cannot be used: the CUDA execution provider (failed to start|is missing)/);
    expect(native.info()).toEqual(before);
  });

  test('runtimeInfo reports the library, its providers and why CUDA is not usable', () => {
    const rt = native.runtimeInfo();
    expect(rt.version).toMatch(/^1\.\d+/);
    expect(rt.providers).toContain('CPUExecutionProvider');
    expect(rt.cudaUnavailable).toMatch(UNUSABLE);
  });
});

describe('out of memory in the backend', () => {
  // The seam is read at init from the process environment, which Jest sandboxes: child processes.
  const inject = (rows: number, script: string) =>
    runNode(script, { env: { ...process.env, SEMANTIC_SEARCH_NATIVE_INJECT_OOM_ROWS: String(rows) } });
  const modelDir = JSON.stringify(requireModel());

  test('halves the micro-batch and still returns every vector', async () => {
    await native.init(requireModel());
    const expected = (await native.embed(TEXTS)).map((v) => Array.from(v));
    // every forward pass of more than 2 rows fails as out of memory
    const run = inject(2, `
      const n = require('.');
      n.init(${modelDir}).then(() => n.embed(${JSON.stringify(TEXTS)}))
        .then((v) => console.log(JSON.stringify(v.map((x) => Array.from(x)))), (e) => console.log('failed', e.message));
    `);
    const vectors: number[][] = JSON.parse(run.stdout);
    expect(vectors).toHaveLength(TEXTS.length);
    vectors.forEach((v, i) => expect(maxAbsDiff(v, expected[i])).toBeLessThanOrEqual(1e-5));
  });

  test('reports a clear error when even one text does not fit, and the process goes on', () => {
    const run = inject(0, `
      const n = require('.');
      n.init(${modelDir}).then(() => n.embed(['fn main() {}'])).then(() => console.log('resolved'), (e) => console.log(e.message))
        .then(() => console.log('alive'));
    `);
    expect(run.stdout).toMatch(/out of memory: .*even a single text of \d+ tokens did not fit: lower maxLength/);
    expect(run.stdout).toContain('alive');
    expect(run.status).toBe(0);
  });
});

test('the doctor prints the runtime and the fallback reason', () => {
  const run = runNode(`process.argv[2] = ${JSON.stringify(requireModel())}; require('./dist/doctor.js');`);
  expect(run.status).toBe(0);
  expect(run.stdout).toMatch(/ONNX Runtime\s+1\.\d+/);
  expect(run.stdout).toMatch(/CUDA\s+not usable: /);
  expect(run.stdout).toMatch(APPLE_SILICON ? /runs on\s+mlx/ : /runs on\s+cpu/);
});
