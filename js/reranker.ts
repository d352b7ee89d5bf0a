// Reranking: a cross-encoder or a Qwen3-Reranker judge scores (query, document) pairs, so that a
// search can order its best vector hits by relevance.
import type * as Native from '../index';
import type { InitOptions, ModelHealth, ModelInfo, ModelStats, RerankHit, RerankOptions } from '../index';
import { native } from './binding';
import { CodedError } from './errors';
import { resolveModel } from './hub';
import { RemoteOptions, RemoteReranker, RemoteStats } from './remote';
import type { Cancellable } from './cancel';

export type { RerankHit, RerankOptions };

/** `info()` of a remote reranker. */
export type RemoteInfoOfReranker = ReturnType<RemoteReranker['info']>;

/** A reranker's snapshot: a folder, or a hub id (`BAAI/bge-reranker-v2-m3`) in the Hugging Face cache. */
export interface RerankerSource {
  modelDir?: string;
  model?: string;
  /** The revision of `model` (default `main`). */
  revision?: string;
  /** A reranking server instead: TEI or Infinity `/rerank` (see the README's "Scaling out"). */
  remote?: RemoteOptions;
}

/** A cross-encoder (`*ForSequenceClassification`, one label) or a Qwen3-Reranker judge, loaded once. */
export class Reranker {
  private constructor(
    private readonly model: Native.RerankerModel | RemoteReranker,
    /** The snapshot folder loaded, or the remote server's URL. */
    readonly modelDir: string,
  ) {}

  /** Loads `source` (a folder or hub id, or `{ modelDir }` / `{ model, revision }`) with the embedding model's options. */
  static async load(source: string | RerankerSource, options: InitOptions = {}): Promise<Reranker> {
    if (source !== null && typeof source === 'object' && source.remote !== undefined) {
      if (source.modelDir !== undefined || source.model !== undefined) throw new CodedError('ERR_INPUT', 'Reranker.load: give either remote or modelDir/model, not both');
      return new Reranker(await RemoteReranker.open(source.remote), String(source.remote.url));
    }
    const folder = rerankerFolder(source);
    return new Reranker(await native.RerankerModel.load(folder, options), folder);
  }

  /**
   * The documents' hits for `query`, best first: `{ index, score }` with `index` the document's
   * place in `documents` and `score` the sigmoid of the model's logit (`rawScores: true`: the
   * logit). `topK`: only the best K; `instruction`: a judge's task (Qwen3-Reranker).
   */
  rerank(query: string, documents: string[], options: RerankOptions & Cancellable = {}): Promise<RerankHit[]> {
    if (options.topK !== undefined && typeof options.topK !== 'number') {
      return Promise.reject(new CodedError('ERR_INPUT', `topK must be a positive integer (how many of the best documents to return), got ${typeof options.topK}`));
    }
    return this.model.rerank(query, documents, options);
  }

  info(): ModelInfo | RemoteInfoOfReranker {
    return this.model.info();
  }

  isGpu(): boolean {
    return this.model.isGpu();
  }

  stats(): ModelStats | RemoteStats {
    return this.model.stats();
  }

  /** Whether the reranker is serving, where, and how fast. */
  health(): ModelHealth {
    return this.model.health();
  }

  /** Frees the model; later calls say to load it again. */
  close(): Promise<void> {
    return this.model.close();
  }
}

function rerankerFolder(source: string | RerankerSource): string {
  if (typeof source === 'string') return resolveModel(source);
  if (source === null || typeof source !== 'object') {
    throw new CodedError('ERR_INPUT', `Reranker.load: give a folder, a hub id or { modelDir } / { model }, got ${source === null ? 'null' : typeof source}`);
  }
  const { modelDir, model, revision } = source;
  if ((modelDir === undefined) === (model === undefined)) {
    throw new CodedError('ERR_INPUT', 'Reranker.load: give exactly one of modelDir and model');
  }
  return modelDir ?? resolveModel(model!, { revision });
}
