// The embedder API the semantic-search code already calls: `init()` then `embed(texts, isQuery)`.
// Each Embedder holds its own native models, so embedders of different models live side by
// side; with several models it concatenates their vectors into one.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type * as Native from '../index';
import type { InitOptions, ModelHealth, ModelInfo, ModelStats } from '../index';
import { combineHealth, EmbedderHealth } from './health';
import { native } from './binding';
import { CodedError } from './errors';
import { DEFAULT_MODEL, downloadCommand, resolveModel } from './hub';
import { AbortError, Cancellable, callSignal } from './cancel';
import { Reranker, RerankHit, RerankOptions, RerankerSource } from './reranker';
import { RemoteInfo, RemoteModel, RemoteOptions, RemoteStats } from './remote';

export type { EmbedderHealth, InitOptions, ModelHealth, ModelInfo, ModelStats, RemoteInfo, RemoteOptions, RemoteStats };

/** A model of an Embedder: loaded in this process, or served by a remote server. */
type EmbedModel = Native.Model | RemoteModel;

/** Where a model is: a folder, or a hub id downloaded into the Hugging Face cache. */
export interface ModelSource {
  /** A Hugging Face snapshot folder. */
  modelDir?: string;
  /** A hub model id (`nomic-ai/CodeRankEmbed`) looked up in the Hugging Face cache, or a folder. */
  model?: string;
  /** The revision of `model` (default `main`). */
  revision?: string;
  /** An embedding server instead of a local model: TEI, Infinity or an OpenAI-compatible `/v1/embeddings` (see the README's "Scaling out"). */
  remote?: RemoteOptions;
}

/** One model of a concatenating Embedder. */
export interface ModelSpec extends InitOptions, ModelSource {
  /** Its unit vector is scaled by this before concatenation (default 1). */
  weight?: number;
}

/**
 * Without modelDir, model or models: `$SEMANTIC_SEARCH_MODEL_DIR`, else
 * ~/.cache/semantic-search/models/CodeRankEmbed when it exists, else nomic-ai/CodeRankEmbed from
 * the Hugging Face cache (`npx semantic-search-native download` puts it there).
 */
export interface EmbedderOptions extends InitOptions, ModelSource {
  /** Several models whose vectors are concatenated in this order (the options above apply to each unless it sets its own). */
  models?: ModelSpec[];
  /** A reranker (a folder or hub id, or `{ modelDir }` / `{ model }`), loaded by init() with the options above, for `rerank()`. */
  reranker?: string | RerankerSource;
}

export interface EmbedderPart {
  /** The folder loaded, or the remote server's URL. */
  modelDir: string;
  weight: number;
  info: ModelInfo | RemoteInfo;
}

/** With one model, that model's info; with several, the first part's, with `dim` the total. */
export type EmbedderInfo = (ModelInfo | RemoteInfo) & { parts: EmbedderPart[] };

export interface EmbedCallOptions extends Cancellable {
  /** Called after each chunk of texts with how many are done (by every model) and how many there are. */
  onProgress?: (done: number, total: number) => void;
  /** The task of this call (see `info().tasks`), for the models that know it; the others run as usual. */
  task?: string;
  /** A prompt by name (see `info().prompts`: EmbeddingGemma's `'Code Retrieval'`), for the models that have it; the others run as usual. */
  prompt?: string;
}

// With progress wanted, texts go to the addon in chunks of this many, grouped by length so each
// chunk still batches texts of similar length.
const PROGRESS_CHUNK = 256;

/** The folder of the default model; throws with the download command when there is none. */
export function defaultModelDir(): string {
  if (process.env.SEMANTIC_SEARCH_MODEL_DIR) return process.env.SEMANTIC_SEARCH_MODEL_DIR;
  const legacy = path.join(os.homedir(), '.cache', 'semantic-search', 'models', 'CodeRankEmbed');
  if (fs.existsSync(legacy)) return legacy;
  try {
    return resolveModel(DEFAULT_MODEL);
  } catch {
    throw new CodedError(
      'ERR_MODEL_NOT_FOUND',
      `Embedder: no model given and the default model ${DEFAULT_MODEL} is not downloaded: run \`${downloadCommand(DEFAULT_MODEL)}\` (about 550 MB), or pass { modelDir } or { model }`,
    );
  }
}

/** The folder a spec names; the default model's when it names none. */
function modelFolder({ modelDir, model, revision }: ModelSource): string {
  if (modelDir !== undefined && model !== undefined) throw new CodedError('ERR_INPUT', 'Embedder: give either modelDir or model, not both');
  if (modelDir !== undefined) return modelDir;
  if (model !== undefined) return resolveModel(model, { revision });
  return defaultModelDir();
}

interface Part {
  spec: ModelSpec & { weight: number };
  /** The folder loaded, known after init(). */
  folder: string | null;
  model: EmbedModel | null;
}

export class Embedder {
  private readonly parts: Part[];
  private readonly rerankerSource?: { source: string | RerankerSource; options: InitOptions };
  private reranker: Reranker | null = null;

