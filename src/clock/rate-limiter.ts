import { sleep, type Clock } from './clock.js';

/**
 * A token bucket: `perSecond` tokens a second, up to one second's worth saved up.
 * take(n) waits until n tokens are there (a request larger than the bucket waits
 * for the whole second it needs), so a background job never exceeds its rate.
 */
export class RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    private readonly perSecond: number,
    private readonly clock: Clock,
  ) {
    this.tokens = perSecond;
    this.last = clock.monotonic();
  }

  private refill(): void {
    const now = this.clock.monotonic();
    this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.last) * this.perSecond) / 1000);
    this.last = now;
  }

  /** Wait for `n` tokens; resolves false (taking nothing) if `signal` aborts first. */
  async take(n: number, signal?: AbortSignal): Promise<boolean> {
    this.refill();
    while (this.tokens < Math.min(n, this.perSecond)) {
      if (signal?.aborted) return false;
      await sleep(this.clock, Math.max(1, Math.ceil(((Math.min(n, this.perSecond) - this.tokens) * 1000) / this.perSecond)));
      this.refill();
    }
    this.tokens -= n;
    return !signal?.aborted;
  }
}
