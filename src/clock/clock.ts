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

/** A clock that moves only when told to. */
export class ManualClock implements Clock {
  constructor(
    private wallMs = 1_700_000_000_000,
    private monoMs = 0,
  ) {}
  now(): number {
    return this.wallMs;
  }
  monotonic(): number {
    return this.monoMs;
  }
  advance(ms: number): void {
    this.wallMs += ms;
    this.monoMs += ms;
  }
}
