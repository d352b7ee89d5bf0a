// Remote models: the same Embedder and Reranker over a fleet of embedding servers — Hugging Face
// text-embeddings-inference (`tei`), Infinity (`infinity`), or any OpenAI-compatible
// `/v1/embeddings` (`openai`: vLLM, Ollama, LiteLLM). Texts go in requests of `maxBatchTexts`, at
// most `maxConcurrent` in flight (remote-client.ts), and come back in order, checked: the number
// of vectors, their length, finite float32 values. Prompts are applied here, on the client, for
// every API (none of the three applies a model's query prompt by itself).
import type { InitOptions, ModelHealth, ModelInfo, ModelStats, RerankHit, RerankOptions, VectorStore } from '../index';
import { setMaxListeners } from 'events';
import { native } from './binding';
import { AbortError } from './cancel';
import { CodedError } from './errors';
import { RemoteClient } from './remote-client';

export type RemoteApi = 'openai' | 'tei' | 'infinity';

export interface RemoteOptions {
  /** The server (or its load balancer): `http://host:port`, without the API path. */
  url: string;
  /** `'openai'` (default): POST {url}/v1/embeddings; `'infinity'`: {url}/embeddings and {url}/rerank; `'tei'`: {url}/embed and {url}/rerank. */
  api?: RemoteApi;
  /** The model id the server serves (default: the first it lists). */
  model?: string;
  /** Sent as `Authorization: Bearer …`; never logged, never in an error. */
  apiKey?: string;
  headers?: Record<string, string>;
  /** Requests of this model in flight at once, across all its calls (default 4). */
  maxConcurrent?: number;
  /** Milliseconds per request (default 30,000). */
  timeout?: number;
  /** Retries after the first attempt, on connection errors, timeouts, 429 and 5xx (default 3). */
  retries?: number;
  /** Texts per request (default: TEI's `max_client_batch_size` from its /info, else 32). */
  maxBatchTexts?: number;
}

/** What a local model's info says and a remote one's cannot: absent (the server decides them). */
type LocalOnly = Partial<Omit<ModelInfo, 'backend' | 'device' | 'arch' | 'dim' | 'maxLength' | 'queryPrefix' | 'documentPrefix' | 'tasks' | 'prompts'>>;

/** `info()` of a remote model: the fields of a local model's info that apply, and the server's. */
export interface RemoteInfo extends LocalOnly {
  backend: 'remote';
  /** The server's URL. */
  device: string;
  api: RemoteApi;
  /** The model id the server reports. */
  model: string;
  /** The model's revision where the server reports one (TEI's `model_sha`). */
  revision?: string;
  arch: 'remote';
  dim: number;
  /** The server's input limit in tokens where it reports one (TEI), else 0. */
  maxLength: number;
  maxBatchTexts: number;
  maxConcurrent: number;
  timeout: number;
  retries: number;
  queryPrefix: string;
  documentPrefix: string;
  tasks: string[];
  prompts: string[];
}

/** What a local model's stats count and a remote one's cannot (the server runs the forward passes): absent. */
type LocalCounts = Partial<Omit<ModelStats, 'calls' | 'texts' | 'queueSeconds' | 'cacheHits' | 'cacheMisses' | 'cacheBytes' | 'lastError'>>;

/** `stats()` of a remote model: the counts of a local model's that apply, and the client's. */
export interface RemoteStats extends LocalCounts {
  calls: number;
  texts: number;
  requests: number;
  /** Attempts repeated after a connection error, a timeout, 429 or 5xx. */
  retries: number;
  failedRequests: number;
  /** Seconds requests waited for `maxConcurrent`. */
  queueSeconds: number;
  /** Seconds of requests, summed (they overlap). */
  requestSeconds: number;
  /** Texts the vector cache had, and did not have; the file's bytes in use (0 when it is off). */
  cacheHits: number;
  cacheMisses: number;
  cacheBytes: number;
  lastError?: string;
}

/**
 * What a remote model takes of the Embedder's options: the prompts, a Matryoshka cut, and the
 * vector cache (`vectorCache`, as for a local model; the model's identity is the API, URL, model
 * id and the revision the server reports).
 */
export type RemoteExtras = Pick<InitOptions, 'queryPrefix' | 'documentPrefix' | 'dimensions' | 'vectorCache' | 'vectorCacheMaxBytes' | 'vectorCacheTimeout'>;

const DEFAULTS = { api: 'openai' as RemoteApi, maxConcurrent: 4, timeout: 30_000, retries: 3, maxBatchTexts: 32 };
const LATENCIES = 1000;

