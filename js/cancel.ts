// A call's `signal` and `timeout`, taken as Node's own APIs take them: an aborted call rejects with
// an `AbortError` (`name: 'AbortError'`, `code: 'ABORT_ERR'`, `cause`: the signal's reason; a
// `timeout` gives a `TimeoutError` reason) within one micro-batch of the abort, and the model
// stays usable. The addon stops at its next micro-batch once the call's `CancelToken` is cancelled.
import type * as Native from '../index';
import { CodedError } from './errors';

/** What every call that can be stopped accepts. */
export interface Cancellable {
  /** Aborting it stops the call before its next micro-batch; the call rejects with an `AbortError`. */
  signal?: AbortSignal;
  /** Milliseconds before the call is aborted (an `AbortError` whose `cause` is a `TimeoutError`). */
  timeout?: number;
}

declare module '../index' {
  interface EmbedOptions extends Cancellable {}
  interface RerankOptions extends Cancellable {}
}

// the addon's token class, set by wrapCalls (calls.ts) when the addon loads
let Token: typeof Native.CancelToken | undefined;

export function useTokens(token: typeof Native.CancelToken): void {
  Token = token;
}

/** The error an aborted call rejects with, as Node's own `AbortError`. */
export class AbortError extends Error {
  readonly code = 'ABORT_ERR';
  /** The signal's reason (a `TimeoutError` for `timeout`). */
  readonly cause: unknown;
  constructor(cause: unknown) {
    super('The operation was aborted');
    this.name = 'AbortError';
    this.cause = cause;
  }
}

/** The call's signal joined with its timeout; undefined when it has neither. */
export function callSignal(options: Cancellable | undefined): AbortSignal | undefined {
  const { signal, timeout } = options ?? {};
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new CodedError('ERR_INPUT', `signal must be an AbortSignal, got ${typeof signal}`);
  }
  if (timeout !== undefined && !(Number.isInteger(timeout) && timeout > 0)) {
    throw new CodedError('ERR_INPUT', `timeout must be a positive whole number of milliseconds, got ${String(timeout)}`);
  }
  const timer = timeout === undefined ? undefined : AbortSignal.timeout(timeout);
  return signal && timer ? AbortSignal.any([signal, timer]) : signal ?? timer;
}

/** Runs `call` with a token that `signal` cancels; rejects at once, with no work, when it already fired. */
export async function cancellable<T>(
  signal: AbortSignal | undefined,
  call: (token?: Native.CancelToken) => Promise<T>,
): Promise<T> {
  if (!signal) return call(undefined);
  if (signal.aborted) throw new AbortError(signal.reason);
  const token = new Token!();
  const abort = () => token.cancel();
  signal.addEventListener('abort', abort, { once: true });
  try {
    return await call(token);
  } catch (e) {
    throw (e as { code?: string }).code === 'ABORT_ERR' ? new AbortError(signal.reason) : e;
  } finally {
    signal.removeEventListener('abort', abort);
  }
}
