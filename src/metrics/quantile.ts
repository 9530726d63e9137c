/**
 * Latency from cumulative histograms, as Prometheus's histogram_quantile works it
 * out: pure, so the console's charts and tests share one definition.
 */

/** Upper bounds (ms) of the latency buckets every node keeps; +Inf is implied after the last. */
export const LATENCY_BOUNDS_MS = [0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 5000, 10_000, 30_000, 60_000] as const;

/** One op's latency histogram: cumulative counts per bound in LATENCY_BOUNDS_MS, and the total. */
export interface LatencyHistogram {
  /** cumulative: counts[i] requests took at most LATENCY_BOUNDS_MS[i] */
  readonly counts: readonly number[];
  readonly total: number;
}

/**
 * The q-quantile (0 < q ≤ 1) of a histogram, interpolating linearly inside the bucket
 * it falls in; null with no requests. One that falls past the last bound is reported
 * at the last bound (the histogram cannot say more).
 */
export function quantileMs(h: LatencyHistogram, q: number): number | null {
  if (!(q > 0 && q <= 1)) throw new Error('q must be in (0, 1]');
  if (h.total <= 0) return null;
  const rank = q * h.total;
  for (let i = 0; i < LATENCY_BOUNDS_MS.length; i++) {
    const count = h.counts[i] ?? 0;
    if (count >= rank) {
      const below = i === 0 ? 0 : (h.counts[i - 1] ?? 0);
      const lower = i === 0 ? 0 : LATENCY_BOUNDS_MS[i - 1];
      const inBucket = count - below;
      return inBucket <= 0 ? lower : lower + ((LATENCY_BOUNDS_MS[i] - lower) * (rank - below)) / inBucket;
    }
  }
  return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1];
}

/** What happened between two readings of the same counters: b − a, bucket by bucket. */
export function histogramDelta(a: LatencyHistogram | undefined, b: LatencyHistogram): LatencyHistogram {
  if (a === undefined || a.total > b.total) return b; // first reading, or the node restarted
  return { counts: b.counts.map((c, i) => Math.max(0, c - (a.counts[i] ?? 0))), total: b.total - a.total };
}

/** Several nodes' histograms as one. */
export function histogramSum(hs: readonly LatencyHistogram[]): LatencyHistogram {
  const counts = LATENCY_BOUNDS_MS.map((_, i) => hs.reduce((s, h) => s + (h.counts[i] ?? 0), 0));
  return { counts, total: hs.reduce((s, h) => s + h.total, 0) };
}