interface ServerFacts {
  model?: string;
  revision?: string;
  maxBatchTexts?: number;
  maxLength?: number;
}

/** What every remote model shares: its client, its counts and its health. */
class RemoteBase {
  protected readonly client: RemoteClient;
  protected readonly api: RemoteApi;
  protected facts: ServerFacts = {};
  protected calls = 0;
  protected texts = 0;
  private errors = 0;
  private failing = false;
  private lastError?: string;
  private readonly latencies: number[] = [];
  private readonly started = performance.now();
  private closed = false;

  constructor(protected readonly options: Required<Omit<RemoteOptions, 'model' | 'apiKey' | 'headers' | 'maxBatchTexts'>> & RemoteOptions) {
    this.api = options.api;
    this.client = new RemoteClient(options);
  }

  /** The server's model id, revision and limits, where it says them. */
  protected async learn(signal?: AbortSignal): Promise<void> {
    const path = { tei: '/info', infinity: '/models', openai: '/v1/models' }[this.api];
    const reply = (await this.client.getJson(path, signal)) as Record<string, unknown> | null;
    if (this.api === 'tei' && reply) {
      this.facts = {
        model: str(reply.model_id),
        revision: str(reply.model_sha),
        maxBatchTexts: num(reply.max_client_batch_size),
        maxLength: num(reply.max_input_length),
      };
    } else if (reply && Array.isArray(reply.data)) {
      this.facts = { model: str((reply.data[0] as Record<string, unknown> | undefined)?.id) };
    }
  }

  get model(): string {
    return this.options.model ?? this.facts.model ?? '';
  }

  get batchTexts(): number {
    return this.options.maxBatchTexts ?? this.facts.maxBatchTexts ?? DEFAULTS.maxBatchTexts;
  }

  /** `items` in requests of `maxBatchTexts`. */
  protected inBatches<T>(items: T[]): T[][] {
    const batches: T[][] = [];
    for (let i = 0; i < items.length; i += this.batchTexts) batches.push(items.slice(i, i + this.batchTexts));
    return batches;
  }

  /** Runs one call, counting it and keeping how it ended. */
  protected async call<T>(texts: number, work: () => Promise<T>): Promise<T> {
    if (this.closed) throw new CodedError('ERR_MODEL_CLOSED', `this remote model (${this.options.url}) was closed: make a new one to use it`);
    const started = performance.now();
    this.calls++;
    this.texts += texts;
    try {
      const result = await work();
      this.failing = false;
      if (this.latencies.push((performance.now() - started) / 1000) > LATENCIES) this.latencies.shift();
      return result;
    } catch (e) {
      if (!(e instanceof AbortError)) {
        this.errors++;
        this.lastError = (e as Error).message;
        // as a local model's: bad input neither fails the model nor clears a failure
        if ((e as CodedError).code === 'ERR_REMOTE') this.failing = true;
      }
      throw e;
    }
  }

  isGpu(): boolean {
    return false; // this process runs no GPU; the server's is its own
  }

  stats(): RemoteStats {
    return { calls: this.calls, texts: this.texts, ...this.client.counts, cacheHits: 0, cacheMisses: 0, cacheBytes: 0, lastError: this.lastError };
  }

