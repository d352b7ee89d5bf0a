// The HTTP side of a remote model: requests to an embedding server with Node's own fetch, at most
// `maxConcurrent` in flight per model, each with its own timeout, retried with exponential backoff
// and jitter on connection errors, timeouts, 429 and 5xx (honouring Retry-After), never on other
// 4xx; the call's signal aborts them. The API key goes in a header and nowhere else: every text
// that reaches an error (a server's reply quoting it included) has it masked.
import { AbortError } from './cancel';
import { CodedError } from './errors';

export interface ClientOptions {
  url: string;
  apiKey?: string;
  headers?: Record<string, string>;
  /** Requests of this model in flight at once, across all its calls. */
  maxConcurrent: number;
  /** Milliseconds per request. */
  timeout: number;
  /** Retries after the first attempt. */
  retries: number;
}

/** What the client did, for `stats()`. */
export interface ClientCounts {
  requests: number;
  retries: number;
  failedRequests: number;
  /** Seconds requests waited for a place among `maxConcurrent`. */
  queueSeconds: number;
  /** Seconds from each request's start to its answer, summed. */
  requestSeconds: number;
}

const BACKOFF_MS = 200;
const BACKOFF_CAP_MS = 10_000;

export class RemoteClient {
  readonly counts: ClientCounts = { requests: 0, retries: 0, failedRequests: 0, queueSeconds: 0, requestSeconds: 0 };
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  /** Waits between attempts (a test can shorten them; the retry log shows what was chosen). */
  sleep: (ms: number, signal?: AbortSignal) => Promise<void> = sleep;

  constructor(readonly options: ClientOptions) {}

  /** Requests waiting for a place, now. */
  get waitingRequests(): number {
    return this.waiting.length;
  }

  get runningRequests(): number {
    return this.running;
  }

  /** `GET`s `path`'s JSON; `null` on 404 (a server without that route). */
  async getJson(path: string, signal?: AbortSignal): Promise<unknown | null> {
    return this.request('GET', path, undefined, signal, true);
  }

  /** `POST`s `body` as JSON to `path`, and returns the reply's JSON. */
  async postJson(path: string, body: unknown, signal?: AbortSignal): Promise<unknown> {
    return this.request('POST', path, JSON.stringify(body), signal, false);
  }

  private async request(method: string, path: string, body: string | undefined, signal: AbortSignal | undefined, missingOk: boolean): Promise<unknown> {
    await this.place(signal);
    try {
      return await this.attempts(method, path, body, signal, missingOk);
    } finally {
      this.leave();
    }
  }

  private async attempts(method: string, path: string, body: string | undefined, signal: AbortSignal | undefined, missingOk: boolean): Promise<unknown> {
    const where = `${method} ${this.options.url}${path}`;
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw new AbortError(signal.reason);
      const outcome = await this.once(method, path, body, signal);
      if (outcome.kind === 'ok') return outcome.json;
      if (outcome.kind === 'missing' && missingOk) return null;
      if (outcome.kind === 'final' || outcome.kind === 'missing' || attempt >= this.options.retries) {
        this.counts.failedRequests++;
        const tries = attempt + 1;
        throw new CodedError('ERR_REMOTE', this.mask(`${where} failed${tries > 1 ? ` after ${tries} attempts` : ''}: ${outcome.why}`));
      }
      this.counts.retries++;
      await this.sleep(outcome.retryAfterMs ?? backoff(attempt), signal);
    }
  }

  /** One attempt: its JSON, or why it failed and whether another may succeed. */
  private async once(method: string, path: string, body: string | undefined, signal: AbortSignal | undefined): Promise<Outcome> {
    const timer = AbortSignal.timeout(this.options.timeout);
    const both = signal ? AbortSignal.any([signal, timer]) : timer;
    const started = performance.now();
    this.counts.requests++;
    try {
      const reply = await fetch(`${this.options.url}${path}`, { method, body, headers: this.headers(body !== undefined), signal: both });
      const text = await reply.text();
      if (reply.ok) return parsed(text);
      const why = `${reply.status} ${reply.statusText}${text ? `: ${text.slice(0, 300)}` : ''}`;
      if (reply.status === 404) return { kind: 'missing', why };
      if (reply.status === 429 || reply.status >= 500) return { kind: 'retry', why, retryAfterMs: retryAfter(reply.headers.get('retry-after')) };
      return { kind: 'final', why: reply.status === 401 || reply.status === 403 ? `${why} (check apiKey)` : why };
    } catch (e) {
      if (signal?.aborted) throw new AbortError(signal.reason);
      if (timer.aborted) return { kind: 'retry', why: `no answer within ${this.options.timeout} ms (timeout)` };
      return { kind: 'retry', why: `connection failed (${reasonOf(e)})` };
    } finally {
      this.counts.requestSeconds += (performance.now() - started) / 1000;
    }
  }

  private headers(json: boolean): Record<string, string> {
    const headers: Record<string, string> = { accept: 'application/json', ...this.options.headers };
    if (json) headers['content-type'] = 'application/json';
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    return headers;
  }

  /** `text` with the API key masked, wherever it appears. */
  mask(text: string): string {
    const key = this.options.apiKey;
    return key ? text.split(key).join('***') : text;
  }

  private async place(signal: AbortSignal | undefined): Promise<void> {
    if (this.running < this.options.maxConcurrent) {
      this.running++;
      return;
    }
    const started = performance.now();
    await new Promise<void>((resolve, reject) => {
      const abort = () => {
        this.waiting.splice(this.waiting.indexOf(turn), 1);
        reject(new AbortError(signal!.reason));
      };
      const turn = () => {
        signal?.removeEventListener('abort', abort);
        resolve();
      };
      if (signal?.aborted) return reject(new AbortError(signal.reason));
      signal?.addEventListener('abort', abort, { once: true });
      this.waiting.push(turn);
    });
    this.counts.queueSeconds += (performance.now() - started) / 1000;
  }

  private leave(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }
}

type Outcome =
  | { kind: 'ok'; json: unknown }
  | { kind: 'retry'; why: string; retryAfterMs?: number }
  | { kind: 'final'; why: string }
  | { kind: 'missing'; why: string };

function parsed(text: string): Outcome {
  try {
    return { kind: 'ok', json: JSON.parse(text) };
  } catch (e) {
    // a `NaN` or `Infinity` token is not JSON: the reply is refused whole, not retried
    return { kind: 'final', why: `the reply is not JSON (${(e as Error).message}): ${text.slice(0, 120)}` };
  }
}

/** Full jitter over an exponential step: between half and all of 200 ms × 2^attempt, at most 10 s. */
export function backoff(attempt: number): number {
  const step = Math.min(BACKOFF_CAP_MS, BACKOFF_MS * 2 ** attempt);
  return step / 2 + Math.random() * (step / 2);
}

/** `Retry-After` as seconds or an HTTP date, in milliseconds; undefined when absent or unreadable. */
export function retryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortError(signal.reason));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', abort);
      resolve();
    }, ms);
    const abort = () => {
      clearTimeout(timer);
      reject(new AbortError(signal!.reason));
    };
    signal?.addEventListener('abort', abort, { once: true });
  });
}

function reasonOf(e: unknown): string {
  const err = e as { cause?: { code?: string; message?: string }; code?: string; message?: string };
  return err.cause?.code ?? err.cause?.message ?? err.code ?? err.message ?? String(e);
}
