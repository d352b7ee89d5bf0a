// The vector cache across processes: two processes embedding overlapping texts into one file at
// once, a file locked by another process past the busy timeout, and the option and environment
// variable through the Embedder. (Bit-identity per dtype, key parts, damaged files and eviction
// are tested in Rust: tests/vector_cache.rs.)
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Model } from '../js';
import { maxAbsDiff, MINILM, ROOT, runNode } from './helpers';

const PYTHON = path.join(ROOT, '.cache', 'venv', 'bin', 'python');
const CORPUS = Array.from({ length: 450 }, (_, i) => `function handler${i}(req, res) { return res.status(${200 + (i % 7)}).json({ id: ${i} }); }`);

function scratch(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'ssn-vc-'));
}

async function uncached(texts: string[]): Promise<Float32Array[]> {
  const model = await Model.load(MINILM, { backend: 'cpu', cache: false });
  try {
    return await model.embed(texts);
  } finally {
    await model.close();
  }
}

/** A Node process that embeds `texts` into the cache `file` and prints the vectors as JSON. */
function embedIn(file: string, texts: string[]): Promise<number[][]> {
  const script = `
const { Model } = require(${JSON.stringify(path.join(ROOT, 'dist', 'index.js'))});
(async () => {
  const texts = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  const model = await Model.load(${JSON.stringify(MINILM)}, { backend: 'cpu', cache: false, vectorCache: ${JSON.stringify(file)} });
  const vectors = await model.embed(texts);
  process.stdout.write(JSON.stringify({ vectors: vectors.map((v) => Array.from(v)), stats: model.stats() }));
})().catch((e) => { console.error(e); process.exit(1); });`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { cwd: ROOT });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out).vectors) : reject(new Error(`embedding process failed: ${err}`))));
    child.stdin.end(JSON.stringify(texts));
  });
}

function sqlite(file: string, query: string): unknown[] {
  const run = spawnSync(PYTHON, ['-c', 'import sqlite3, sys, json; print(json.dumps(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()))', file, query], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(run.stderr);
  return JSON.parse(run.stdout);
}

/** Another process holding the file's exclusive lock (readers too are shut out) until killed. */
async function lockedBy(file: string): Promise<ChildProcess> {
  const script = `
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA locking_mode=EXCLUSIVE")
c.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(120)`;
  const child = spawn(PYTHON, ['-c', script, file]);
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => String(d).includes('locked') && resolve());
    child.on('exit', (code) => reject(new Error(`the locking process exited (${code})`)));
  });
  return child;
}

describe('vector cache', () => {
  test('two processes embedding overlapping texts into one file at once: right vectors, one row per key', async () => {
    const file = path.join(scratch(), 'vectors.sqlite');
    const [a, b] = [CORPUS.slice(0, 300), CORPUS.slice(150)];
    const expected = await uncached(CORPUS);
    const [va, vb] = await Promise.all([embedIn(file, a), embedIn(file, b)]);
    // each process's vectors came from micro-batches of other texts than the uncached call's:
    // ONNX Runtime's kernels round a text's vector differently by a batch's rows and length
    // (single-row GEMMs, padded lengths) in the last bits, with or without the cache
    va.forEach((v, i) => expect(maxAbsDiff(v, expected[i])).toBeLessThan(1e-6));
    vb.forEach((v, i) => expect(maxAbsDiff(v, expected[150 + i])).toBeLessThan(1e-6));
    expect(sqlite(file, 'SELECT count(*), count(DISTINCT key) FROM vectors')).toEqual([CORPUS.length, CORPUS.length]);
    expect(sqlite(file, 'PRAGMA journal_mode')).toEqual(['wal']);
  }, 120000);

  test('a file locked by another process past the busy timeout: right vectors, a note, no exception', async () => {
    const file = path.join(scratch(), 'vectors.sqlite');
    const texts = CORPUS.slice(0, 40);
    const expected = await uncached(texts);
    await embedIn(file, texts);
    const locker = await lockedBy(file);
    const model = await Model.load(MINILM, { backend: 'cpu', cache: false, vectorCache: file, vectorCacheTimeout: 200 });
    try {
      const vectors = await model.embed(texts);
      vectors.forEach((v, i) => expect(maxAbsDiff(v, expected[i])).toBe(0));
      expect(model.info().vectorCacheNote).toMatch(/another process held the file past the busy timeout/);
      expect(model.stats()).toMatchObject({ cacheHits: 0, cacheMisses: 40 });
      locker.kill();
      await new Promise((resolve) => locker.once('exit', resolve));
      // the lock gone, the next call reads the file again
      const again = await model.embed(texts);
      again.forEach((v, i) => expect(maxAbsDiff(v, expected[i])).toBe(0));
      expect(model.stats()).toMatchObject({ cacheHits: 40, cacheMisses: 40 });
    } finally {
      locker.kill();
      await model.close();
    }
  }, 120000);

  test('SEMANTIC_SEARCH_VECTOR_CACHE and vectorCache: true reach every model of an Embedder', () => {
    const home = scratch();
    const script = `
const { Embedder } = require(${JSON.stringify(path.join(ROOT, 'dist', 'index.js'))});
(async () => {
  const texts = ['alpha', 'beta', 'gamma'];
  const run = async (options) => {
    const e = new Embedder({ modelDir: ${JSON.stringify(MINILM)}, backend: 'cpu', cache: false, ...options });
    await e.init();
    await e.embed(texts);
    const out = { stats: e.stats()[0], info: e.info() };
    await e.close();
    return out;
  };
  const first = await run({});
  const second = await run({});
  const off = await run({ vectorCache: false });
  process.stdout.write(JSON.stringify({ first, second, off }));
})().catch((e) => { console.error(e); process.exit(1); });`;
    const env = { ...process.env, XDG_CACHE_HOME: home, SEMANTIC_SEARCH_VECTOR_CACHE: 'on' };
    const run = runNode(script, { env });
    expect(run.stderr).toBe('');
    const { first, second, off } = JSON.parse(run.stdout);
    const file = path.join(home, 'semantic-search-native', 'vectors.sqlite');
    expect(first.info.vectorCache).toBe(file);
    expect(first.stats).toMatchObject({ cacheHits: 0, cacheMisses: 3 });
    expect(second.stats).toMatchObject({ cacheHits: 3, cacheMisses: 0 });
    expect(second.stats.cacheBytes).toBe(fs.statSync(file).size);
    expect(off.info.vectorCache).toBeUndefined();
    expect(off.stats).toMatchObject({ cacheHits: 0, cacheMisses: 0 });
  }, 120000);
});
