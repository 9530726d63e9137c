/** Time, injected so tests and simulations can control it. */
export interface Clock {
  /** wall-clock milliseconds since the epoch: for last-write-wins and clock pruning */
  now(): number;
  /** monotonic milliseconds: for deadlines and failure detection */
  monotonic(): number;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
};
