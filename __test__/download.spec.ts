// `npx semantic-search-native download`, against a hub-shaped server on 127.0.0.1 that serves the
// MiniLM test model: a full download, a resumed one, corruption, 404, 401, the server going
// away, offline mode, and the Embedder finding the result by hub id.
import { execFile } from 'child_process';
import { promisify } from 'util';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { download, Embedder, resolveModel } from '../js/index';
import { HubServer, startHub } from './hub-server';
import { codeOf, requireModel, ROOT } from './helpers';

const ID = 'sentence-transformers/all-MiniLM-L6-v2';
const GATED = 'acme/gated-minilm';
const TOKEN = 'hf_test_token';
// what the addon reads of that snapshot, and nothing else
const WANTED = [
  '1_Pooling/config.json',
  'config.json',
  'config_sentence_transformers.json',
  'model.safetensors',
  'modules.json',
  'sentence_bert_config.json',
  'tokenizer.json',
];

describe('download from a hub', () => {
  const modelDir = requireModel();
  let hub: HubServer;
  let cacheDir: string;

  beforeAll(async () => {
    hub = await startHub({
      [ID]: { dir: modelDir, extra: { 'pytorch_model.bin': Buffer.alloc(4096, 7) } },
      [GATED]: { dir: modelDir, gatedToken: TOKEN },
    });
  });
  afterAll(() => hub.close());
  beforeEach(() => {
    cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssn-hub-'));
    hub.log.length = 0;
  });
  afterEach(() => fs.rmSync(cacheDir, { recursive: true, force: true }));

  const fetchModel = (repo = ID, options: Parameters<typeof download>[1] = {}) =>
    download(repo, { endpoint: hub.url, cacheDir, offline: false, token: '', ...options });
  const snapshot = () => path.join(cacheDir, 'models--sentence-transformers--all-MiniLM-L6-v2', 'snapshots', hub.sha);
  const blobOf = (file: string) => fs.realpathSync(path.join(snapshot(), file));
  const fetched = () => hub.log.filter((l) => l.startsWith('GET /sentence-transformers/') && !l.endsWith('bytes=0-0'));

  it('fetches exactly the files the addon reads into the Hugging Face cache layout, and the Embedder finds them by id', async () => {
    const folder = await fetchModel();
    expect(folder).toBe(snapshot());
    expect(listFiles(folder)).toEqual(WANTED);
    expect(fs.lstatSync(path.join(folder, 'model.safetensors')).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(path.join(cacheDir, 'models--sentence-transformers--all-MiniLM-L6-v2', 'refs', 'main'), 'utf8')).toBe(hub.sha);
    for (const file of WANTED) expect(sha256(path.join(folder, file))).toBe(sha256(path.join(modelDir, file)));
    expect(fetched().some((l) => l.includes('pytorch_model.bin') || l.includes('onnx'))).toBe(false);

    // a second run fetches nothing: every file is there and checks out
    hub.log.length = 0;
    await fetchModel();
    expect(fetched()).toEqual([]);

    process.env.HF_HUB_CACHE = cacheDir;
    try {
      expect(resolveModel(ID)).toBe(folder);
      // the same graph both ways: built from model.safetensors, without the graph cache
      const byId = new Embedder({ model: ID, backend: 'cpu', weights: 'safetensors', cache: false });
      const byDir = new Embedder({ modelDir, backend: 'cpu', weights: 'safetensors', cache: false });
      await byId.init();
      await byDir.init();
      const texts = ['function add(a, b) { return a + b; }', 'parse the config file'];
      expect(await byId.embed(texts)).toEqual(await byDir.embed(texts));
      expect(byId.info().parts[0].modelDir).toBe(folder);
      await Promise.all([byId.close(), byDir.close()]);
    } finally {
      delete process.env.HF_HUB_CACHE;
    }
  });

  it('fetches the ONNX weights only when asked, and writes plain files with --dir', async () => {
    const dir = path.join(cacheDir, 'plain');
    const folder = await fetchModel(ID, { dir, onnx: true });
    expect(folder).toBe(dir);
    expect(listFiles(dir)).toEqual([...WANTED, 'onnx/model.onnx'].sort());
    expect(fs.lstatSync(path.join(dir, 'model.safetensors')).isFile()).toBe(true);
  });

  it('resumes where the server went away mid-download, leaving nothing half-written as complete', async () => {
    const size = fs.statSync(path.join(modelDir, 'model.safetensors')).size;
    hub.faults.cutOnce = { file: 'model.safetensors', after: 30_000_000 };
    const cut = fetchModel();
    await expect(cut).rejects.toThrow(/the download of model\.safetensors stopped at \d+ of 90868376 bytes .*run the same command again to resume/);
    await expect(cut).rejects.toMatchObject({ code: 'ERR_DOWNLOAD' });
    const blobs = path.join(cacheDir, 'models--sentence-transformers--all-MiniLM-L6-v2', 'blobs');
    const partial = fs.readdirSync(blobs).filter((f) => f.endsWith('.incomplete'));
    expect(partial).toHaveLength(1);
    const kept = fs.statSync(path.join(blobs, partial[0])).size;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(size);
    expect(fs.existsSync(path.join(snapshot(), 'model.safetensors'))).toBe(false);
    expect(fs.existsSync(path.join(cacheDir, 'models--sentence-transformers--all-MiniLM-L6-v2', 'refs', 'main'))).toBe(false);
    expect(resolveModel.bind(null, ID, { cacheDir })).toThrow(/download it with `npx semantic-search-native download sentence-transformers\/all-MiniLM-L6-v2`/);
    expect(codeOf(() => resolveModel(ID, { cacheDir }))).toBe('ERR_MODEL_NOT_FOUND');
    expect(codeOf(() => resolveModel('../not/an id', { cacheDir }))).toBe('ERR_INPUT');

    hub.log.length = 0;
    await fetchModel();
    expect(fetched()).toEqual([`GET /sentence-transformers/all-MiniLM-L6-v2/resolve/${hub.sha}/model.safetensors bytes=${kept}-${size - 1}`]);
    expect(sha256(blobOf('model.safetensors'))).toBe(sha256(path.join(modelDir, 'model.safetensors')));
  });

  it('stops at its signal: an AbortError, no request once aborted, and the bytes kept for the next download to resume from', async () => {
    await expect(fetchModel(ID, { signal: AbortSignal.abort('not now') })).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR', cause: 'not now' });
    expect(hub.log).toEqual([]);
    const controller = new AbortController();
    const stopped = fetchModel(ID, {
      signal: controller.signal,
      onProgress: (p) => {
        if (p.file === 'model.safetensors' && p.phase === 'fetch' && p.done > 10_000_000) controller.abort('enough');
      },
    });
    await expect(stopped).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR', cause: 'enough' });
    const blobs = path.join(cacheDir, 'models--sentence-transformers--all-MiniLM-L6-v2', 'blobs');
    const partial = fs.readdirSync(blobs).filter((f) => f.endsWith('.incomplete'));
    expect(partial).toHaveLength(1);
    const kept = fs.statSync(path.join(blobs, partial[0])).size;
    expect(kept).toBeGreaterThan(1_000_000); // what reached the disk before the abort
    expect(kept).toBeLessThan(fs.statSync(path.join(modelDir, 'model.safetensors')).size);
    hub.log.length = 0;
    await fetchModel();
    expect(fetched()).toEqual([expect.stringMatching(new RegExp(`model\\.safetensors bytes=${kept}-`))]);
    expect(sha256(blobOf('model.safetensors'))).toBe(sha256(path.join(modelDir, 'model.safetensors')));
    await expect(fetchModel(ID, { timeout: -1 })).rejects.toMatchObject({ code: 'ERR_INPUT' });
  });

  it('detects a corrupted transfer and a corrupted cached file, and fetches them again', async () => {
    hub.faults.corruptOnce = 'model.safetensors';
    await fetchModel();
    const gets = fetched().filter((l) => l.endsWith('model.safetensors'));
    expect(gets).toHaveLength(2);
    expect(sha256(blobOf('model.safetensors'))).toBe(sha256(path.join(modelDir, 'model.safetensors')));

    // a cached small file altered on disk (same size): its git hash no longer matches
    const config = blobOf('config.json');
    const text = fs.readFileSync(config, 'utf8');
    fs.writeFileSync(config, text.replace('"', "'"));
    hub.log.length = 0;
    await fetchModel();
    expect(fetched()).toEqual([`GET /sentence-transformers/all-MiniLM-L6-v2/resolve/${hub.sha}/config.json`]);
    expect(fs.readFileSync(path.join(snapshot(), 'config.json'), 'utf8')).toBe(text);
  });

  it('says what is wrong on a 404, a gated model, and a server that is not there', async () => {
    await expect(fetchModel('nobody/no-such-model')).rejects.toThrow(/nobody\/no-such-model \(revision main\) on http:\/\/127\.0\.0\.1:\d+ was not found \(404\)/);
    await expect(fetchModel(GATED)).rejects.toThrow(/answered 401: the model is gated or private; set HF_TOKEN to a token with read access/);
    await expect(fetchModel(GATED, { token: 'hf_wrong' })).rejects.toThrow(/the token in HF_TOKEN was refused/);
    for (const failing of [fetchModel('nobody/no-such-model'), fetchModel(GATED), fetchModel(GATED, { token: 'hf_wrong' })]) {
      await expect(failing).rejects.toMatchObject({ code: 'ERR_DOWNLOAD' });
    }
    const folder = await fetchModel(GATED, { token: TOKEN });
    expect(listFiles(folder)).toEqual(WANTED);
    const gone = await closedPort();
    await expect(download(ID, { endpoint: gone, cacheDir, offline: false })).rejects.toThrow(
      /could not reach http:\/\/127\.0\.0\.1:\d+ for .*\(ECONNREFUSED\).*HF_HUB_OFFLINE=1/,
    );
    await expect(download(ID, { endpoint: gone, cacheDir, offline: false })).rejects.toMatchObject({ code: 'ERR_DOWNLOAD' });
  });

  it('offline, uses the cache and never the network', async () => {
    await expect(fetchModel(ID, { offline: true })).rejects.toThrow(/HF_HUB_OFFLINE is set and sentence-transformers\/all-MiniLM-L6-v2 \(revision main\) is not downloaded/);
    await expect(fetchModel(ID, { offline: true })).rejects.toMatchObject({ code: 'ERR_MODEL_NOT_FOUND' });
    const folder = await fetchModel();
    hub.log.length = 0;
    expect(await download(ID, { endpoint: await closedPort(), cacheDir, offline: true })).toBe(folder);
    expect(hub.log).toEqual([]);
  });

  it('runs as `npx semantic-search-native download` with the hub environment variables', async () => {
    const env = { ...process.env, HF_ENDPOINT: hub.url, HF_HUB_CACHE: cacheDir, HF_TOKEN: TOKEN, HF_HUB_OFFLINE: '' };
    const ok = await cli(['download', GATED], env);
    expect(ok.stderr).toMatch(/model\.safetensors {2}90\.9 MB {2}ok/);
    expect(ok.status).toBe(0);
    expect(ok.stdout.trim()).toBe(path.join(cacheDir, 'models--acme--gated-minilm', 'snapshots', hub.sha));

    const offline = await cli(['download', 'acme/other'], { ...env, HF_HUB_OFFLINE: '1' });
    expect(offline.status).toBe(1);
    expect(offline.stderr).toMatch(/HF_HUB_OFFLINE is set and acme\/other/);

    const usage = await cli(['fetch'], env);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/unknown command 'fetch'[\s\S]*usage: semantic-search-native download/);
    for (const help of [[], ['--help'], ['-h'], ['download', '--help']]) {
      const shown = await cli(help, env);
      expect(shown.status).toBe(0);
      expect(shown.stderr).toMatch(/^usage: semantic-search-native download/);
    }
  });

  it('without a model, names the command that downloads the default one', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'ssn-home-'));
    const script = `const { Embedder } = require(${JSON.stringify(path.join(ROOT, 'dist', 'index.js'))});
      new Embedder().init().catch((e) => { console.error(e.code + ' ' + e.message); process.exit(3); })`;
    const env = { ...process.env, HOME: home, HF_HOME: path.join(home, 'hf'), HF_HUB_CACHE: '', SEMANTIC_SEARCH_MODEL_DIR: '' };
    const run = await node(['-e', script], env);
    expect(run.status).toBe(3);
    expect(run.stderr).toMatch(/the default model nomic-ai\/CodeRankEmbed is not downloaded: run `npx semantic-search-native download nomic-ai\/CodeRankEmbed`/);
    expect(run.stderr).toMatch(/^ERR_MODEL_NOT_FOUND /);
    fs.rmSync(home, { recursive: true, force: true });
  });
});

/** Runs node without blocking this process's event loop, which serves the hub. */
async function node(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, args, { env, encoding: 'utf8' });
    return { status: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { status: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const cli = (args: string[], env: NodeJS.ProcessEnv) => node([path.join(ROOT, 'dist', 'cli.js'), ...args], env);

/** The address of a port nothing listens on. */
async function closedPort(): Promise<string> {
  const server = await startHub({});
  await server.close();
  return server.url;
}

function listFiles(dir: string, prefix = ''): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? listFiles(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]))
    .sort();
}

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}
