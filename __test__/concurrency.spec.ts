// A concurrency limit with back-pressure: maxConcurrentCalls runs at most N calls of a model at
// once (each call's `call` log event and the engine's stats().peakRunningCalls count the calls
// running in the engine), later calls
// wait in order (stats().queueSeconds), maxQueuedCalls refuses one more with ERR_BUSY at once,
// and a waiting call's signal takes it out of the queue.
import { Model } from '../js';
import { MINILM, runNode } from './helpers';

const TEXTS = Array.from({ length: 30 }, (_, i) => `function f${i}() { return ${i} * ${'x + '.repeat(i % 9)}1; }`);

async function concurrently(model: InstanceType<typeof Model>, calls: number) {
  return Promise.all(Array.from({ length: calls }, (_, i) => model.embed(TEXTS.slice(i % 10, (i % 10) + 12))));
}

describe('concurrency limit', () => {
  test('50 concurrent calls with maxConcurrentCalls 2 never run more than 2 at once, and all return the right vectors', async () => {
    const free = await Model.load(MINILM, { backend: 'cpu', cache: false });
    const running: number[] = [];
    const logger = (_level: string, event: string, fields: Record<string, unknown>) => {
      if (event === 'call') running.push(fields.running as number);
    };
    const limited = await Model.load(MINILM, { backend: 'cpu', cache: false, maxConcurrentCalls: 2, logger });
    try {
      expect(limited.info()).toMatchObject({ maxConcurrentCalls: 2 });
      const expected = await concurrently(free, 50);
      // without a limit, calls overlap on libuv's threads: the count below can fail
      expect(free.stats().peakRunningCalls).toBeGreaterThan(2);
      const got = await concurrently(limited, 50);
      expect(got).toEqual(expected);
      const stats = limited.stats();
      expect(stats.peakRunningCalls).toBe(2);
      expect(stats.calls).toBe(50);
      expect(stats.queueSeconds).toBeGreaterThan(0);
      await new Promise((resolve) => setTimeout(resolve, 50)); // the last events reach the logger
      expect(running).toHaveLength(50);
      expect(Math.max(...running)).toBe(2);
    } finally {
      await Promise.all([free.close(), limited.close()]);
    }
  }, 120000);

  test('maxQueuedCalls refuses the call past it with ERR_BUSY at once; a waiting call can be aborted', async () => {
    const model = await Model.load(MINILM, { backend: 'cpu', cache: false, maxConcurrentCalls: 1, maxQueuedCalls: 1 });
    try {
      const long = Array.from({ length: 400 }, (_, i) => TEXTS[i % TEXTS.length]);
      const first = model.embed(long);
      const second = model.embed(TEXTS);
      await expect(model.embed(TEXTS)).rejects.toMatchObject({ code: 'ERR_BUSY', message: expect.stringMatching(/1 calls are running \(maxConcurrentCalls 1\) and 1 waiting \(maxQueuedCalls 1\)/) });
      expect((await first).length).toBe(400);
      expect((await second).length).toBe(30);
      const running = model.embed(long);
      const controller = new AbortController();
      const waiting = model.embed(TEXTS, false, { signal: controller.signal });
      controller.abort('gone');
      await expect(waiting).rejects.toMatchObject({ name: 'AbortError', cause: 'gone' });
      expect((await running).length).toBe(400);
      expect(model.stats().calls).toBe(3); // the refused and the aborted calls never reached the model
    } finally {
      await model.close();
    }
  }, 120000);

  test('SEMANTIC_SEARCH_MAX_CONCURRENT, and bad values named', async () => {
    const script = `
const { Model } = require('./dist/index.js');
Model.load(process.argv[1], { backend: 'cpu', cache: false })
  .then((m) => console.log(JSON.stringify(m.info().maxConcurrentCalls)), (e) => console.log(JSON.stringify(e.code + ' ' + e.message)));`;
    const run = (value: string) => JSON.parse(runNode(script.replace('process.argv[1]', JSON.stringify(MINILM)), { env: { ...process.env, SEMANTIC_SEARCH_MAX_CONCURRENT: value } }).stdout);
    expect(run('3')).toBe(3);
    expect(run('two')).toMatch(/^ERR_ENV SEMANTIC_SEARCH_MAX_CONCURRENT is "two", expected a positive integer/);
    await expect(Model.load(MINILM, { maxConcurrentCalls: 0 })).rejects.toMatchObject({ code: 'ERR_INPUT', message: 'maxConcurrentCalls must be a positive integer' });
    await expect(Model.load(MINILM, { maxQueuedCalls: 4 })).rejects.toMatchObject({ code: 'ERR_INPUT', message: expect.stringMatching(/maxQueuedCalls needs maxConcurrentCalls/) });
  }, 120000);
});
