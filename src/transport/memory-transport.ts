import { systemClock, type Clock } from '../clock/clock.js';
import { TransportError } from '../errors.js';
import type { Endpoint, Incoming, ServiceSpec, ServiceSubscription, SubscribeOptions, Subscription, Transport } from './transport.js';

interface Sub {
  readonly pattern: string[];
  readonly queue?: string;
  readonly handler: (msg: Incoming) => void;
}

function matches(pattern: string[], subject: string[]): boolean {
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] === '>') return subject.length > i;
    if (i >= subject.length) return false;
    if (pattern[i] !== '*' && pattern[i] !== subject[i]) return false;
  }
  return pattern.length === subject.length;
}

const encoder = new TextEncoder();
const bytes = (d: Uint8Array | string): Uint8Array => (typeof d === 'string' ? encoder.encode(d) : d);

/**
 * An in-memory message bus with NATS subject semantics (wildcards, queue groups,
 * no-responders). Deliveries are asynchronous, as on a real network. For unit
 * tests and simulation only.
 */
export class MemoryNetwork {
  private readonly subs = new Set<Sub>();
  private rotation = 0;

  /** `clock` runs request timeouts (a simulated one makes a whole cluster deterministic). */
  constructor(readonly clock: Clock = systemClock) {}

  transport(maxPayload = 1024 * 1024): Transport {
    return new MemoryTransport(this, maxPayload);
  }

  add(sub: Sub): Subscription {
    this.subs.add(sub);
    return { unsubscribe: () => this.subs.delete(sub) };
  }

  /** Deliver to every plain subscriber and to one member of each queue group; returns the count. */
  deliver(subject: string, data: Uint8Array, respond: (d: Uint8Array | string) => void): number {
    const parts = subject.split('.');
    const plain: Sub[] = [];
    const groups = new Map<string, Sub[]>();
    for (const s of this.subs) {
      if (!matches(s.pattern, parts)) continue;
      if (s.queue === undefined) plain.push(s);
      else groups.set(s.queue, [...(groups.get(s.queue) ?? []), s]);
    }
    const targets = [...plain];
    for (const members of groups.values()) targets.push(members[this.rotation++ % members.length]);
    for (const t of targets) queueMicrotask(() => t.handler({ subject, data, respond }));
    return targets.length;
  }
}

class MemoryTransport implements Transport {
  private readonly mine = new Set<Subscription>();
  /** Requests waiting for a reply: closing rejects them, as a NATS connection does. */
  private readonly pending = new Set<() => void>();
  private closed = false;

  constructor(
    private readonly network: MemoryNetwork,
    readonly maxPayload: number,
  ) {}

  request(subject: string, data: Uint8Array | string, timeoutMs: number): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new TransportError('transport closed', 'closed'));
    return new Promise((resolve, reject) => {
      let settled = false;
      const clock = this.network.clock;
      const settle = (finish: () => void) => {
        if (settled) return;
        settled = true;
        clock.clearTimeout(timer);
        this.pending.delete(onClose);
        finish();
      };
      const onClose = () => settle(() => reject(new TransportError(`request on ${subject} ended: transport closed`, 'closed')));
      const timer = clock.setTimeout(() => settle(() => reject(new TransportError(`request on ${subject} timed out`, 'timeout'))), timeoutMs);
      this.pending.add(onClose);
      const count = this.network.deliver(subject, bytes(data), (reply) => settle(() => resolve(bytes(reply))));
      if (count === 0) settle(() => reject(new TransportError(`no responders on ${subject}`, 'no-responders')));
    });
  }

  publish(subject: string, data: Uint8Array | string): void {
    if (!this.closed) this.network.deliver(subject, bytes(data), () => {});
  }

  subscribe(subject: string, handler: (msg: Incoming) => void, options: SubscribeOptions = {}): Subscription {
    const sub = this.network.add({ pattern: subject.split('.'), queue: options.queue, handler });
    this.mine.add(sub);
    return sub;
  }

  /** Plain subscriptions: the in-memory network has no service discovery. */
  serve(_spec: ServiceSpec, endpoints: readonly Endpoint[]): ServiceSubscription {
    const subs = endpoints.map((e) => this.subscribe(e.subject, e.handler, { queue: e.queue }));
    return {
      ready: Promise.resolve(),
      unsubscribe: () => {
        for (const s of subs) s.unsubscribe();
      },
    };
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.mine) s.unsubscribe();
    for (const end of [...this.pending]) end();
  }
}
