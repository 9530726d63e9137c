import type { Transport } from './transport.js';
import { BatchFill } from '../protocol/batch-fill.js';

/**
 * Items share a batch only with items whose timeout rounds up to the same multiple of
 * this: a batch is answered when its last item is, so a short request must not wait on a
 * long one's timeout; it waits at most this much beyond its own.
 */
export const TIMEOUT_CLASS_MS = 250;

/** How requests to one subject are put together into one message and their answers taken apart. */
export interface BatchKind<R> {
  /** the message carrying the items' JSON texts */
  body(items: readonly string[]): string;
  /** each item's answer, in order, from the reply; or the Error that fails them all */
  split(reply: Uint8Array, count: number): R[] | Error;
}

/** Bounds of one message: items and bytes of items (one larger item still goes, alone). */
export interface BatchLimits {
  readonly maxItems: number;
  readonly maxBytes: number;
}

interface Pending<R> {
  readonly item: string;
  readonly resolve: (result: R) => void;
  readonly reject: (e: Error) => void;
}

interface Queue {
  readonly name: string;
  readonly subject: string;
  /** the timeout of every item of the batch, rounded up to its class */
  readonly timeoutMs: number;
  readonly kind: BatchKind<unknown>;
  readonly fill: BatchFill<Pending<unknown>>;
}

/**
 * Requests made to one subject within one event-loop turn go out as one message, and
 * each caller gets its own item's answer, as ioredis's auto-pipelining does for Redis
 * commands. Under load that is many requests per message instead of one, for every
 * process on the path. The one place batches are made: replica reads and writes,
 * forwarded client requests, and the client library's requests.
 */
export class RequestBatcher {
  /** Queues by subject and timeout class. */
  private readonly queues = new Map<string, Queue>();
  private scheduled = false;

  constructor(
    private readonly transport: Transport,
    private readonly limits: BatchLimits,
  ) {}

  /** Send `item` (JSON text) to `subject` with the other items of this turn; resolves with its answer. */
  request<R>(subject: string, kind: BatchKind<R>, item: string, timeoutMs: number): Promise<R> {
    const classMs = Math.max(1, Math.ceil(timeoutMs / TIMEOUT_CLASS_MS)) * TIMEOUT_CLASS_MS;
    const name = `${classMs} ${subject}`;
    return new Promise<R>((resolve, reject) => {
      let q = this.queues.get(name);
      if (q?.fill.wouldOverflow(item.length)) {
        this.send(q);
        q = undefined;
      }
      if (q === undefined) {
        q = { name, subject, timeoutMs: classMs, kind: kind as BatchKind<unknown>, fill: new BatchFill(this.limits.maxItems, this.limits.maxBytes) };
        this.queues.set(name, q);
      }
      q.fill.add({ item, resolve: resolve as (r: unknown) => void, reject }, item.length);
      if (!this.scheduled) {
        this.scheduled = true;
        // Everything asked in this turn of the event loop goes in the same batches.
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const queues = [...this.queues.values()];
    this.queues.clear();
    for (const q of queues) this.send(q);
  }

  private send(q: Queue): void {
    if (this.queues.get(q.name) === q) this.queues.delete(q.name);
    const items = q.fill.take();
    this.transport.request(q.subject, q.kind.body(items.map((i) => i.item)), q.timeoutMs).then(
      (data) => {
        let results: unknown[] | Error;
        try {
          results = q.kind.split(data, items.length);
        } catch (e) {
          results = new Error(`unreadable reply on ${q.subject}: ${(e as Error).message}`);
        }
        if (results instanceof Error) {
          for (const i of items) i.reject(results);
          return;
        }
        if (results.length !== items.length) {
          const e = new Error(`reply on ${q.subject} answers ${results.length} of ${items.length} items`);
          for (const i of items) i.reject(e);
          return;
        }
        for (let n = 0; n < items.length; n++) items[n].resolve(results[n]);
      },
      (e: Error) => {
        for (const i of items) i.reject(e);
      },
    );
  }
}
