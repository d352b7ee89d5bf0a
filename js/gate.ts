// maxConcurrentCalls and maxQueuedCalls: a model runs at most N calls at once, later calls wait in
// order, and past maxQueuedCalls waiting a call is refused at once with ERR_BUSY (what a server
// answers with 429). A waiting call's signal takes it out of the queue.
import { AbortError } from './cancel';
import { CodedError } from './errors';

export class Gate {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  /** Seconds calls spent waiting, summed. */
  queueSeconds = 0;

  /** Calls waiting now. */
  get waitingCalls(): number {
    return this.waiting.length;
  }

  constructor(
    private readonly max: number,
    private readonly maxQueued: number,
  ) {}

  async run<T>(signal: AbortSignal | undefined, call: () => Promise<T>): Promise<T> {
    if (this.running < this.max) this.running++;
    else await this.wait(signal);
    try {
      return await call();
    } finally {
      this.release();
    }
  }

  /** Resolves when a running call hands this one its place. */
  private wait(signal: AbortSignal | undefined): Promise<void> {
    if (this.waiting.length >= this.maxQueued) {
      const why = `${this.running} calls are running (maxConcurrentCalls ${this.max}) and ${this.waiting.length} waiting (maxQueuedCalls ${this.maxQueued}): try again later`;
      return Promise.reject(new CodedError('ERR_BUSY', why));
    }
    const started = performance.now();
    const waited = () => (this.queueSeconds += (performance.now() - started) / 1000);
    return new Promise((resolve, reject) => {
      const abort = () => {
        this.waiting.splice(this.waiting.indexOf(turn), 1);
        waited();
        reject(new AbortError(signal!.reason));
      };
      const turn = () => {
        signal?.removeEventListener('abort', abort);
        waited();
        resolve();
      };
      signal?.addEventListener('abort', abort, { once: true });
      this.waiting.push(turn);
    });
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }
}
