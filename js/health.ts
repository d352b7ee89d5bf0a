// health() of an Embedder: its models' health in one answer, as a service's health check wants it.
import type { ModelHealth } from '../index';

const WORST = ['ok', 'degraded', 'failed'] as const;

/** An Embedder's health: the worst status of its models (and reranker), and each one's own. */
export interface EmbedderHealth extends ModelHealth {
  /** Each model's health, in the order of `info().parts`; the reranker's last, when there is one. */
  parts: ModelHealth[];
}

/**
 * The models' health together: the first model's backend, device, uptime and calls (an Embedder
 * call runs every model); the worst status; errors summed and the first model's last error that
 * is set; each latency percentile and queue figure of the slowest or busiest model.
 */
export function combineHealth(parts: ModelHealth[]): EmbedderHealth {
  const [first] = parts;
  const worst = parts.reduce((w, p) => Math.max(w, WORST.indexOf(p.status)), 0);
  const most = (pick: (h: ModelHealth) => number | null | undefined) =>
    parts.reduce<number | undefined>((m, p) => {
      const v = pick(p);
      return v == null ? m : Math.max(m ?? v, v);
    }, undefined);
  return {
    ...first,
    status: WORST[worst],
    errors: parts.reduce((sum, p) => sum + p.errors, 0),
    lastError: parts.find((p) => p.lastError)?.lastError ?? undefined,
    latency: { p50: most((h) => h.latency.p50), p95: most((h) => h.latency.p95), p99: most((h) => h.latency.p99) },
    queue: { running: most((h) => h.queue.running) ?? 0, waiting: most((h) => h.queue.waiting) ?? 0 },
    parts,
  };
}
