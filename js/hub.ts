// Models from the Hugging Face Hub: `download` fetches the files this addon reads into the
// standard Hugging Face cache (or a folder), resumably and checked against the hub's sizes and
// hashes; `resolveModel` finds a downloaded model without touching the network. The hub protocol
// (revisions, listings, resolve URLs, auth, xet) is @huggingface/hub's; the cache layout, resume
// and checks are ours, because its downloadFileToCacheDir neither resumes nor verifies.
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Readable, Transform } from 'stream';
import { pipeline } from 'stream/promises';
import { downloadFile, HubApiError, listFiles, modelInfo } from '@huggingface/hub';
import { AbortError, callSignal, Cancellable } from './cancel';
import { CodedError } from './errors';
import type { ListFileEntry } from '@huggingface/hub';

export const DEFAULT_MODEL = 'nomic-ai/CodeRankEmbed';
const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface DownloadOptions extends Cancellable {
  /** Branch, tag or commit (default `main`). */
  revision?: string;
  /** The Hugging Face cache (default `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else ~/.cache/huggingface/hub). */
  cacheDir?: string;
  /** Plain files into this folder instead of the cache. */
  dir?: string;
  /** Also the ONNX weights: `true` for `onnx/model.onnx` (or `model.onnx`), or a file name. */
  onnx?: boolean | string;
  /** The hub or a mirror (default `$HF_ENDPOINT`, else https://huggingface.co). */
  endpoint?: string;
  /** For gated and private models (default `$HF_TOKEN`). */
  token?: string;
  /** Use the cache only (default: `$HF_HUB_OFFLINE` set to 1, true, yes or on). */
  offline?: boolean;
  /** Called as bytes arrive. */
  onProgress?: (progress: Progress) => void;
  // `signal` / `timeout`: aborting stops the requests and the file being written (its bytes kept
  // for the next download to resume from); the download rejects with an `AbortError`.
}

export interface Progress {
  file: string;
  done: number;
  total: number;
  /** 'fetch' while bytes arrive, 'check' while hashing, 'ready' once the file is in place. */
  phase: 'fetch' | 'check' | 'ready';
}

/** The cache folder the Hugging Face libraries share. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  const home = env.HF_HOME || path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'huggingface');
  return path.join(home, 'hub');
}

export function isOffline(env: NodeJS.ProcessEnv = process.env): boolean {
  return ['1', 'true', 'yes', 'on'].includes((env.HF_HUB_OFFLINE ?? '').toLowerCase());
}

/** The command that downloads `repo`, for error messages. */
export function downloadCommand(repo: string): string {
  return `npx semantic-search-native download ${repo}`;
}

/**
 * A model folder for `model`: a folder that exists as it is, else a hub id looked up in the cache
 * (never the network). Throws with the download command when it is not there.
 */
export function resolveModel(model: string, options: { revision?: string; cacheDir?: string } = {}): string {
  if (fs.existsSync(model) && fs.statSync(model).isDirectory()) return model;
  checkRepoId(model);
  const cacheDir = options.cacheDir ?? hubCacheDir();
  const snapshot = cachedSnapshot(cacheDir, model, options.revision ?? 'main');
  if (snapshot) return snapshot;
  throw new CodedError(
    'ERR_MODEL_NOT_FOUND',
    `model ${model} is not a folder and not in the Hugging Face cache at ${cacheDir}: download it with \`${downloadCommand(model)}\`` +
      (options.revision ? ` --revision ${options.revision}` : ''),
  );
}

/** Downloads what the addon reads of `repo` and returns the folder to give as `modelDir`. */
export async function download(repo: string, options: DownloadOptions = {}): Promise<string> {
  checkRepoId(repo);
  const hub = connection(repo, options);
  if (hub.offline) return offlineSnapshot(hub);
  const sha = await resolveRevision(hub);
  const listing = await listAll(hub, sha);
  const store = options.dir ? folderStore(options.dir) : cacheStore(hub.cacheDir, repo, sha, hub.revision);
  const fetchOne = (entry: ListFileEntry) => fetchFile(hub, sha, entry, store);
  const first = pickFirst(listing);
  for (const entry of first) await fetchOne(entry);
  for (const entry of pickWeights(listing, store.folder, options.onnx)) await fetchOne(entry);
  store.finish();
  return store.folder;
}

interface Hub {
  repo: string;
  revision: string;
  endpoint: string;
  token?: string;
  offline: boolean;
  cacheDir: string;
  dir?: string;
  onProgress: (progress: Progress) => void;
  signal?: AbortSignal;
  /** Node's fetch, with the download's signal on every request. */
  fetch: typeof fetch;
}