  health(): ModelHealth {
    return {
      status: this.failing ? 'failed' : 'ok',
      backend: 'remote',
      device: this.options.url,
      uptimeSeconds: (performance.now() - this.started) / 1000,
      calls: this.calls,
      errors: this.errors,
      lastError: this.lastError,
      latency: percentiles(this.latencies),
      queue: { running: this.client.runningRequests, waiting: this.client.waitingRequests },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/** An embedding model on a server: the Embedder's view of a local `Model`. */
export class RemoteModel extends RemoteBase {
  private dim = 0;
  /** The length of the server's vectors, learnt from the first. */
  private serverDim = 0;
  private store: VectorStore | null = null;
  private cacheHits = 0;
  private cacheMisses = 0;

  private constructor(
    options: ConstructorParameters<typeof RemoteBase>[0],
    private readonly extras: RemoteExtras,
  ) {
    super(options);
  }

  /** Checks the options, asks the server what it serves, and embeds one text to learn the vectors' length. */
  static async open(remote: RemoteOptions, extras: RemoteExtras = {}): Promise<RemoteModel> {
    const model = new RemoteModel(checked(remote), extras);
    await model.learn();
    const [probe] = await model.request(['dimension probe'], undefined);
    model.serverDim = probe.length;
    model.dim = extras.dimensions ?? probe.length;
    if (model.dim > probe.length) {
      throw new CodedError('ERR_INPUT', `dimensions ${model.dim} is more than the ${probe.length} values the server's vectors have`);
    }
    const { vectorCache, vectorCacheMaxBytes, vectorCacheTimeout } = extras;
    model.store = native.openVectorStore({ vectorCache, vectorCacheMaxBytes, vectorCacheTimeout }, model.identity(), model.serverDim);
    return model;
  }

  /** What the vector cache knows this model by. */
  private identity(): string {
    const { url } = this.options;
    return `remote api=${this.api} url=${url} model=${this.model} revision=${this.facts.revision ?? ''} width=${this.serverDim}`;
  }

  embed(texts: string[], isQuery = false, options: { signal?: AbortSignal; task?: string; prompt?: string } = {}): Promise<Float32Array[]> {
    return this.call(Array.isArray(texts) ? texts.length : 0, async () => {
      checkTexts(texts);
      if (options.task !== undefined || options.prompt !== undefined) {
        throw new CodedError('ERR_INPUT', 'a remote model takes no task or named prompt: set queryPrefix / documentPrefix instead');
      }
      const prefix = (isQuery ? this.extras.queryPrefix : this.extras.documentPrefix) ?? '';
      const lookup = this.store?.lookup(texts, prefix);
      const wanted = lookup ? lookup.misses().map((i) => texts[i]) : texts;
      const computed = await this.embedRaw(wanted.map((t) => prefix + t), options.signal);
      if (!lookup || !this.store) return computed.map((v) => unit(v, this.dim));
      this.cacheHits += texts.length - wanted.length;
      this.cacheMisses += wanted.length;
      const flat = Float32Array.from(computed.flat());
      this.store.keep(lookup, flat);
      const all = lookup.assemble(flat, this.serverDim, this.serverDim);
      return texts.map((_, i) => unit(Array.from(all.subarray(i * this.serverDim, (i + 1) * this.serverDim)), this.dim));
    });
  }

  /** The server's vectors of `inputs`, as it answers them, in requests of `maxBatchTexts`. */
  private async embedRaw(inputs: string[], signal: AbortSignal | undefined): Promise<number[][]> {
    return (await allOrNone(this.inBatches(inputs), (batch, s) => this.request(batch, s), signal)).flat();
  }

  /**
   * How many tokens each text becomes with the call's prompt, special tokens included, from TEI's
   * `/tokenize`; the other APIs have none.
   */
  async countTokensAsync(texts: string[], isQuery = false, options: { signal?: AbortSignal } = {}): Promise<Uint32Array> {
    checkTexts(texts);
    if (this.api !== 'tei') throw new CodedError('ERR_INPUT', `countTokens: remote.api '${this.api}' has no tokenize endpoint (TEI's /tokenize is the one used)`);
    const prefix = (isQuery ? this.extras.queryPrefix : this.extras.documentPrefix) ?? '';
    const counts = await allOrNone(this.inBatches(texts.map((t) => prefix + t)), async (inputs, signal) => {
      const reply = await this.client.postJson('/tokenize', { inputs, add_special_tokens: true }, signal);
      if (!Array.isArray(reply) || reply.length !== inputs.length || !reply.every(Array.isArray)) {
        throw new CodedError('ERR_REMOTE', `${this.options.url} answered /tokenize with ${Array.isArray(reply) ? reply.length : 'no'} token lists for ${inputs.length} texts`);
      }
      return (reply as unknown[][]).map((tokens) => tokens.length);
    }, options.signal);
    return Uint32Array.from(counts.flat());
  }

  stats(): RemoteStats {
    return { ...super.stats(), cacheHits: this.cacheHits, cacheMisses: this.cacheMisses, cacheBytes: this.store?.bytes() ?? 0 };
  }

  countTokens(): Uint32Array {
    throw new CodedError('ERR_INPUT', `countTokens needs the model's tokenizer, which a remote model (${this.options.url}) does not have here: use countTokensAsync, which asks TEI's /tokenize`);
  }

  info(): RemoteInfo {
    return {
      backend: 'remote',
      device: this.options.url,
      api: this.api,
      model: this.model,
      revision: this.facts.revision,
      arch: 'remote',
      dim: this.dim,
      maxLength: this.facts.maxLength ?? 0,
      maxBatchTexts: this.batchTexts,
      maxConcurrent: this.options.maxConcurrent,
      timeout: this.options.timeout,
      retries: this.options.retries,
      queryPrefix: this.extras.queryPrefix ?? '',
      documentPrefix: this.extras.documentPrefix ?? '',
      tasks: [],
      prompts: [],
      vectorCache: this.store?.path(),
      vectorCacheNote: this.store?.note() ?? undefined,
    };
  }

  /** One request's vectors, checked against what was sent. */
  private async request(inputs: string[], signal: AbortSignal | undefined): Promise<number[][]> {
    const path = { tei: '/embed', infinity: '/embeddings', openai: '/v1/embeddings' }[this.api];
    const body = this.api === 'tei' ? { inputs, truncate: true } : { model: this.model, input: inputs, encoding_format: 'float' };
    const reply = await this.client.postJson(path, body, signal);
    const vectors = this.api === 'tei' ? reply : ordered(reply);
    return this.checkVectors(vectors, inputs.length);
  }

  private checkVectors(vectors: unknown, count: number): number[][] {
    const wrong = (what: string) => new CodedError('ERR_REMOTE', this.client.mask(`${this.options.url} answered ${what}`));
    if (!Array.isArray(vectors)) throw wrong('no list of vectors');
    if (vectors.length !== count) throw wrong(`${vectors.length} vectors for ${count} texts`);
    for (const [i, v] of vectors.entries()) {
      if (!Array.isArray(v) || v.length === 0) throw wrong(`no vector for text ${i}`);
      const expected = this.serverDim || (vectors[0] as unknown[]).length;
      if (v.length !== expected) throw wrong(`a vector of ${v.length} values for text ${i}, where the model's have ${expected}`);
      const bad = v.findIndex((x) => typeof x !== 'number' || !Number.isFinite(Math.fround(x)));
      if (bad >= 0) throw wrong(`value ${String(v[bad])} at [${i}][${bad}], which is not a finite float32`);
    }
    return vectors as number[][];
  }
}

/** A reranker on a server (TEI or Infinity `/rerank`; Cohere's body for Infinity): the Reranker's view of a local one. */
export class RemoteReranker extends RemoteBase {
  static async open(remote: RemoteOptions): Promise<RemoteReranker> {
    const options = checked(remote);
    if (options.api === 'openai') throw new CodedError('ERR_INPUT', "remote.api 'openai' has no rerank endpoint: use 'tei' or 'infinity'");
    const reranker = new RemoteReranker(options);
    await reranker.learn();
    return reranker;
  }

  rerank(query: string, documents: string[], options: RerankOptions & { signal?: AbortSignal } = {}): Promise<RerankHit[]> {
    return this.call(Array.isArray(documents) ? documents.length : 0, async () => {
      if (typeof query !== 'string') throw new CodedError('ERR_INPUT', `rerank(query, documents): query must be a string, got ${typeof query}`);
      checkTexts(documents);
      const { topK, rawScores, instruction, signal } = options;
      if (instruction !== undefined) throw new CodedError('ERR_INPUT', 'a remote reranker takes no instruction');
      if (topK !== undefined && !(Number.isInteger(topK) && topK > 0)) throw new CodedError('ERR_INPUT', `topK must be a positive integer, got ${String(topK)}`);
      const hits: RerankHit[] = [];
      for (let i = 0; i < documents.length; i += this.batchTexts) {
        const batch = documents.slice(i, i + this.batchTexts);
        for (const hit of await this.scores(query, batch, rawScores === true, signal)) hits.push({ index: hit.index + i, score: hit.score });
      }
      hits.sort((a, b) => b.score - a.score || a.index - b.index);
      return topK === undefined ? hits : hits.slice(0, topK);
    });
  }

  info(): Omit<RemoteInfo, 'dim' | 'queryPrefix' | 'documentPrefix'> & { dim: 1 } {
    const { api, model, options } = this;
    return { backend: 'remote', device: options.url, api, model, revision: this.facts.revision, arch: 'remote', dim: 1, maxLength: this.facts.maxLength ?? 0, maxBatchTexts: this.batchTexts, maxConcurrent: options.maxConcurrent, timeout: options.timeout, retries: options.retries, tasks: [], prompts: [] };
  }

  private async scores(query: string, texts: string[], raw: boolean, signal?: AbortSignal): Promise<RerankHit[]> {
    const body = this.api === 'tei'
      ? { query, texts, raw_scores: raw, return_text: false, truncate: true }
      : { model: this.model, query, documents: texts, return_documents: false, raw_scores: raw };
    const reply = (await this.client.postJson('/rerank', body, signal)) as unknown;
    const list = this.api === 'tei' ? reply : (reply as { results?: unknown } | null)?.results;
    const wrong = (what: string) => new CodedError('ERR_REMOTE', this.client.mask(`${this.options.url} answered ${what}`));
    if (!Array.isArray(list) || list.length !== texts.length) throw wrong(`${Array.isArray(list) ? list.length : 'no'} scores for ${texts.length} documents`);
    const seen = new Set<number>();
    return list.map((item: Record<string, unknown>) => {
      const index = item?.index;
      const score = item?.score ?? item?.relevance_score;
      if (!Number.isInteger(index) || (index as number) < 0 || (index as number) >= texts.length || seen.has(index as number)) throw wrong(`a score for document ${String(index)}`);
      if (typeof score !== 'number' || !Number.isFinite(score)) throw wrong(`score ${String(score)} for document ${String(index)}`);
      seen.add(index as number);
      return { index: index as number, score };
    });
  }
}

/**
 * `request` of every item at once (the client bounds how many run); the first failure stops the
 * others, so a failed call sends nothing more.
 */
async function allOrNone<T, R>(items: T[], request: (item: T, signal: AbortSignal) => Promise<R>, signal?: AbortSignal): Promise<R[]> {
  const stop = new AbortController();
  const both = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  // every request waiting for its place listens to it: as many listeners as requests, by design
  setMaxListeners(0, both);
  return Promise.all(
    items.map((item) =>
      request(item, both).catch((e: unknown) => {
        stop.abort(e);
        throw signal?.aborted ? new AbortError(signal.reason) : e;
      }),
    ),
  );
}

/** The options with defaults, or ERR_INPUT naming what is wrong. */
function checked(remote: RemoteOptions): ConstructorParameters<typeof RemoteBase>[0] {
  const bad = (what: string) => new CodedError('ERR_INPUT', `remote.${what}`);
  if (remote === null || typeof remote !== 'object') throw new CodedError('ERR_INPUT', `remote must be an object ({ url, api, ... }), got ${remote === null ? 'null' : typeof remote}`);
  const { url } = remote;
  if (typeof url !== 'string' || !/^https?:\/\/[^/]+/.test(url)) throw bad(`url must be an http(s) URL of the server, got ${JSON.stringify(url)}`);
  const api = remote.api ?? DEFAULTS.api;
  if (!['openai', 'tei', 'infinity'].includes(api)) throw bad(`api must be 'openai', 'tei' or 'infinity', got ${JSON.stringify(api)}`);
  const count = (name: 'maxConcurrent' | 'timeout' | 'retries' | 'maxBatchTexts', min: number) => {
    const v = remote[name];
    if (v !== undefined && !(Number.isInteger(v) && v >= min)) throw bad(`${name} must be a whole number ≥ ${min}, got ${String(v)}`);
  };
  count('maxConcurrent', 1);
  count('timeout', 1);
  count('retries', 0);
  count('maxBatchTexts', 1);
  for (const name of ['model', 'apiKey'] as const) {
    if (remote[name] !== undefined && typeof remote[name] !== 'string') throw bad(`${name} must be a string`);
  }
  if (remote.headers !== undefined && (typeof remote.headers !== 'object' || Object.values(remote.headers).some((v) => typeof v !== 'string'))) {
    throw bad('headers must be an object of strings');
  }
  return {
    ...remote,
    url: url.replace(/\/+$/, ''),
    api,
    maxConcurrent: remote.maxConcurrent ?? DEFAULTS.maxConcurrent,
    timeout: remote.timeout ?? DEFAULTS.timeout,
    retries: remote.retries ?? DEFAULTS.retries,
  };
}

function checkTexts(texts: unknown): asserts texts is string[] {
  if (!Array.isArray(texts)) throw new CodedError('ERR_INPUT', `texts must be an array of strings, got ${typeof texts}`);
  const bad = texts.findIndex((t) => typeof t !== 'string');
  if (bad >= 0) throw new CodedError('ERR_INPUT', `texts[${bad}] is ${typeof texts[bad]}, expected a string`);
}

/** An OpenAI-shaped reply's embeddings, in the order of their `index`. */
function ordered(reply: unknown): unknown {
  const data = (reply as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) return undefined;
  const sorted = [...data].sort((a, b) => (a as { index: number }).index - (b as { index: number }).index);
  return sorted.map((d) => (d as { embedding?: unknown }).embedding);
}

/** The first `dim` values, L2-normalised, as float32. */
function unit(values: number[], dim: number): Float32Array {
  const v = Float32Array.from(values.slice(0, dim));
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm) || 1;
  for (let i = 0; i < v.length; i++) v[i] /= norm;
  return v;
}

function percentiles(times: number[]): ModelHealth['latency'] {
  if (times.length === 0) return {};
  const sorted = [...times].sort((a, b) => a - b);
  const rank = (p: number) => sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1];
  return { p50: rank(50), p95: rank(95), p99: rank(99) };
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined;
}
