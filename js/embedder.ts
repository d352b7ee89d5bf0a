// The embedder API the semantic-search code already calls: `init()` then `embed(texts, isQuery)`.
// The model is loaded once per process by the native addon; this class only keeps its options.
import * as os from 'os';
import * as path from 'path';
import * as native from '../index';
import type { InitOptions, ModelInfo } from '../index';

export type { InitOptions, ModelInfo };

export interface EmbedderOptions extends InitOptions {
  /** A Hugging Face snapshot; default `$SEMANTIC_SEARCH_MODEL_DIR`, else ~/.cache/semantic-search/models/CodeRankEmbed. */
  modelDir?: string;
}

export interface EmbedCallOptions {
  /** Called after each chunk of texts with how many are done and how many there are. */
  onProgress?: (done: number, total: number) => void;
}

// With progress wanted, texts go to the addon in chunks of this many, grouped by length so each
// chunk still batches texts of similar length.
const PROGRESS_CHUNK = 256;

export function defaultModelDir(): string {
  return (
    process.env.SEMANTIC_SEARCH_MODEL_DIR ||
    path.join(os.homedir(), '.cache', 'semantic-search', 'models', 'CodeRankEmbed')
  );
}

export class Embedder {
  private readonly modelDir: string;
  private readonly initOptions: InitOptions;
  private loaded: ModelInfo | null = null;

  constructor(options: EmbedderOptions = {}) {
    const { modelDir, ...initOptions } = options;
    this.modelDir = modelDir ?? defaultModelDir();
    this.initOptions = initOptions;
  }

  async init(): Promise<void> {
    this.loaded = await native.init(this.modelDir, this.initOptions);
  }

  /** One unit-length vector per text, as plain arrays. */
  async embed(texts: string[], isQuery = false, options: EmbedCallOptions = {}): Promise<number[][]> {
    const vectors = await this.embedFloat32(texts, isQuery, options);
    return vectors.map((v) => Array.from(v));
  }

  /** The same vectors as views of one buffer, without copies. */
  async embedFloat32(texts: string[], isQuery = false, options: EmbedCallOptions = {}): Promise<Float32Array[]> {
    this.requireInit();
    if (!options.onProgress) {
      return native.embed(texts, isQuery);
    }
    return embedInChunks(texts, isQuery, options.onProgress);
  }

  isGpu(): boolean {
    return native.isGpu();
  }

  info(): ModelInfo {
    this.requireInit();
    return native.info();
  }

  private requireInit(): void {
    if (!this.loaded) {
      throw new Error('Embedder: call and await init() before embed() or info()');
    }
  }
}

async function embedInChunks(
  texts: string[],
  isQuery: boolean,
  onProgress: (done: number, total: number) => void,
): Promise<Float32Array[]> {
  if (!Array.isArray(texts)) {
    return native.embed(texts, isQuery); // the addon's own error names the problem
  }
  const order = texts.map((_, i) => i).sort((a, b) => String(texts[b]).length - String(texts[a]).length);
  const result = new Array<Float32Array>(texts.length);
  onProgress(0, texts.length);
  for (let start = 0; start < order.length; start += PROGRESS_CHUNK) {
    const rows = order.slice(start, start + PROGRESS_CHUNK);
    const vectors = await native.embed(rows.map((i) => texts[i]), isQuery);
    rows.forEach((row, k) => (result[row] = vectors[k]));
    onProgress(Math.min(start + PROGRESS_CHUNK, texts.length), texts.length);
  }
  return result;
}