function connection(repo: string, options: DownloadOptions): Hub {
  const env = process.env;
  const signal = callSignal(options);
  return {
    repo,
    revision: options.revision ?? 'main',
    endpoint: (options.endpoint ?? env.HF_ENDPOINT ?? DEFAULT_ENDPOINT).replace(/\/+$/, ''),
    token: options.token ?? (env.HF_TOKEN || undefined),
    offline: options.offline ?? isOffline(env),
    cacheDir: options.cacheDir ?? hubCacheDir(env),
    dir: options.dir,
    onProgress: options.onProgress ?? (() => undefined),
    signal,
    fetch: signal ? (input, init) => fetch(input, { ...init, signal }) : fetch,
  };
}

function checkRepoId(repo: string): void {
  if (!/^[\w.-]+(\/[\w.-]+)?$/.test(repo) || repo.includes('..')) {
    throw new CodedError('ERR_INPUT', `'${repo}' is not a model folder nor a hub model id (like ${DEFAULT_MODEL})`);
  }
}

// ---- the hub ----

async function resolveRevision(hub: Hub): Promise<string> {
  const info = await hubCall(hub, () =>
    modelInfo({ name: hub.repo, revision: hub.revision, hubUrl: hub.endpoint, accessToken: hub.token, additionalFields: ['sha'], fetch: hub.fetch }),
  );
  const sha = (info as { sha?: string }).sha;
  if (!sha || !/^[0-9a-f]{40}$/.test(sha)) {
    throw new CodedError('ERR_DOWNLOAD', `${hub.endpoint} gave no commit for ${hub.repo} at revision ${hub.revision}; is HF_ENDPOINT a hub?`);
  }
  return sha;
}

async function listAll(hub: Hub, sha: string): Promise<ListFileEntry[]> {
  return hubCall(hub, async () => {
    const entries: ListFileEntry[] = [];
    const files = listFiles({ repo: { type: 'model', name: hub.repo }, revision: sha, recursive: true, hubUrl: hub.endpoint, accessToken: hub.token, fetch: hub.fetch });
    for await (const entry of files) if (entry.type === 'file') entries.push(entry);
    return entries;
  });
}

/** Runs a hub request and turns its failures into errors that say what to do. */
async function hubCall<T>(hub: Hub, call: () => Promise<T>): Promise<T> {
  stopIfAborted(hub);
  try {
    return await call();
  } catch (e) {
    stopIfAborted(hub);
    throw explain(hub, e);
  }
}

/** An aborted download rejects as Node's own APIs do. */
function stopIfAborted(hub: Hub): void {
  if (hub.signal?.aborted) throw new AbortError(hub.signal.reason);
}

function explain(hub: Hub, e: unknown): Error {
  const where = `${hub.repo} (revision ${hub.revision}) on ${hub.endpoint}`;
  if (e instanceof HubApiError) {
    if (e.statusCode === 401 || e.statusCode === 403) {
      const token = hub.token
        ? 'the token in HF_TOKEN was refused: check that it has read access and that you accepted the model\'s terms'
        : 'set HF_TOKEN to a token with read access, after accepting the model\'s terms on its page';
      return new CodedError('ERR_DOWNLOAD', `${where} answered ${e.statusCode}: the model is gated or private; ${token}`);
    }
    if (e.statusCode === 404) return new CodedError('ERR_DOWNLOAD', `${where} was not found (404): check the model id and the revision`);
    return new CodedError('ERR_DOWNLOAD', `${where} answered ${e.statusCode}: ${e.message}`);
  }
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  const reason = cause?.code ?? cause?.message ?? (e as Error).message;
  return new CodedError(
    'ERR_DOWNLOAD',
    `could not reach ${hub.endpoint} for ${hub.repo} (${reason}): check the network or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use what is already downloaded`,
  );
}

// ---- which files ----

const METADATA = new Set([
  'config.json',
  'tokenizer.json',
  'modules.json',
  'config_sentence_transformers.json',
  'sentence_bert_config.json',
  'model.safetensors.index.json',
]);

/** The small files the addon reads, with every module's config (the pooling folder among them). */
function pickFirst(listing: ListFileEntry[]): ListFileEntry[] {
  const picked = listing.filter((e) => METADATA.has(e.path) || /^\d+_[\w-]+\/config\.json$/.test(e.path));
  if (!picked.some((e) => e.path === 'config.json')) {
    throw new CodedError('ERR_DOWNLOAD', 'the repository has no config.json at its root: it is not a transformers model this addon can run');
  }
  return picked;
}

