/**
 * The history of a workload under a nemesis, and the checkers read from it. Pure, so
 * that test/unit/history.test.ts can show each checker failing on a history that
 * breaks its property.
 */

/** One request: when it was sent and answered (ms, the same clock), and whether it was acknowledged. */
export interface Op {
  readonly key: string;
  readonly start: number;
  readonly end: number;
  readonly ok: boolean;
  /** the write quorum asked for */
  readonly w?: number;
  /** why it was not acknowledged */
  readonly error?: string;
}

/** A span of the run: [from, to). */
export interface Window {
  readonly from: number;
  readonly to: number;
}

export interface WindowFigures {
  attempted: number;
  acknowledged: number;
  /** acknowledged ÷ attempted, of the requests sent inside the window; 0 when none was sent */
  availability: number;
  /** p99.9 of the acknowledged ones' latency, ms; Infinity when none */
  p999Ms: number;
  /** the longest time inside the window with no acknowledgement, ms, its edges included */
  longestStretchMs: number;
  /** acknowledgements per second, by when they arrived */
  ackRate: number;
}

/** The q-quantile (0..1) of `values`, nearest rank; Infinity for none. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.POSITIVE_INFINITY;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function figures(ops: readonly Op[], w: Window): WindowFigures {
  const sent = ops.filter((o) => o.start >= w.from && o.start < w.to);
  const acked = sent.filter((o) => o.ok);
  const arrivals = ops
    .filter((o) => o.ok && o.end >= w.from && o.end < w.to)
    .map((o) => o.end)
    .sort((a, b) => a - b);
  let longest = 0;
  let last = w.from;
  for (const t of arrivals) {
    longest = Math.max(longest, t - last);
    last = t;
  }
  longest = Math.max(longest, w.to - last);
  return {
    attempted: sent.length,
    acknowledged: acked.length,
    availability: sent.length ? acked.length / sent.length : 0,
    p999Ms: quantile(
      acked.map((o) => o.end - o.start),
      0.999,
    ),
    longestStretchMs: longest,
    ackRate: (arrivals.length * 1000) / Math.max(1, w.to - w.from),
  };
}

/** The acknowledged keys that `holds` says are missing: the lost writes. */
export function missing(ops: readonly Op[], holds: ReadonlySet<string>): string[] {
  return ops.filter((o) => o.ok && !holds.has(o.key)).map((o) => o.key);
}

/** Per-second acknowledgements from `from`, for the timeline a failing run prints. */
export function timeline(ops: readonly Op[], from: number, to: number): number[] {
  const seconds = Array.from({ length: Math.ceil((to - from) / 1000) }, () => 0);
  for (const o of ops) if (o.ok && o.end >= from && o.end < to) seconds[Math.floor((o.end - from) / 1000)]!++;
  return seconds;
}

/** The commonest reasons requests failed, for the figures a run prints. */
export function failures(ops: readonly Op[], w: Window, top = 3): string {
  const counts = new Map<string, number>();
  for (const o of ops) if (!o.ok && o.start >= w.from && o.start < w.to) counts.set(o.error ?? '?', (counts.get(o.error ?? '?') ?? 0) + 1);
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([e, n]) => `${n}× ${e}`)
    .join('; ');
}
