// An embedding server on 127.0.0.1 for the remote tests, in the three APIs' shapes (TEI, Infinity,
// OpenAI), whose answers come from a function of each text, and which injects the faults a fleet
// has: a status with Retry-After, a connection reset mid-response, a slow answer, a body with one
// vector too few, NaN, numbers past float32, a 401 that quotes the key. Every request is logged
// with its arrival time and how many were in flight.
import * as http from 'http';
import type { AddressInfo } from 'net';

export type Fault =
  | { status: number; retryAfter?: string; body?: string }
  | { reset: true }
  | { delayMs: number }
  | { dropOne: true }
  | { nan: true }
  | { huge: true };

export interface Logged {
  method: string;
  path: string;
  body: Record<string, unknown> | null;
  auth?: string;
  at: number;
  inFlight: number;
}

export interface FakeServer {
  url: string;
  log: Logged[];
  /** Faults for the next POSTs, one each, in order. */
  faults: Fault[];
  /** Milliseconds every POST takes (to overlap requests). */
  latencyMs: number;
  /** The most requests in flight at once. */
  peak: number;
  close(): Promise<void>;
}

export const DIM = 16;

/** The vector the server answers for `text`: a function of its characters, not normalised. */
export function vectorOf(text: string): number[] {
  const v = Array.from({ length: DIM }, (_, j) => 1 + ((j + 1) * text.length) % 7);
  for (let i = 0; i < text.length; i++) v[i % DIM] += text.charCodeAt(i) / 100;
  return v;
}

/** The score the server answers for a document: longer is better. */
export function scoreOf(query: string, document: string): number {
  return document.length / (document.length + query.length);
}

export async function startFake(info: Record<string, unknown> = {}): Promise<FakeServer> {
  const state = { log: [] as Logged[], faults: [] as Fault[], latencyMs: 0, peak: 0, inFlight: 0 };
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const body = text ? (JSON.parse(text) as Record<string, unknown>) : null;
    state.inFlight++;
    state.peak = Math.max(state.peak, state.inFlight);
    state.log.push({ method: req.method!, path: req.url!, body, auth: req.headers.authorization, at: performance.now(), inFlight: state.inFlight });
    try {
      await answer(req, res, body, req.method === 'POST' ? state.faults.shift() : undefined);
    } finally {
      state.inFlight--;
    }
  });

  async function answer(req: http.IncomingMessage, res: http.ServerResponse, body: Record<string, unknown> | null, fault: Fault | undefined) {
    if (req.method === 'GET') return get(req.url!, res);
    if (state.latencyMs) await wait(state.latencyMs);
    if (fault && 'delayMs' in fault) await wait(fault.delayMs);
    if (fault && 'status' in fault) {
      const headers = fault.retryAfter ? { 'retry-after': fault.retryAfter } : undefined;
      return res.writeHead(fault.status, headers).end(fault.body ?? 'fault');
    }
    let reply = replyFor(req.url!, body!);
    if (fault && 'dropOne' in fault) reply = dropOne(reply);
    let json = JSON.stringify(reply);
    if (fault && 'nan' in fault) json = json.replace(/\d+\.\d+/, 'NaN');
    if (fault && 'huge' in fault) json = json.replace(/\d+\.\d+/, '1e39');
    if (fault && 'reset' in fault) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(json.length) });
      res.write(json.slice(0, json.length >> 1));
      return setTimeout(() => res.socket?.destroy(), 10);
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(json);
  }

  function get(url: string, res: http.ServerResponse) {
    if (url === '/info') return res.writeHead(200).end(JSON.stringify({ model_id: 'fake/minilm', model_sha: 'abc123', max_input_length: 256, ...info }));
    if (url === '/models' || url === '/v1/models') return res.writeHead(200).end(JSON.stringify({ data: [{ id: 'fake/minilm' }] }));
    res.writeHead(404).end('not found');
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    log: state.log,
    faults: state.faults,
    get latencyMs() {
      return state.latencyMs;
    },
    set latencyMs(ms: number) {
      state.latencyMs = ms;
    },
    get peak() {
      return state.peak;
    },
    set peak(n: number) {
      state.peak = n;
    },
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** TEI's /tokenize: a token per word, and [CLS] and [SEP]. */
export function tokensOf(text: string): number {
  return text.split(/\s+/).filter(Boolean).length + 2;
}

function replyFor(path: string, body: Record<string, unknown>): unknown {
  if (path === '/embed') return (body.inputs as string[]).map(vectorOf);
  if (path === '/tokenize') {
    return (body.inputs as string[]).map((t) => Array.from({ length: tokensOf(t) }, (_, id) => ({ id, text: 'w', special: false, start: 0, stop: 0 })));
  }
  if (path === '/embeddings' || path === '/v1/embeddings') {
    // out of order, as a server may answer: the client orders by index
    const data = (body.input as string[]).map((t, index) => ({ object: 'embedding', index, embedding: vectorOf(t) }));
    return { object: 'list', model: body.model, data: data.reverse() };
  }
  if (path === '/rerank') {
    const docs = (body.texts ?? body.documents) as string[];
    const hits = docs.map((d, index) => ({ index, score: scoreOf(body.query as string, d) }));
    if (body.texts) return hits;
    return { results: hits.map(({ index, score }) => ({ index, relevance_score: score })) };
  }
  return { error: 'no such route' };
}

function dropOne(reply: unknown): unknown {
  if (Array.isArray(reply)) return reply.slice(1);
  const r = reply as { data?: unknown[]; results?: unknown[] };
  if (r.data) return { ...r, data: r.data.slice(1) };
  return { ...r, results: r.results!.slice(1) };
}

function wait(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