/** The weights: model.safetensors, or the shards its index names; ONNX only when asked. */
function pickWeights(listing: ListFileEntry[], folder: string, onnx: DownloadOptions['onnx']): ListFileEntry[] {
  const byPath = new Map(listing.map((e) => [e.path, e]));
  const picked: ListFileEntry[] = [];
  const index = path.join(folder, 'model.safetensors.index.json');
  if (byPath.has('model.safetensors.index.json')) {
    for (const shard of shardNames(index)) picked.push(need(byPath, shard, 'named by model.safetensors.index.json'));
  } else if (byPath.has('model.safetensors')) {
    picked.push(byPath.get('model.safetensors')!);
  } else if (!onnx) {
    throw new CodedError('ERR_DOWNLOAD', 'the repository has no model.safetensors: pass --onnx to download its ONNX weights instead');
  }
  if (onnx) picked.push(...onnxFiles(byPath, typeof onnx === 'string' ? onnx : 'model.onnx'));
  return picked;
}

function shardNames(indexFile: string): string[] {
  const index = JSON.parse(fs.readFileSync(indexFile, 'utf8')) as { weight_map?: Record<string, string> };
  const shards = [...new Set(Object.values(index.weight_map ?? {}))];
  for (const shard of shards) {
    if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\') || !shard.endsWith('.safetensors')) {
      throw new CodedError('ERR_DOWNLOAD', `model.safetensors.index.json names a shard ${JSON.stringify(shard)}; shards are .safetensors files beside it`);
    }
  }
  if (shards.length === 0) throw new CodedError('ERR_DOWNLOAD', 'model.safetensors.index.json names no shards in its weight_map');
  return shards;
}

function onnxFiles(byPath: Map<string, ListFileEntry>, name: string): ListFileEntry[] {
  const file = [name, `onnx/${name}`].find((p) => byPath.has(p));
  if (!file) throw new CodedError('ERR_DOWNLOAD', `the repository has no ${name} nor onnx/${name}`);
  const data = [`${file}_data`, `${file}.data`].filter((p) => byPath.has(p));
  return [byPath.get(file)!, ...data.map((p) => byPath.get(p)!)];
}

function need(byPath: Map<string, ListFileEntry>, file: string, why: string): ListFileEntry {
  const entry = byPath.get(file);
  if (!entry) throw new CodedError('ERR_DOWNLOAD', `the repository has no ${file}, ${why}`);
  return entry;
}

// ---- where files go ----

interface Store {
  /** The folder to give as modelDir. */
  folder: string;
  /** Where the verified content of `entry` lives. */
  target(entry: ListFileEntry): string;
  /** Makes `entry` visible in `folder` once its target is complete. */
  publish(entry: ListFileEntry): void;
  finish(): void;
}

/** The Hugging Face cache: blobs named by hash, snapshots of symlinks, refs naming commits. */
function cacheStore(cacheDir: string, repo: string, sha: string, revision: string): Store {
  const storage = path.join(cacheDir, repoFolderName(repo));
  const folder = path.join(storage, 'snapshots', sha);
  return {
    folder,
    target: (entry) => path.join(storage, 'blobs', etag(entry)),
    publish(entry) {
      const link = path.join(folder, entry.path);
      const blob = path.join(storage, 'blobs', etag(entry));
      fs.mkdirSync(path.dirname(link), { recursive: true });
      fs.rmSync(link, { force: true });
      try {
        fs.symlinkSync(path.relative(path.dirname(link), blob), link);
      } catch {
        fs.copyFileSync(blob, link); // where symlinks are refused (Windows without developer mode)
      }
    },
    finish() {
      if (revision !== sha) {
        fs.mkdirSync(path.join(storage, 'refs', path.dirname(revision)), { recursive: true });
        fs.writeFileSync(path.join(storage, 'refs', revision), sha);
      }
    },
  };
}

/** Plain files in a folder of the user's. */
function folderStore(dir: string): Store {
  return {
    folder: dir,
    target: (entry) => path.join(dir, entry.path),
    publish: () => undefined,
    finish: () => undefined,
  };
}

function repoFolderName(repo: string): string {
  return ['models', ...repo.split('/')].join('--');
}

function etag(entry: ListFileEntry): string {
  const tag = entry.lfs?.oid ?? entry.oid;
  if (!tag || !/^[0-9a-f]{40,64}$/.test(tag)) throw new CodedError('ERR_DOWNLOAD', `the hub's listing gives ${entry.path} no usable hash`);
  return tag;
}

