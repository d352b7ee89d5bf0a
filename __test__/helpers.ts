import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export const ROOT = path.join(__dirname, '..');
export const MINILM = path.join(ROOT, '.cache', 'models', 'all-MiniLM-L6-v2');
/** Where `backend: 'auto'` runs MLX (on Metal) instead of ONNX Runtime. */
export const APPLE_SILICON = process.platform === 'darwin' && process.arch === 'arm64';

export function requireModel(): string {
  if (!fs.existsSync(path.join(MINILM, 'onnx', 'model.onnx'))) {
    throw new Error(`test model missing at ${MINILM}: run npm run fetch-models`);
  }
  return MINILM;
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/** Vectors from Python onnxruntime + tokenizers + numpy (scripts/reference.py). */
export function pythonReference(job: { model_dir: string; onnx: string; texts: string[]; max_length: number; pooling: string; batch?: number }): number[][] {
  const run = spawnSync(path.join(ROOT, '.cache', 'venv', 'bin', 'python'), [path.join(ROOT, 'scripts', 'reference.py')], {
    input: JSON.stringify(job),
    maxBuffer: 1 << 28,
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`reference.py failed: ${run.stderr}`);
  return JSON.parse(run.stdout).vectors;
}

/** Runs a script in a fresh Node process (the addon holds one model per process). */
export function runNode(
  script: string,
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): { status: number | null; stdout: string; stderr: string; signal: string | null } {
  const run = spawnSync(process.execPath, ['-e', script], {
    cwd: options.cwd ?? ROOT,
    env: options.env ?? process.env,
    encoding: 'utf8',
    timeout: 120000,
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr, signal: run.signal };
}

/** A copy of a model directory (big files linked, not copied) that a test may change. */
export function modelCopy(from: string): string {
  const to = fs.mkdtempSync(path.join(os.tmpdir(), 'ssn-model-'));
  const copy = (src: string, dst: string) => {
    for (const entry of fs.readdirSync(src, { withFileTypes: true })) {
      const s = path.join(src, entry.name), d = path.join(dst, entry.name);
      if (entry.isDirectory()) {
        fs.mkdirSync(d);
        copy(s, d);
      } else if (entry.name.endsWith('.onnx') || entry.name.endsWith('.safetensors')) {
        fs.symlinkSync(s, d);
      } else {
        fs.copyFileSync(s, d);
      }
    }
  };
  copy(from, to);
  return to;
}

/** Code and prose of mixed lengths, one far past the truncation limit. */
export const TEXTS: string[] = [
  'function add(a: number, b: number): number { return a + b; }',
  'Reads a file and returns its lines.',
  '',
  'fn main() { println!("hello"); }',
  'class Stack<T> { private items: T[] = []; push(x: T) { this.items.push(x); } pop(): T | undefined { return this.items.pop(); } }',
  'def fibonacci(n):\n    """Return the n-th Fibonacci number."""\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a',
  'SELECT name, count(*) FROM users GROUP BY name HAVING count(*) > 1;',
  'Ünïcödé text — with emoji 🚀 and CJK 漢字',
  'export async function fetchJson(url: string) { const res = await fetch(url); if (!res.ok) throw new Error(res.statusText); return res.json(); }',
  Array.from({ length: 400 }, (_, i) => `const value${i} = compute(${i}) * factor;`).join('\n'),
  'x',
  'interface Point { x: number; y: number }',
];
