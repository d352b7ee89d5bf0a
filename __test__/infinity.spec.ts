// The remote backend against a real embedding server: Infinity (PyPI infinity-emb, installed by
// scripts/infinity-setup into .cache/infinity) started here on 127.0.0.1, serving the MiniLM test
// model and the tiny BERT cross-encoder fixture from their folders, offline, on PyTorch's CPU.
// Its vectors and scores, fetched through `remote`, equal this addon's local ones.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { Embedder, Reranker } from '../js';
import { cosine, fixtureCopy, MINILM, ROOT } from './helpers';

const INFINITY = path.join(ROOT, '.cache', 'infinity', 'bin', 'infinity_emb');

const TEXTS = [
  'function add(a: number, b: number): number { return a + b; }',
  'Reads a file and returns its lines.',
  'class Stack<T> { private items: T[] = []; push(x: T) { this.items.push(x); } }',
  'def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a',
  'where are texts split into batches',
  'SELECT name FROM users WHERE id = ?',
  'ünïcödé — 漢字 and emoji 🚀 in a comment',
  '',
  'x'.repeat(3000),
];

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describe('a real Infinity server', () => {
  let server: ChildProcess;
  let url: string;
  const scratch: string[] = [];
  let rerankerDir: string;

  beforeAll(async () => {
    if (!fs.existsSync(INFINITY)) throw new Error(`Infinity is not installed at ${INFINITY}: run bash scripts/infinity-setup (npm test runs it)`);
    rerankerDir = fixtureCopy('rerank-bert', path.join(MINILM, 'tokenizer.json'), scratch).dir;
    for (const f of ['tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt']) fs.copyFileSync(path.join(MINILM, f), path.join(rerankerDir, f));
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const args = ['v2', '--model-id', MINILM, '--model-id', rerankerDir, '--engine', 'torch', '--engine', 'torch', '--device', 'cpu', '--device', 'cpu', '--host', '127.0.0.1', '--port', String(port), '--no-model-warmup'];
    server = spawn(INFINITY, args, { env: { ...process.env, HF_HUB_OFFLINE: '1', INFINITY_ANONYMOUS_USAGE_STATS: '0', OMP_NUM_THREADS: '2' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Infinity did not start in 180 s:\n${output.slice(-3000)}`)), 180000);
      const read = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Uvicorn running')) {
          clearTimeout(timer);
          resolve();
        }
      };
      server.stdout!.on('data', read);
      server.stderr!.on('data', read);
      server.on('exit', (code) => reject(new Error(`Infinity exited with ${code}:\n${output.slice(-3000)}`)));
    });
  }, 200000);

  afterAll(() => {
    server?.kill();
    scratch.forEach((d) => fs.rmSync(d, { recursive: true, force: true }));
  });

  test('its vectors, through remote, equal the local addon\'s for every text, queries and documents', async () => {
    const remote = new Embedder({ remote: { url, api: 'infinity', model: path.basename(path.dirname(MINILM)) + '/' + path.basename(MINILM), maxBatchTexts: 4 } });
    const local = new Embedder({ modelDir: MINILM, backend: 'cpu', cache: false });
    await Promise.all([remote.init(), local.init()]);
    try {
      expect(remote.info()).toMatchObject({ backend: 'remote', api: 'infinity', dim: 384, model: 'models/all-MiniLM-L6-v2' });
      for (const isQuery of [false, true]) {
        const [r, l] = [await remote.embedFloat32(TEXTS, isQuery), await local.embedFloat32(TEXTS, isQuery)];
        const cosines = r.map((v, i) => cosine(v, l[i]));
        expect(Math.min(...cosines)).toBeGreaterThanOrEqual(0.9999);
      }
      expect(remote.stats()[0]).toMatchObject({ retries: 0, failedRequests: 0 });
    } finally {
      await Promise.all([remote.close(), local.close()]);
    }
  });

  test("its /rerank, through remote, gives the local Reranker's hits and scores", async () => {
    const model = rerankerDir.split(path.sep).slice(-2).join('/');
    const remote = await Reranker.load({ remote: { url, api: 'infinity', model } });
    const local = await Reranker.load(rerankerDir, { backend: 'cpu' });
    try {
      for (const rawScores of [false, true]) {
        const [r, l] = [await remote.rerank(TEXTS[4], TEXTS, { rawScores }), await local.rerank(TEXTS[4], TEXTS, { rawScores })];
        expect(r.map((h) => h.index)).toEqual(l.map((h) => h.index));
        r.forEach((h, i) => expect(Math.abs(h.score - l[i].score)).toBeLessThan(1e-5));
      }
    } finally {
      await Promise.all([remote.close(), local.close()]);
    }
  });
});
