import { histogramDelta, histogramSum, quantileMs, type LatencyHistogram } from '../metrics/quantile.js';

/** The client ops the console charts. */
export const CHARTED_OPS = ['get', 'put', 'delete'] as const;

/** One point of the console's charts: the cluster's client ops/s and p99.9 latency per op since the previous reading. */
export interface RatePoint {
  /** wall-clock ms of the reading */
  readonly t: number;
  readonly ops: Record<string, { perSecond: number; p999Ms: number | null; p50Ms: number | null }>;
}

/** Each node's latency histograms, as one status reading carries them (null: the node did not answer). */
export type Reading = ReadonlyMap<string, Record<string, LatencyHistogram> | null>;

/**
 * Turns successive readings of the nodes' cumulative histograms into rates: pure, the
 * caller supplies readings and their times. A node missing from a reading is skipped
 * then and picked up again from its next one.
 */
export class RateTracker {
  private last = new Map<string, Record<string, LatencyHistogram>>();
  private lastAt: number | null = null;

  next(reading: Reading, atMs: number): RatePoint | null {
    const deltas: Record<string, LatencyHistogram[]> = Object.fromEntries(CHARTED_OPS.map((op) => [op, []]));
    for (const [node, histograms] of reading) {
      if (histograms === null) continue;
      const before = this.last.get(node);
      for (const op of CHARTED_OPS) {
        const h = histograms[op];
        if (h !== undefined && before !== undefined) deltas[op].push(histogramDelta(before[op], h));
      }
      this.last.set(node, histograms);
    }
    const seconds = this.lastAt === null ? 0 : (atMs - this.lastAt) / 1000;
    this.lastAt = atMs;
    if (seconds <= 0) return null;
    const ops: RatePoint['ops'] = {};
    for (const op of CHARTED_OPS) {
      const sum = histogramSum(deltas[op]);
      ops[op] = { perSecond: sum.total / seconds, p999Ms: quantileMs(sum, 0.999), p50Ms: quantileMs(sum, 0.5) };
    }
    return { t: atMs, ops };
  }
}
