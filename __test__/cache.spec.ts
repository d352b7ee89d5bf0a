// The graph cache: ONNX Runtime's optimised graph of a model built from safetensors, written on
// the first start and started from on the next; never trusted when damaged or stale.
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as native from '../index';
import { maxAbsDiff, randomNomicDir, ROOT } from './helpers';

const TEXTS = ['fn main() { println!("hi") }', 'split texts into batches by token budget', 'x'];

let cacheDir: string | undefined;

function freshCache(): string {
  cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssn-graph-cache-'));
  return cacheDir;
}

async function vectorsOf(modelDir: string, options: native.InitOptions = {}): Promise<{ info: native.ModelInfo; vectors: Float32Array[] }> {
  const model = await native.Model.load(modelDir, { backend: 'cpu', cacheDir, ...options });
  const vectors = await model.embed(TEXTS);
  const info = model.info();
  await model.close();
  return { info, vectors };
}

function expectSame(a: Float32Array[], b: Float32Array[]): void {
  a.forEach((v, i) => expect(maxAbsDiff(v, b[i])).toBeLessThanOrEqual(1e-6));
}

/** The entries of a cache folder, and anything else left there. */
function listing(cache: string): string[] {
  return fs.readdirSync(cache).sort();
}

describe('graph cache', () => {
  let model: string;
  let uncached: Float32Array[];
  beforeAll(async () => {
    model = randomNomicDir(41, 64);
    uncached = (await vectorsOf(model, { cache: false })).vectors;
  });

  test('the first start writes the entry, the next starts from it, with the same vectors', async () => {
    const cache = freshCache();
    const first = await vectorsOf(model);
    expect(first.info.cache).toBe('written');
    expect(first.info.cacheEntry).toBeDefined();
    expect(path.dirname(first.info.cacheEntry!)).toBe(cache);
    expect(fs.readdirSync(first.info.cacheEntry!).sort()).toEqual(['manifest.json', 'model.onnx', 'model.onnx.data']);
    // the weights as ONNX Runtime packs them are in the entry too: later starts map them
    const manifest = JSON.parse(fs.readFileSync(path.join(first.info.cacheEntry!, 'manifest.json'), 'utf8'));
    expect(manifest.packed).toBe(true);
    const second = await vectorsOf(model);
    expect(second.info.cache).toBe('hit');
    expect(second.info.cacheEntry).toBe(first.info.cacheEntry);
    expect(second.info.weights).toBe(path.join(model, 'model.safetensors'));
    expectSame(first.vectors, uncached);
    expectSame(second.vectors, uncached);
    expect(listing(cache)).toHaveLength(1);
  });

  test('a damaged entry (a changed byte, a truncated file, a bad manifest) is rebuilt, never used', async () => {
    freshCache();
    const entry = (await vectorsOf(model)).info.cacheEntry!;
    const damages: Array<(dir: string) => void> = [
      (dir) => {
        const file = path.join(dir, 'model.onnx.data');
        const bytes = fs.readFileSync(file);
        bytes[bytes.length >> 1] ^= 0x40; // same size, one bit of one weight
        fs.writeFileSync(file, bytes);
      },
      (dir) => fs.truncateSync(path.join(dir, 'model.onnx'), 100),
      (dir) => fs.writeFileSync(path.join(dir, 'manifest.json'), '{"format": 999'),
      (dir) => fs.rmSync(path.join(dir, 'model.onnx.data')),
    ];
    for (const damage of damages) {
      damage(entry);
      const again = await vectorsOf(model);
      expect(again.info.cache).toBe('written');
      expectSame(again.vectors, uncached);
      expect((await vectorsOf(model)).info.cache).toBe('hit');
    }
  });

  test('int8 gives the same vectors on the start that writes the entry and on later ones', async () => {
    freshCache();
    const first = await vectorsOf(model, { dtype: 'int8' });
    const later = await vectorsOf(model, { dtype: 'int8' });
    expect([first.info.cache, later.info.cache]).toEqual(['written', 'hit']);
    first.vectors.forEach((v, i) => expect(maxAbsDiff(v, later.vectors[i])).toBe(0));
  });

  test('other options and other weights are other entries', async () => {
    const cache = freshCache();
    expect((await vectorsOf(model)).info.cache).toBe('written');
    expect((await vectorsOf(model, { dtype: 'int8' })).info.cache).toBe('written');
    expect((await vectorsOf(model, { maxLength: 64 })).info.cache).toBe('written');
    expect((await vectorsOf(model, { dtype: 'int8' })).info.cache).toBe('hit');
    expect((await vectorsOf(model, { threads: 1 })).info.cache).toBe('hit'); // threads do not change the graph
    expect(listing(cache)).toHaveLength(3);

    const other = randomNomicDir(42, 64);
    const changed = randomNomicDir(41, 64);
    fs.copyFileSync(path.join(other, 'model.safetensors'), path.join(changed, 'model.safetensors'));
    const fresh = (await vectorsOf(changed, { cache: false })).vectors;
    const first = await vectorsOf(changed);
    expect(first.info.cache).toBe('written');
    expectSame(first.vectors, fresh);
    expect(maxAbsDiff(first.vectors[0], uncached[0])).toBeGreaterThan(1e-3);
  });

  test('two processes starting together on an empty cache both work and leave one entry', async () => {
    const cache = freshCache();
    const script = `
      const native = require(${JSON.stringify(ROOT)});
      native.Model.load(process.argv[1], { backend: 'cpu' })
        .then(async (m) => console.log(JSON.stringify({ cache: m.info().cache, v: Array.from((await m.embed(${JSON.stringify(TEXTS)}))[0]) })))
        .catch((e) => { console.error(e.message); process.exit(1); });`;
    const run = () =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const child = spawn(process.execPath, ['-e', script, model], { env: { ...process.env, SEMANTIC_SEARCH_CACHE: cache } });
        let out = '', err = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (err += d));
        child.on('close', (code) => resolve({ code, out, err }));
      });
    const results = await Promise.all([run(), run()]);
    for (const r of results) {
      expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: '' });
      const { cache: used, v } = JSON.parse(r.out);
      expect(['written', 'hit']).toContain(used);
      expect(maxAbsDiff(v, uncached[0])).toBeLessThanOrEqual(1e-6);
    }
    expect(listing(cache)).toHaveLength(1);
    expect((await vectorsOf(model)).info.cache).toBe('hit');
  });

  test('cache: false, SEMANTIC_SEARCH_CACHE=off and an unwritable folder leave it off, and the model runs', async () => {
    const cache = freshCache();
    const off = await vectorsOf(model, { cache: false });
    expect(off.info.cache).toBe('off');
    expect(off.info.cacheNote).toMatch(/turned off/);
    expect(listing(cache)).toEqual([]);
    const script = `require(${JSON.stringify(ROOT)}).Model.load(process.argv[1], { backend: 'cpu' }).then((m) => console.log(m.info().cache))`;
    const child = spawnSync(process.execPath, ['-e', script, model], { env: { ...process.env, SEMANTIC_SEARCH_CACHE: 'off' }, encoding: 'utf8' });
    expect(child.stdout.trim()).toBe('off');
    const file = path.join(cache, 'a-file');
    fs.writeFileSync(file, 'not a folder');
    const unwritable = await vectorsOf(model, { cacheDir: path.join(file, 'cache') });
    expect(unwritable.info.cache).toBe('off');
    expect(unwritable.info.cacheNote).toMatch(/could not be used/);
    expectSame(unwritable.vectors, uncached);
    // an ONNX file runs as it is
    const onnx = await vectorsOf(path.join(ROOT, 'tests', 'fixtures', 'task-tiny'));
    expect(onnx.info.cacheNote).toMatch(/ONNX file/);
  });
});
