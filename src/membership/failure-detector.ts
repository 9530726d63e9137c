/**
 * Failure detection from heartbeats, on a monotonic clock. A member whose heartbeat
 * has not advanced (in our view) for `suspectAfterMs` is suspect; after
 * `downAfterMs` it is down, and drops out of preference lists until its heartbeat
 * moves again. Pure: the caller supplies the times.
 */
export interface DetectorTiming {
  readonly suspectAfterMs: number;
  readonly downAfterMs: number;
}

export type Liveness = 'alive' | 'suspect' | 'down';

export function liveness(lastAdvancedAtMs: number, nowMs: number, timing: DetectorTiming): Liveness {
  const silentMs = nowMs - lastAdvancedAtMs;
  if (silentMs >= timing.downAfterMs) return 'down';
  if (silentMs >= timing.suspectAfterMs) return 'suspect';
  return 'alive';
}

/** Timing that makes sense: suspicion before death, both after at least one gossip interval. */
export function validateTiming(intervalMs: number, t: DetectorTiming): void {
  if (!(intervalMs > 0)) throw new RangeError('gossip interval must be positive');
  if (!(t.suspectAfterMs >= intervalMs)) throw new RangeError('suspect-after must be at least one gossip interval');
  if (!(t.downAfterMs > t.suspectAfterMs)) throw new RangeError('down-after must be longer than suspect-after');
}
