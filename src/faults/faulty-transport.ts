import { sleep, systemClock, type Clock } from '../clock/clock.js';
import { TransportError } from '../errors.js';
import type { Endpoint, Incoming, ServiceSpec, ServiceSubscription, SubscribeOptions, Subscription, Transport } from '../transport/transport.js';
import { NO_FAULTS, partitioned, type FaultRules } from './rules.js';

/**
 * A Transport that applies injected faults to this node's requests to other nodes
 * (subjects `<prefix>.node.<id>.…`). A dropped request is never delivered: the caller
 * sees its timeout, as on a real partition. Client subjects are left alone.
 */
export class FaultyTransport implements Transport {
  rules: FaultRules = NO_FAULTS;
  private readonly nodePrefix: string;

  constructor(
    private readonly inner: Transport,
    private readonly self: string,
    prefix: string,
    private readonly random: () => number = Math.random,
    private readonly clock: Clock = systemClock,
  ) {
    this.nodePrefix = `${prefix}.node.`;
  }

  get maxPayload(): number {
    return this.inner.maxPayload;
  }

  private target(subject: string): string | null {
    if (!subject.startsWith(this.nodePrefix)) return null;
    const end = subject.indexOf('.', this.nodePrefix.length);
    return end < 0 ? null : subject.slice(this.nodePrefix.length, end);
  }

  async request(subject: string, data: Uint8Array | string, timeoutMs: number): Promise<Uint8Array> {
    const to = this.target(subject);
    if (to === null || to === this.self) return this.inner.request(subject, data, timeoutMs);
    const { delayMs, drop } = this.rules;
    if (partitioned(this.rules, this.self, to) || (drop > 0 && this.random() < drop)) {
      await sleep(this.clock, timeoutMs);
      throw new TransportError(`request on ${subject} timed out (fault injected)`, 'timeout');
    }
    if (delayMs > 0) {
      if (delayMs >= timeoutMs) {
        await sleep(this.clock, timeoutMs);
        throw new TransportError(`request on ${subject} timed out (fault injected delay)`, 'timeout');
      }
      await sleep(this.clock, delayMs);
      return this.inner.request(subject, data, timeoutMs - delayMs);
    }
    return this.inner.request(subject, data, timeoutMs);
  }

  publish(subject: string, data: Uint8Array | string): void {
    const to = this.target(subject);
    if (to !== null && to !== this.self && partitioned(this.rules, this.self, to)) return;
    this.inner.publish(subject, data);
  }

  subscribe(subject: string, handler: (msg: Incoming) => void, options?: SubscribeOptions): Subscription {
    return this.inner.subscribe(subject, handler, options);
  }

  serve(spec: ServiceSpec, endpoints: readonly Endpoint[]): ServiceSubscription {
    return this.inner.serve(spec, endpoints);
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