function cachedSnapshot(cacheDir: string, repo: string, revision: string): string | null {
  const storage = path.join(cacheDir, repoFolderName(repo));
  let sha = revision;
  if (!/^[0-9a-f]{40}$/.test(revision)) {
    const ref = path.join(storage, 'refs', revision);
    if (!fs.existsSync(ref)) return null;
    sha = fs.readFileSync(ref, 'utf8').trim();
  }
  const folder = path.join(storage, 'snapshots', sha);
  return fs.existsSync(path.join(folder, 'config.json')) ? folder : null;
}

function offlineSnapshot(hub: Hub): string {
  const folder = hub.dir
    ? fs.existsSync(path.join(hub.dir, 'config.json'))
      ? hub.dir
      : null
    : cachedSnapshot(hub.cacheDir, hub.repo, hub.revision);
  if (folder) return folder;
  throw new CodedError(
    'ERR_MODEL_NOT_FOUND',
    `HF_HUB_OFFLINE is set and ${hub.repo} (revision ${hub.revision}) is not downloaded in ${hub.dir ?? hub.cacheDir}: run the download once without HF_HUB_OFFLINE`,
  );
}

// ---- one file ----

/** Puts `entry` in place: kept when the copy there checks out, else fetched (resuming a partial one) and checked. */
async function fetchFile(hub: Hub, sha: string, entry: ListFileEntry, store: Store): Promise<void> {
  const target = store.target(entry);
  const report = (done: number, phase: Progress['phase']) => hub.onProgress({ file: entry.path, done, total: entry.size, phase });
  if (fs.existsSync(target)) {
    if (await matches(target, entry, report, hub.signal)) return finish();
    fs.rmSync(target); // corrupted or from another version: fetched again below
  }
  const partial = `${target}.incomplete`;
  fs.mkdirSync(path.dirname(target), { recursive: true });
  for (let attempt = 1; ; attempt++) {
    await fetchInto(hub, sha, entry, partial, report);
    if (await matches(partial, entry, report, hub.signal)) break;
    fs.rmSync(partial, { force: true });
    if (attempt === 2) {
      throw new CodedError('ERR_DOWNLOAD', `${entry.path} from ${hub.endpoint} does not match the hub's size and hash, twice: the mirror or the network alters it`);
    }
  }
  fs.renameSync(partial, target);
  return finish();

  function finish(): void {
    store.publish(entry);
    report(entry.size, 'ready');
  }
}

/** Appends the rest of `entry` to `partial`, from where an earlier attempt stopped. */
async function fetchInto(
  hub: Hub,
  sha: string,
  entry: ListFileEntry,
  partial: string,
  report: (done: number, phase: Progress['phase']) => void,
): Promise<void> {
  let done = fs.existsSync(partial) ? fs.statSync(partial).size : 0;
  if (done > entry.size) {
    fs.rmSync(partial);
    done = 0;
  }
  if (done === entry.size) return;
  const blob = await hubCall(hub, () =>
    downloadFile({ repo: { type: 'model', name: hub.repo }, path: entry.path, revision: sha, hubUrl: hub.endpoint, accessToken: hub.token, fetch: hub.fetch }),
  );
  if (!blob) throw new CodedError('ERR_DOWNLOAD', `${entry.path} is listed by ${hub.endpoint} for ${hub.repo} but cannot be downloaded (404)`);
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      done += chunk.length;
      report(done, 'fetch');
      callback(null, chunk);
    },
  });
  try {
    const body = Readable.fromWeb(blob.slice(done).stream() as import('stream/web').ReadableStream);
    await pipeline(body, counter, fs.createWriteStream(partial, { flags: 'a' }), { signal: hub.signal });
  } catch (e) {
    stopIfAborted(hub);
    throw new CodedError(
    'ERR_DOWNLOAD',
      `the download of ${entry.path} stopped at ${done} of ${entry.size} bytes (${reasonOf(e)}): run the same command again to resume`,
    );
  }
}

function reasonOf(e: unknown): string {
  const err = e as { cause?: { code?: string }; code?: string; message?: string };
  return err.cause?.code ?? err.code ?? err.message ?? String(e);
}

/** Whether `file` has the size and the hash the hub lists: sha256 for LFS files, git's blob sha1 otherwise. */
async function matches(
  file: string,
  entry: ListFileEntry,
  report: (done: number, phase: Progress['phase']) => void,
  signal?: AbortSignal,
): Promise<boolean> {
  if (fs.statSync(file).size !== entry.size) return false;
  const hash = entry.lfs ? createHash('sha256') : createHash('sha1').update(`blob ${entry.size}\0`);
  let done = 0;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20, signal })) {
    hash.update(chunk as Buffer);
    done += (chunk as Buffer).length;
    report(done, 'check');
  }
  return hash.digest('hex') === (entry.lfs?.oid ?? entry.oid);
}
