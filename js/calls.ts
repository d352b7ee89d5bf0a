// The addon's calls as JavaScript takes them: each embed and rerank of a model goes through the
// model's gate (maxConcurrentCalls, maxQueuedCalls; see info()) and takes { signal, timeout }.
import type * as Native from '../index';
import { Cancellable, callSignal, cancellable, useTokens } from './cancel';
import { Gate } from './gate';

type Info = { maxConcurrentCalls?: number; maxQueuedCalls?: number };

// a model's gate, made on its first call from its info(); null: no limit
const gates = new WeakMap<object, Gate | null>();

function gateOf(model: object, info: () => Info): Gate | null {
  let gate = gates.get(model);
  if (gate === undefined) {
    const { maxConcurrentCalls, maxQueuedCalls } = info();
    gate = maxConcurrentCalls ? new Gate(maxConcurrentCalls, maxQueuedCalls ?? Infinity) : null;
    gates.set(model, gate);
  }
  return gate;
}

/** `call` with its options' signal and timeout taken out, through `model`'s gate. */
function through<O extends Cancellable, T>(
  model: object,
  info: () => Info,
  options: O | undefined,
  call: (options: Omit<O, 'signal' | 'timeout'> | undefined, token?: Native.CancelToken) => Promise<T>,
): Promise<T> {
  try {
    const { signal, timeout, ...rest } = options ?? ({} as O);
    const joined = callSignal({ signal, timeout });
    const run = () => cancellable(joined, (token) => call(options ? rest : undefined, token));
    const gate = gateOf(model, info);
    if (joined?.aborted || !gate) return run();
    return gate.run(joined, run);
  } catch (e) {
    return Promise.reject(e);
  }
}

function withQueue<S extends { queueSeconds: number }>(model: object, stats: S): S {
  stats.queueSeconds = gates.get(model)?.queueSeconds ?? 0;
  return stats;
}

function withWaiting<H extends { queue: { waiting: number } }>(model: object, health: H): H {
  health.queue.waiting = gates.get(model)?.waitingCalls ?? 0;
  return health;
}

// The addon's own functions, kept on the object they came from: a process that loads this module
// twice (a test runner's module registries over one loaded addon) wraps them, not its own wrappers.
const ORIGINAL = Symbol.for('semantic-search-native.original');

function original<T extends object, K extends keyof T>(holder: T, key: K): T[K] {
  const kept = ((holder as Record<symbol, Partial<T>>)[ORIGINAL] ??= {});
  return (kept[key] ??= holder[key]) as T[K];
}

/** Wraps the addon's `Model`, `RerankerModel` and default-model calls, when it loads. */
export function wrapCalls(native: typeof Native): void {
  useTokens(native.CancelToken);
  const { Model, RerankerModel } = native;
  const embed = original(Model.prototype, 'embed');
  Model.prototype.embed = function (this: Native.Model, texts, isQuery, options) {
    return through(this, () => this.info(), options, (call, token) => embed.call(this, texts, isQuery, call, token));
  };
  const modelStats = original(Model.prototype, 'stats');
  Model.prototype.stats = function (this: Native.Model) {
    return withQueue(this, modelStats.call(this));
  };
  const modelHealth = original(Model.prototype, 'health');
  Model.prototype.health = function (this: Native.Model) {
    return withWaiting(this, modelHealth.call(this));
  };
  const rerankerHealth = original(RerankerModel.prototype, 'health');
  RerankerModel.prototype.health = function (this: Native.RerankerModel) {
    return withWaiting(this, rerankerHealth.call(this));
  };
  const rerank = original(RerankerModel.prototype, 'rerank');
  RerankerModel.prototype.rerank = function (this: Native.RerankerModel, query, documents, options) {
    return through(this, () => this.info(), options, (call, token) => rerank.call(this, query, documents, call, token));
  };
  const rerankerStats = original(RerankerModel.prototype, 'stats');
  RerankerModel.prototype.stats = function (this: Native.RerankerModel) {
    return withQueue(this, rerankerStats.call(this));
  };
  // the default model: one gate per init()
  const slot = { model: {} };
  const [embedDefault, init, stats, health] = [original(native, 'embed'), original(native, 'init'), original(native, 'stats'), original(native, 'health')];
  const { info } = native;
  const patched = native as { embed: typeof embedDefault; init: typeof init; stats: typeof stats; health: typeof health };
  patched.embed = (texts, isQuery, options) =>
    through(slot.model, info, options, (call, token) => embedDefault(texts, isQuery, call, token));
  patched.init = (...args) =>
    init(...args).then((loaded) => {
      slot.model = {};
      return loaded;
    });
  patched.stats = () => withQueue(slot.model, stats());
  patched.health = () => withWaiting(slot.model, health());
}
