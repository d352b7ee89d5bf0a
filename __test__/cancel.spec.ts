// Cancellation from JavaScript: a call's `signal` and `timeout` on the Embedder, a Model, the
// default model and a Reranker reject with Node's AbortError shape within one micro-batch, an
// already-aborted signal rejects before any work, and the model stays usable. (The engine's
// micro-batch check is tested in Rust with a fake backend: tests/cancel.rs.)
import * as path from 'path';
import { AbortError, embed, Embedder, init, Model, Reranker } from '../js';
import { fixtureCopy, MINILM } from './helpers';

const MANY = Array.from({ length: 20000 }, (_, i) => `const value${i} = compute(${i}, "${'x'.repeat(i % 50)}");`);

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; cause?: unknown }> {
  try {
    await p;
  } catch (e) {
    return e as Error & { code?: string; cause?: unknown };
  }
  throw new Error('the call did not reject');
}

function expectAbortError(e: Error & { code?: string; cause?: unknown }, cause: unknown) {
  expect(e).toBeInstanceOf(AbortError);
  expect(e).toBeInstanceOf(Error);
  expect(e.name).toBe('AbortError');
  expect(e.code).toBe('ABORT_ERR');
  expect(e.cause).toBe(cause);
}

describe('cancellation', () => {
  test('an Embedder call of 20,000 texts aborted after its first progress event stops within that chunk, and the next call is as a fresh model\'s', async () => {
    const embedder = new Embedder({ modelDir: MINILM, backend: 'cpu', cache: false });
    await embedder.init();
    try {
      const controller = new AbortController();
      const events: number[] = [];
      let abortedAt = -1;
      const call = embedder.embedFloat32(MANY, false, {
        signal: controller.signal,
        onProgress: (done) => {
          events.push(done);
          if (done > 0 && abortedAt < 0) {
            abortedAt = events.length;
            controller.abort('enough');
          }
        },
      });
      expectAbortError(await rejection(call), 'enough');
      // the chunk in flight stopped before its next micro-batch: no chunk finished after the abort
      expect(events.length).toBe(abortedAt);
      expect(embedder.stats()[0].texts).toBeLessThan(2 * 256 + 1);
      const texts = MANY.slice(0, 40);
      const after = await embedder.embedFloat32(texts);
      const fresh = await Model.load(MINILM, { backend: 'cpu', cache: false });
      try {
        expect(await fresh.embed(texts)).toEqual(after);
      } finally {
        await fresh.close();
      }
    } finally {
      await embedder.close();
    }
  }, 120000);

  test('timeout, an already-aborted signal, and the default model', async () => {
    const model = await Model.load(MINILM, { backend: 'cpu', cache: false });
    try {
      const timedOut = await rejection(model.embed(MANY, false, { timeout: 50 }));
      expect(timedOut).toBeInstanceOf(AbortError);
      expect((timedOut.cause as Error).name).toBe('TimeoutError');
      const before = model.stats();
      const controller = new AbortController();
      controller.abort(new Error('user left'));
      const early = await rejection(model.embed(['a'], false, { signal: controller.signal }));
      expectAbortError(early, controller.signal.reason);
      expect(model.stats().calls).toBe(before.calls); // rejected before any work
      expect((await model.embed(['still here'], false, { signal: new AbortController().signal })).length).toBe(1);
    } finally {
      await model.close();
    }
    await init(MINILM, { backend: 'cpu' });
    const controller = new AbortController();
    const call = embed(MANY, false, { signal: controller.signal });
    setTimeout(() => controller.abort('stop'), 20);
    expectAbortError(await rejection(call), 'stop');
    expect((await embed(['works'])).length).toBe(1);
  }, 120000);

  test('a Reranker call', async () => {
    const scratch: string[] = [];
    const { dir } = fixtureCopy<unknown>('rerank-bert', path.join(MINILM, 'tokenizer.json'), scratch);
    const reranker = await Reranker.load(dir);
    try {
      const docs = MANY.slice(0, 3000);
      const controller = new AbortController();
      const call = reranker.rerank('compute a value', docs, { signal: controller.signal });
      setTimeout(() => controller.abort('stop'), 20);
      expectAbortError(await rejection(call), 'stop');
      expect(reranker.stats().forwardPasses).toBeLessThan(60);
      expect((await reranker.rerank('compute', docs.slice(0, 3))).length).toBe(3);
    } finally {
      await reranker.close();
    }
  }, 120000);

  test('bad signal and timeout values are ERR_INPUT naming them', async () => {
    const model = await Model.load(MINILM, { backend: 'cpu', cache: false });
    try {
      const bad = async (options: object) => (await rejection(model.embed(['a'], false, options as never))).code;
      expect(await bad({ signal: 'soon' })).toBe('ERR_INPUT');
      for (const timeout of [0, -1, 1.5, '10']) expect(await bad({ timeout })).toBe('ERR_INPUT');
      await expect(model.embed(['a'], false, { timeout: 0 })).rejects.toThrow(/timeout must be a positive whole number of milliseconds, got 0/);
      await expect(model.embed(['a'], false, { signal: 'x' as never })).rejects.toThrow(/signal must be an AbortSignal/);
    } finally {
      await model.close();
    }
  });
});
