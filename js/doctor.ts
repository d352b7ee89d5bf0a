// Prints what this machine can run: the ONNX Runtime library, its providers, the GPU, and,
// given a model directory, where that model runs and why, and its figures after a short run.
// Usage: npm run doctor -- [modelDir] [--verbose]
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as native from '../index';

const VERBOSE = process.argv.includes('--verbose');

/** A loaded NVIDIA kernel driver (Linux), or an nvidia-smi that answers. */
function nvidiaDriver(): boolean {
  if (fs.existsSync('/proc/driver/nvidia/version')) return true;
  try {
    execFileSync('nvidia-smi', ['-L'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** One line; the loader's whole message only with --verbose. */
function cuda(unavailable: string | undefined | null): string {
  if (!unavailable) return 'usable';
  if (VERBOSE) return `not usable: ${unavailable}`;
  if (!nvidiaDriver()) return 'not available (no NVIDIA driver found)';
  return `not usable: ${unavailable.split(/[:(]/)[0].trim()} (--verbose for the loader's message)`;
}

function gpus(): string {
  try {
    return execFileSync('nvidia-smi', ['--query-gpu=index,name,memory.total,driver_version', '--format=csv,noheader'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return 'none found (nvidia-smi is not available)';
  }
}

async function main(): Promise<void> {
  const rt = native.runtimeInfo(process.env.ORT_DYLIB_PATH || undefined);
  console.log(`ONNX Runtime   ${rt.version} from ${rt.library}`);
  console.log(`providers      ${rt.providers.join(', ')}`);
  console.log(`NVIDIA GPUs    ${gpus()}`);
  console.log(`CUDA           ${cuda(rt.cudaUnavailable)}`);
  console.log(`CUDA devices   ${rt.cudaDevices} (device: 'cuda:N' or SEMANTIC_SEARCH_GPU_DEVICE=N picks one)`);
  const modelDir = process.argv.slice(2).find((a) => !a.startsWith('--')) || process.env.SEMANTIC_SEARCH_MODEL_DIR;
  if (modelDir) {
    const model = await native.Model.load(modelDir);
    const info = model.info();
    console.log(`model          ${info.arch}, ${info.dim}-dim, ${info.weights}`);
    console.log(`runs on        ${info.backend} (${info.device}), ${info.threads} threads (${info.threadPool} pool), batches of ${info.batchTokens} tokens`);
    const set = Object.entries(info.sources).filter(([, source]) => source !== 'default');
    console.log(`settings from  ${set.length ? set.map(([name, source]) => `${name}: ${source}`).join(', ') : 'defaults'}`);
    console.log(`graph cache    ${info.cache}${info.cacheEntry ? ` ${info.cacheEntry}` : ''}${info.cacheNote ? ` (${info.cacheNote})` : ''}`);
    if (info.tasks.length) console.log(`tasks          ${info.tasks.join(', ')} (queries: ${info.queryTask}, documents: ${info.documentTask})`);
    if (info.mlxUnavailable) console.log(`MLX fallback   ${info.mlxUnavailable}`);
    if (info.cudaUnavailable && VERBOSE) console.log(`CUDA fallback  ${info.cudaUnavailable}`);
    await model.embed(SAMPLE);
    await model.embed(['find where texts are split into batches'], true);
    const s = model.stats();
    console.log(`test run       ${s.calls} calls, ${s.texts} texts, ${s.tokens} tokens (${s.paddedTokens} padded), ${s.forwardPasses} forward passes, ${s.oomRetries} out-of-memory retries`);
    console.log(`time           tokenising ${(s.tokenizeSeconds * 1000).toFixed(1)} ms, backend ${(s.backendSeconds * 1000).toFixed(1)} ms`);
    console.log(`health         ${JSON.stringify(model.health())}`);
    await model.close();
  }
}

// A short run of code and prose of different lengths.
const SAMPLE = [
  'function add(a: number, b: number): number { return a + b; }',
  'Reads a file and returns its lines.',
  'class Stack<T> { private items: T[] = []; push(x: T) { this.items.push(x); } pop(): T | undefined { return this.items.pop(); } }',
  'def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a',
];

main().catch((e: Error) => {
  console.error(`doctor: ${e.message}`);
  process.exit(1);
});
