// The `logger` option: a model's events as objects, the same events `SEMANTIC_SEARCH_LOG` writes to
// stderr as lines (`semantic-search-native <level> <event> key=value …`). Silent by default.

/** An event's level, most severe first. */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

/**
 * Receives each event of the model it was given to: while it loads (the backend chosen and why,
 * the ONNX Runtime library, the graph cache, memory before and after) and for each call (`call`
 * at debug: texts, tokens, micro-batches, seconds, calls running; `oom_split` and `cpu_fallback`
 * at warn). Called on the JavaScript thread soon after the event; a logger that throws is an
 * uncaught exception, as an event listener's would be.
 */
export type Logger = (level: LogLevel, event: string, fields: Record<string, number | string | boolean>) => void;

declare module '../index' {
  interface InitOptions {
    /** Receives the model's log events (see `Logger`); every level, whatever `SEMANTIC_SEARCH_LOG` says. */
    logger?: Logger;
  }
}
