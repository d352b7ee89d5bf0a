// The MLX backend through Node: `npm run test:mlx` runs this file against the Linux MLX test
// build (MLX's CPU backend), loaded through NAPI_RS_NATIVE_LIBRARY_PATH.
import * as native from '../../index';
import { APPLE_SILICON, cosine, maxAbsDiff, requireModel, runNode, TEXTS } from '../helpers';

const ADDON = process.env.NAPI_RS_NATIVE_LIBRARY_PATH;
// On a Mac the addon's own build has MLX on Metal; on Linux, the test build on MLX's CPU backend.
const DEVICE = APPLE_SILICON ? 'MLX on the Metal GPU (float32)' : 'MLX on the CPU (float32)';

/** The same texts through ONNX Runtime on the CPU, in a child process (one model per process). */
function ortVectors(modelDir: string): number[][] {
  const run = runNode(`
    const n = require('.');
    n.init(${JSON.stringify(modelDir)}, { backend: 'cpu' })
      .then(() => n.embed(${JSON.stringify(TEXTS)}))
      .then((v) => console.log(JSON.stringify(v.map((x) => Array.from(x)))));
  `);
  if (run.status !== 0) throw new Error(run.stderr);
  return JSON.parse(run.stdout);
}

describe('MLX backend', () => {
  const modelDir = requireModel();

  beforeAll(async () => {
    if (!ADDON && !APPLE_SILICON) throw new Error('run through npm run test:mlx (it builds the MLX addon and sets NAPI_RS_NATIVE_LIBRARY_PATH)');
    await native.init(modelDir, { backend: 'mlx' });
  });

  test('init says MLX runs the model, and isGpu is true only on Metal', () => {
    const info = native.info();
    expect(info.backend).toBe('mlx');
    expect(info.device).toBe(DEVICE);
    expect(info.ortVersion).toBeUndefined();
    expect(native.isGpu()).toBe(APPLE_SILICON);
  });

  test('gives the vectors of ONNX Runtime on the same weights (cosine >= 0.99999, max abs diff <= 1e-4)', async () => {
    const ours = await native.embed(TEXTS);
    const theirs = ortVectors(modelDir);
    ours.forEach((v, i) => {
      expect(cosine(v, theirs[i])).toBeGreaterThanOrEqual(0.99999);
      expect(maxAbsDiff(v, theirs[i])).toBeLessThanOrEqual(1e-4);
    });
  });

  test('8 concurrent embed calls all return their own correct vectors', async () => {
    const expected = await native.embed(TEXTS);
    // Each call gets the texts rotated differently, so replies sent to the wrong call would show.
    const calls = Array.from({ length: 8 }, (_, k) => native.embed([...TEXTS.slice(k), ...TEXTS.slice(0, k)]));
    const results = await Promise.all(calls);
    results.forEach((vectors, k) =>
      vectors.forEach((v, i) => expect(maxAbsDiff(v, expected[(i + k) % TEXTS.length])).toBeLessThanOrEqual(1e-5)),
    );
  });

  test('bad input is rejected with a clear error and the backend keeps working', async () => {
    await expect(native.embed([42 as unknown as string])).rejects.toThrow(/string/);
    expect((await native.embed(['still fine'])).length).toBe(1);
  });

  test('the process exits cleanly after using MLX', () => {
    const run = runNode(`
      const n = require('.');
      n.init(${JSON.stringify(modelDir)}, { backend: 'mlx' }).then(() => n.embed(['a', 'b'])).then((v) => console.log('done', v.length));
    `);
    expect(run.signal).toBeNull();
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('done 2');
  });
});
