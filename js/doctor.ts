// Prints what this machine can run: the ONNX Runtime library, its providers, the GPU, and,
// given a model directory, where that model would run and why.
// Usage: npm run doctor -- [modelDir]
import { execFileSync } from 'child_process';
import * as native from '../index';

function gpus(): string {
  try {
    return execFileSync('nvidia-smi', ['--query-gpu=name,memory.total,driver_version', '--format=csv,noheader'], {
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
  console.log(`CUDA           ${rt.cudaUnavailable ? `not usable: ${rt.cudaUnavailable}` : 'usable'}`);
  const modelDir = process.argv[2] || process.env.SEMANTIC_SEARCH_MODEL_DIR;
  if (modelDir) {
    const info = await native.init(modelDir);
    console.log(`model          ${info.arch}, ${info.dim}-dim, ${info.weights}`);
    console.log(`runs on        ${info.backend} (${info.device}), ${info.threads} threads, batches of ${info.batchTokens} tokens`);
    if (info.mlxUnavailable) console.log(`MLX fallback   ${info.mlxUnavailable}`);
    if (info.cudaUnavailable) console.log(`CUDA fallback  ${info.cudaUnavailable}`);
  }
}

main().catch((e: Error) => {
  console.error(`doctor: ${e.message}`);
  process.exit(1);
});