  constructor(options: EmbedderOptions = {}) {
    const { modelDir, model, revision, models, reranker, remote, ...shared } = options;
    if (reranker !== undefined) this.rerankerSource = { source: reranker, options: shared };
    if (models !== undefined && (modelDir !== undefined || model !== undefined)) {
      throw new CodedError('ERR_INPUT', 'Embedder: give either modelDir/model or models, not both');
    }
    if (models !== undefined && remote !== undefined) {
      throw new CodedError('ERR_INPUT', 'Embedder: give either remote or models (each may have its own remote), not both');
    }
    const specs: ModelSpec[] = models ?? [{ modelDir, model, revision, remote }];
    if (specs.length === 0) throw new CodedError('ERR_INPUT', 'Embedder: models is empty; name at least one { modelDir } or { model }');
    this.parts = specs.map(({ weight = 1, ...spec }) => {
      if (!(Number.isFinite(weight) && weight > 0)) {
        throw new CodedError('ERR_INPUT', `Embedder: the weight of ${spec.modelDir ?? spec.model} must be a positive number, got ${weight}`);
      }
      return { spec: { ...shared, ...spec, weight }, folder: null, model: null };
    });
  }

  /** Loads every model, one after another (so peak memory is one model's load at a time). */
  async init(): Promise<void> {
    for (const part of this.parts) {
      const { modelDir, model, revision, remote, weight: _weight, ...options } = part.spec;
      if (remote !== undefined && (modelDir !== undefined || model !== undefined)) {
        throw new CodedError('ERR_INPUT', 'Embedder: give either remote or modelDir/model, not both');
      }
      const folder = remote ? String(remote.url) : modelFolder({ modelDir, model, revision });
      const loaded = remote ? await RemoteModel.open(remote, options) : await native.Model.load(folder, options);
      await part.model?.close();
      part.model = loaded;
      part.folder = folder;
    }
    if (this.rerankerSource) {
      const loaded = await Reranker.load(this.rerankerSource.source, this.rerankerSource.options);
      await this.reranker?.close();
      this.reranker = loaded;
    }
  }

  /** The documents' hits for `query`, best first, from the `reranker` this embedder was made with. */
  async rerank(query: string, documents: string[], options: RerankOptions = {}): Promise<RerankHit[]> {
    if (!this.rerankerSource) throw new CodedError('ERR_INPUT', 'Embedder: rerank() needs a reranker: new Embedder({ ..., reranker: \'BAAI/bge-reranker-v2-m3\' })');
    if (!this.reranker) throw new CodedError('ERR_NOT_LOADED', 'Embedder: call and await init() before rerank()');
    return this.reranker.rerank(query, documents, options);
  }

  /** One unit-length vector per text, as plain arrays. */
  async embed(texts: string[], isQuery = false, options: EmbedCallOptions = {}): Promise<number[][]> {
    const vectors = await this.embedFloat32(texts, isQuery, options);
    return vectors.map((v) => Array.from(v));
  }

  /** The same vectors as views of one buffer, without copies (one model) or with one (several). */
  async embedFloat32(texts: string[], isQuery = false, options: EmbedCallOptions = {}): Promise<Float32Array[]> {
    const models = this.models();
    // one signal for every model and chunk: a timeout counts from the call's start
    const signal = callSignal(options);
    if (signal?.aborted) throw new AbortError(signal.reason);
    const calls = partOptions(models, options).map((call) => ({ ...call, signal }));
    const all = (chunk: string[]) => embedAll(models, this.parts, chunk, isQuery, calls);
    if (!options.onProgress || !Array.isArray(texts)) return all(texts);
    return inChunks(texts, all, options.onProgress);
  }

  /**
   * How many tokens each text becomes, prompt and special tokens included, before truncation:
   * with several models, the most any of them reads, so a chunk that fits fits them all.
   */
  countTokens(texts: string[], isQuery = false, options: EmbedCallOptions = {}): Uint32Array {
    const models = this.models();
    const calls = partOptions(models, options);
    const each = models.map((m, i) => m.countTokens(texts, isQuery, calls[i]));
    return each.reduce((most, counts) => most.map((n, i) => Math.max(n, counts[i])));
  }

  /**
   * `countTokens` for every kind of model: a local one counts here, a remote one asks its server
   * (TEI's `/tokenize`; the other APIs have none, which is `ERR_INPUT`).
   */
  async countTokensAsync(texts: string[], isQuery = false, options: EmbedCallOptions = {}): Promise<Uint32Array> {
    const models = this.models();
    const calls = partOptions(models, options);
    const signal = callSignal(options);
    const each = await Promise.all(
      models.map((m, i) => (m instanceof RemoteModel ? m.countTokensAsync(texts, isQuery, { signal }) : m.countTokens(texts, isQuery, calls[i]))),
    );
    return each.reduce((most, counts) => most.map((n, i) => Math.max(n, counts[i])));
  }

