// The remote backend's client against a fault-injecting server on 127.0.0.1 (remote-server.ts):
// batching, order and the concurrency bound; retries with backoff, Retry-After, resets and
// timeouts, each timed through the server's request log; answers refused for the wrong number of
// vectors, NaN or values past float32; a 401 that never shows the key; abort mid-run; the
// reranker; bad options.
import { Embedder, Reranker } from '../js';
import type { RemoteStats } from '../js';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DIM, FakeServer, scoreOf, startFake, tokensOf, vectorOf } from './remote-server';

const KEY = 'sk-secret-key-123';

function unit(v: number[]): number[] {
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return v.map((x) => Math.fround(x / norm));
}

function close(a: Float32Array, b: number[]): boolean {
  return a.length === b.length && b.every((x, i) => Math.abs(a[i] - x) < 1e-6);
}

const TEXTS = Array.from({ length: 100 }, (_, i) => `function f${i}(x) { return x * ${i}; }`);

describe('remote embedding server', () => {
  let server: FakeServer;
  beforeEach(async () => {
    server = await startFake();
  });
  afterEach(() => server.close());

  const embedder = async (api: 'openai' | 'tei' | 'infinity', remote: Record<string, unknown> = {}, options: Record<string, unknown> = {}) => {
    const e = new Embedder({ remote: { url: server.url, api, retries: 2, ...remote }, ...options });
    await e.init();
    server.log.length = 0;
    server.peak = 0;
    return e;
  };
  const posts = () => server.log.filter((l) => l.method === 'POST');

  test.each(['openai', 'tei', 'infinity'] as const)('%s: every text in order, in requests of maxBatchTexts, at most maxConcurrent in flight across calls', async (api) => {
    const e = await embedder(api, { maxBatchTexts: 8, maxConcurrent: 3 });
    server.latencyMs = 30;
    const [a, b] = await Promise.all([e.embedFloat32(TEXTS), e.embedFloat32(TEXTS.slice(0, 40), true)]);
    expect(a.every((v, i) => close(v, unit(vectorOf(TEXTS[i]))))).toBe(true);
    expect(b.every((v, i) => close(v, unit(vectorOf(TEXTS[i]))))).toBe(true);
    expect(posts()).toHaveLength(13 + 5);
    expect(Math.max(...posts().map((p) => ((p.body!.inputs ?? p.body!.input) as string[]).length))).toBe(8);
    expect(server.peak).toBe(3);
    const info = e.info();
    expect(info).toMatchObject({ backend: 'remote', device: server.url, api, model: 'fake/minilm', dim: DIM, maxBatchTexts: 8, maxConcurrent: 3 });
    if (api === 'tei') expect(info).toMatchObject({ revision: 'abc123', maxLength: 256 });
    if (api !== 'tei') expect(posts()[0].body!.model).toBe('fake/minilm');
    // init's two requests (the server's model list or /info, and one text for the vectors' length) count too
    expect(e.stats()[0]).toMatchObject({ calls: 2, texts: 140, requests: 2 + 18, retries: 0, failedRequests: 0 });
    expect(e.isGpu()).toBe(false);
  });

  test("TEI's max_client_batch_size sets the requests' size; queryPrefix / documentPrefix are applied on the client", async () => {
    await server.close();
    server = await startFake({ max_client_batch_size: 5 });
    const e = await embedder('tei', {}, { queryPrefix: 'query: ', documentPrefix: 'passage: ' });
    expect(e.info()).toMatchObject({ maxBatchTexts: 5, queryPrefix: 'query: ' });
    const [q] = await e.embedFloat32(['find the parser'], true);
    expect(posts()[0].body!.inputs).toEqual(['query: find the parser']);
    expect(close(q, unit(vectorOf('query: find the parser')))).toBe(true);
    await e.embedFloat32(TEXTS.slice(0, 12));
    expect(posts().slice(1).map((p) => (p.body!.inputs as string[]).length)).toEqual([5, 5, 2]);
    expect((posts()[1].body!.inputs as string[])[0]).toBe(`passage: ${TEXTS[0]}`);
  });

  test('the vector cache works with a remote model: a re-index sends only the changed texts; the identity is the server, model and revision', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssn-remote-cache-'));
    try {
      const file = path.join(dir, 'vectors.sqlite');
      const e = await embedder('tei', { maxBatchTexts: 16 }, { vectorCache: file, dimensions: 8, queryPrefix: 'query: ' });
      expect(e.info()).toMatchObject({ vectorCache: file, dim: 8 });
      const first = await e.embedFloat32(TEXTS);
      expect(posts()).toHaveLength(7);
      const changed = TEXTS.map((t, i) => (i % 10 === 0 ? `${t} // changed` : t));
      server.log.length = 0;
      const again = await e.embedFloat32(changed);
      expect(posts().flatMap((p) => p.body!.inputs as string[])).toEqual(changed.filter((_, i) => i % 10 === 0));
      again.forEach((v, i) => {
        if (i % 10 !== 0) expect(Array.from(v)).toEqual(Array.from(first[i]));
        else expect(close(v, unit(vectorOf(changed[i]).slice(0, 8)))).toBe(true);
      });
      expect(e.stats()[0]).toMatchObject({ cacheHits: 90, cacheMisses: 110, cacheBytes: expect.any(Number) });
      // queries have their own keys (another prompt); another server's model is another identity
      server.log.length = 0;
      await e.embedFloat32(TEXTS.slice(0, 3), true);
      expect(posts()).toHaveLength(1);
      const other = await startFake({ model_sha: 'def456' });
      try {
        const o = new Embedder({ remote: { url: other.url, api: 'tei' }, vectorCache: file });
        await o.init();
        await o.embedFloat32(TEXTS.slice(0, 3));
        expect(o.stats()[0]).toMatchObject({ cacheHits: 0, cacheMisses: 3 });
      } finally {
        await other.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("countTokensAsync asks TEI's /tokenize with the call's prompt; the other APIs have none", async () => {
    const e = await embedder('tei', {}, { queryPrefix: 'query: ' });
    const counts = await e.countTokensAsync(['find the parser', 'a'], true);
    expect(Array.from(counts)).toEqual([tokensOf('query: find the parser'), tokensOf('query: a')]);
    expect(posts()[0]).toMatchObject({ path: '/tokenize', body: { inputs: ['query: find the parser', 'query: a'], add_special_tokens: true } });
    const o = await embedder('openai');
    await expect(o.countTokensAsync(['x'])).rejects.toMatchObject({ code: 'ERR_INPUT', message: expect.stringMatching(/'openai' has no tokenize endpoint/) });
  });

  test('429 with Retry-After waits what the server asks, then succeeds', async () => {
    const e = await embedder('openai');
    server.faults.push({ status: 429, retryAfter: '1' });
    const [v] = await e.embedFloat32(['x']);
    expect(close(v, unit(vectorOf('x')))).toBe(true);
    const [first, second] = posts();
    expect(second.at - first.at).toBeGreaterThanOrEqual(990);
    expect(second.at - first.at).toBeLessThan(2000);
    expect(e.stats()[0]).toMatchObject({ requests: 2 + 2, retries: 1 });
  });

  test('503 and a connection reset mid-response are retried with a backoff of 100 to 200 ms, then 200 to 400 ms', async () => {
    const e = await embedder('tei');
    server.faults.push({ status: 503 }, { reset: true });
    const [v] = await e.embedFloat32(['y']);
    expect(close(v, unit(vectorOf('y')))).toBe(true);
    const at = posts().map((p) => p.at);
    expect(at).toHaveLength(3);
    expect(at[1] - at[0]).toBeGreaterThanOrEqual(95);
    expect(at[1] - at[0]).toBeLessThan(500);
    expect(at[2] - at[1]).toBeGreaterThanOrEqual(195);
    expect(at[2] - at[1]).toBeLessThan(800);
  });

  test('retries stop after `retries`, with the last reason; a 4xx other than 429 is not retried', async () => {
    const e = await embedder('tei', { retries: 1 });
    server.faults.push({ status: 503 }, { status: 502, body: 'bad gateway' });
    await expect(e.embedFloat32(['z'])).rejects.toMatchObject({ code: 'ERR_REMOTE', message: expect.stringMatching(/POST http:\/\/127\.0\.0\.1:\d+\/embed failed after 2 attempts: 502 Bad Gateway: bad gateway/) });
    expect(posts()).toHaveLength(2);
    server.log.length = 0;
    server.faults.push({ status: 400, body: 'inputs must not be empty' });
    await expect(e.embedFloat32(['z'])).rejects.toMatchObject({ code: 'ERR_REMOTE', message: expect.stringMatching(/failed: 400 Bad Request: inputs must not be empty$/) });
    expect(posts()).toHaveLength(1);
    expect(e.health()).toMatchObject({ status: 'failed', backend: 'remote', errors: 2 });
    await e.embedFloat32(['z']);
    expect(e.health()).toMatchObject({ status: 'ok', calls: 3 });
  });

  test("a request that fails stops its call's other requests", async () => {
    const e = await embedder('tei', { maxBatchTexts: 4, maxConcurrent: 2 });
    server.latencyMs = 20;
    server.faults.push({ status: 422, body: 'input too long' });
    await expect(e.embedFloat32(TEXTS)).rejects.toMatchObject({ code: 'ERR_REMOTE', message: expect.stringMatching(/422 Unprocessable Entity: input too long/) });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(posts().length).toBeLessThanOrEqual(3); // the failed one and those already in flight, of 25
  });

  test('a slow answer past the timeout is abandoned and retried', async () => {
    const e = await embedder('openai', { timeout: 300, retries: 1 });
    server.faults.push({ delayMs: 1000 }, { delayMs: 1000 });
    const started = performance.now();
    await expect(e.embedFloat32(['slow'])).rejects.toMatchObject({ code: 'ERR_REMOTE', message: expect.stringMatching(/after 2 attempts: no answer within 300 ms \(timeout\)/) });
    expect(performance.now() - started).toBeLessThan(1000);
    server.faults.push({ delayMs: 1000 });
    await expect(e.embedFloat32(['slow'])).resolves.toHaveLength(1);
  });

  test('one vector too few, NaN, and values past float32 are refused, never a short or wrong result', async () => {
    const e = await embedder('infinity');
    server.faults.push({ dropOne: true });
    await expect(e.embedFloat32(['a', 'b', 'c'])).rejects.toMatchObject({ code: 'ERR_REMOTE', message: expect.stringMatching(/answered 2 vectors for 3 texts$/) });
    server.faults.push({ nan: true });
    await expect(e.embedFloat32(['a'])).rejects.toMatchObject({ code: 'ERR_REMOTE', message: expect.stringMatching(/the reply is not JSON/) });
    server.faults.push({ huge: true });
    await expect(e.embedFloat32(['a'])).rejects.toMatchObject({ code: 'ERR_REMOTE', message: expect.stringMatching(/value 1e\+39 at \[0\]\[\d+\], which is not a finite float32/) });
    expect(posts()).toHaveLength(3); // none of them retried
  });

  test('a wrong key: a 401, not retried, the key in no message, stack or property, even when the server quotes it', async () => {
    const e = await embedder('openai', { apiKey: KEY });
    expect(posts()).toHaveLength(0);
    server.faults.push({ status: 401, body: `invalid api key ${KEY}` });
    const error = (await e.embedFloat32(['x']).then(() => new Error('resolved'), (err: Error) => err)) as Error;
    expect(error).toMatchObject({ code: 'ERR_REMOTE', message: expect.stringMatching(/401 Unauthorized: invalid api key \*\*\* \(check apiKey\)/) });
    const everything = [error.message, error.stack, JSON.stringify(error), JSON.stringify(Object.getOwnPropertyDescriptors(error)), String(e.health().lastError), JSON.stringify(e.info()), JSON.stringify(e.stats())].join('\n');
    expect(everything).not.toContain(KEY);
    expect(posts()).toHaveLength(1);
    expect(server.log[0].auth).toBe(`Bearer ${KEY}`);
  });

  test('an abort mid-run rejects with an AbortError and sends no more requests', async () => {
    const e = await embedder('tei', { maxBatchTexts: 4, maxConcurrent: 2 });
    server.latencyMs = 50;
    const controller = new AbortController();
    const run = e.embedFloat32(TEXTS, false, { signal: controller.signal });
    setTimeout(() => controller.abort('stop'), 120);
    await expect(run).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR', cause: 'stop' });
    // the client's own count of requests sent (init's two included): none after the abort; the
    // server may log a request sent just before it a little later
    const requests = () => (e.stats()[0] as RemoteStats).requests;
    const sent = requests();
    expect(sent - 2).toBeLessThan(10);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(requests()).toBe(sent);
    expect(posts().length).toBeLessThanOrEqual(sent - 2);
    expect(e.health()).toMatchObject({ status: 'ok', errors: 0 });
  });

  test('bad remote options are ERR_INPUT naming them; a server that is not there is ERR_REMOTE at init', async () => {
    for (const [remote, message] of [
      [{ url: 'localhost:8080' }, /remote\.url must be an http\(s\) URL/],
      [{ url: server.url, api: 'cohere' }, /remote\.api must be 'openai', 'tei' or 'infinity'/],
      [{ url: server.url, retries: -1 }, /remote\.retries must be a whole number ≥ 0/],
      [{ url: server.url, maxConcurrent: 0 }, /remote\.maxConcurrent must be a whole number ≥ 1/],
      [{ url: server.url, timeout: 1.5 }, /remote\.timeout must be a whole number ≥ 1/],
    ] as const) {
      await expect(new Embedder({ remote: remote as never }).init()).rejects.toMatchObject({ code: 'ERR_INPUT', message: expect.stringMatching(message) });
    }
    const gone = await startFake();
    await gone.close();
    await expect(new Embedder({ remote: { url: gone.url, retries: 0 } }).init()).rejects.toMatchObject({ code: 'ERR_REMOTE', message: expect.stringMatching(/connection failed \(ECONNREFUSED\)/) });
    await expect(new Embedder({ remote: { url: server.url }, modelDir: '/x' }).init()).rejects.toMatchObject({ code: 'ERR_INPUT' });
    const e = await embedder('tei');
    expect(() => e.countTokens(['x'])).toThrow(/countTokens needs the model's tokenizer/);
    await expect(e.embedFloat32(['x'], false, { task: 'retrieval.query' })).rejects.toMatchObject({ code: 'ERR_INPUT' });
  });
});

describe('remote reranker', () => {
  let server: FakeServer;
  beforeAll(async () => {
    server = await startFake();
  });
  afterAll(() => server.close());
  const docs = ['short', 'a longer document', 'the longest document of all three'];

  test.each(['tei', 'infinity'] as const)('%s: hits best first, topK, the same result shape as a local reranker', async (api) => {
    const reranker = await Reranker.load({ remote: { url: server.url, api, maxBatchTexts: 2 } });
    const hits = await reranker.rerank('query', docs);
    expect(hits.map((h) => h.index)).toEqual([2, 1, 0]);
    expect(hits[0].score).toBeCloseTo(scoreOf('query', docs[2]), 12);
    expect(await reranker.rerank('query', docs, { topK: 1 })).toEqual([hits[0]]);
    expect(reranker.info()).toMatchObject({ backend: 'remote', api, model: 'fake/minilm' });
    expect(reranker.modelDir).toBe(server.url);
    server.faults.push({ dropOne: true });
    await expect(reranker.rerank('query', docs)).rejects.toMatchObject({ code: 'ERR_REMOTE', message: expect.stringMatching(/1 scores for 2 documents/) });
    expect(reranker.health().status).toBe('failed');
  });

  test("'openai' has no rerank endpoint", async () => {
    await expect(Reranker.load({ remote: { url: server.url, api: 'openai' } })).rejects.toMatchObject({ code: 'ERR_INPUT', message: expect.stringMatching(/no rerank endpoint/) });
  });
});
