// Provider choice tells the truth: on a machine whose ONNX Runtime has no CUDA provider, `auto`
// runs on the CPU and says why, and `cuda` fails with that reason. (Out-of-memory retries are
// tested in Rust with a fake backend: tests/engine.rs.)
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as native from '../index';
import { APPLE_SILICON, requireModel, runNode } from './helpers';

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

test('the doctor prints the runtime and, in one line, why CUDA is not used; the whole reason with --verbose', () => {
  const doctor = (...args: string[]) => runNode(`process.argv = [process.argv[0], 'doctor', ...${JSON.stringify(args)}]; require('./dist/doctor.js');`);
  const run = doctor(requireModel());
  expect(run.status).toBe(0);
  expect(run.stdout).toMatch(/ONNX Runtime\s+1\.\d+/);
  const driver = fs.existsSync('/proc/driver/nvidia/version') || spawnSync('nvidia-smi', ['-L']).status === 0;
  const line = run.stdout.split('\n').find((l) => l.startsWith('CUDA '));
  expect(line).toMatch(driver ? /^CUDA\s+not usable: [^\n]*--verbose/ : /^CUDA\s+not available \(no NVIDIA driver found\)$/);
  expect(run.stdout).toMatch(APPLE_SILICON ? /runs on\s+mlx/ : /runs on\s+cpu/);
  const verbose = doctor(requireModel(), '--verbose');
  expect(verbose.status).toBe(0);
  expect(verbose.stdout).toMatch(/CUDA\s+not usable: /);
});