  /** True when a model of this embedder runs on a GPU. */
  isGpu(): boolean {
    return this.parts.some((p) => p.model?.isGpu() ?? false);
  }

  info(): EmbedderInfo {
    const models = this.models();
    const parts = this.parts.map((p, i) => ({ modelDir: p.folder!, weight: p.spec.weight, info: models[i].info() }));
    const dim = parts.reduce((sum, p) => sum + p.info.dim, 0);
    return { ...parts[0].info, dim, parts };
  }

  /** Each model's counters, in the order of `info().parts`. */
  stats(): Array<ModelStats | RemoteStats> {
    return this.models().map((m) => m.stats());
  }

  /** Whether the embedder is serving: its models' (and reranker's) health, the worst status first. */
  health(): EmbedderHealth {
    const parts = this.models().map((m) => m.health());
    if (this.reranker) parts.push(this.reranker.health());
    return combineHealth(parts);
  }

  /** Frees the models (and the reranker); later calls say to call init() again. */
  async close(): Promise<void> {
    for (const part of this.parts) {
      const model = part.model;
      part.model = null;
      await model?.close();
    }
    const reranker = this.reranker;
    this.reranker = null;
    await reranker?.close();
  }

  private models(): EmbedModel[] {
    return this.parts.map((p) => {
      if (!p.model) throw new CodedError('ERR_NOT_LOADED', 'Embedder: call and await init() before embed() or info()');
      return p.model;
    });
  }
}

/** The call options of each model: `task` and `prompt` go to the models that know them, and one must. */
function partOptions(models: EmbedModel[], options: EmbedCallOptions): Array<Native.EmbedOptions | undefined> {
  const task = forModels(models, 'task', options.task, (info) => info.tasks);
  const prompt = forModels(models, 'prompt', options.prompt, (info) => info.prompts);
  return models.map((_, i) => (task[i] !== undefined || prompt[i] !== undefined ? { task: task[i], prompt: prompt[i] } : undefined));
}

/** `name` for each model whose `names` have it (any model when there is only one). */
function forModels(
  models: EmbedModel[],
  what: string,
  name: string | undefined,
  names: (info: ModelInfo | RemoteInfo) => string[],
): Array<string | undefined> {
  if (name === undefined) return models.map(() => undefined);
  const known = models.map((m) => names(m.info()).includes(name));
  if (models.length > 1 && !known.some(Boolean)) {
    const all = [...new Set(models.flatMap((m) => names(m.info())))];
    throw new CodedError('ERR_INPUT', `Embedder: unknown ${what} '${name}': the models' ${what}s are ${all.map((t) => `'${t}'`).join(', ') || 'none'}`);
  }
  // with one model, the addon's own error says what is wrong with the name
  return known.map((k) => (k || models.length === 1 ? name : undefined));
}

/** Each model's vectors of `texts`; with several models, their weighted concatenation, L2-normalised. */
async function embedAll(
  models: EmbedModel[],
  parts: Part[],
  texts: string[],
  isQuery: boolean,
  calls: Array<Native.EmbedOptions | undefined>,
): Promise<Float32Array[]> {
  if (models.length === 1) return models[0].embed(texts, isQuery, calls[0]);
  const each = await Promise.all(models.map((m, i) => m.embed(texts, isQuery, calls[i])));
  return concatenate(each, parts.map((p) => p.spec.weight));
}

export function concatenate(each: Float32Array[][], weights: number[]): Float32Array[] {
  const count = each[0].length;
  const dims = each.map((vectors) => vectors[0]?.length ?? 0);
  const dim = dims.reduce((a, b) => a + b, 0);
  const buffer = new Float32Array(count * dim);
  const result: Float32Array[] = [];
  for (let i = 0; i < count; i++) {
    const out = buffer.subarray(i * dim, (i + 1) * dim);
    let offset = 0;
    each.forEach((vectors, k) => {
      const v = vectors[i];
      for (let j = 0; j < v.length; j++) out[offset + j] = v[j] * weights[k];
      offset += v.length;
    });
    let norm = 0;
    for (let j = 0; j < dim; j++) norm += out[j] * out[j];
    norm = Math.sqrt(norm);
    for (let j = 0; j < dim; j++) out[j] /= norm;
    result.push(out);
  }
  return result;
}

async function inChunks(
  texts: string[],
  embed: (chunk: string[]) => Promise<Float32Array[]>,
  onProgress: (done: number, total: number) => void,
): Promise<Float32Array[]> {
  const order = texts.map((_, i) => i).sort((a, b) => String(texts[b]).length - String(texts[a]).length);
  const result = new Array<Float32Array>(texts.length);
  onProgress(0, texts.length);
  for (let start = 0; start < order.length; start += PROGRESS_CHUNK) {
    const rows = order.slice(start, start + PROGRESS_CHUNK);
    const vectors = await embed(rows.map((i) => texts[i]));
    rows.forEach((row, k) => (result[row] = vectors[k]));
    onProgress(Math.min(start + PROGRESS_CHUNK, texts.length), texts.length);
  }
  return result;
}
