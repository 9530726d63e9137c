/**
 * Time, injected so tests and simulations can control it: the readings, and the
 * timers (the same shape as XState's clock, so actors take it as `{ clock }`).
 */
export interface Clock {
  /** wall-clock milliseconds since the epoch: for last-write-wins and clock pruning */
  now(): number;
  /** monotonic milliseconds: for deadlines and failure detection */
  monotonic(): number;
  setTimeout(fn: (...args: unknown[]) => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id as NodeJS.Timeout),
};

/** Resolve after `ms` on the given clock. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(() => resolve(), ms));
}
