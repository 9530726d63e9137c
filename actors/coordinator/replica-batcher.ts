import { MAX_REPLICA_BATCH } from '../../src/protocol/replica.js';
import type { Subjects } from '../../src/protocol/subjects.js';
import { decodeJson, type Transport } from '../../src/transport/transport.js';
import type { Version } from '../../src/versioning/index.js';

/** Bytes of items in one batch, at most (one larger item still goes, alone). */
export const MAX_BATCH_BYTES = 256 * 1024;

interface Pending {
  readonly item: string;
  readonly timeoutMs: number;
  readonly resolve: (result: unknown) => void;
  readonly reject: (e: Error) => void;
}

type Kind = 'put' | 'get';

/**
 * Replica reads and writes this node sends to one peer within one event-loop turn go
 * out as one message (the replica protocol carries lists), and each caller gets its
 * own item's answer. Under load that is several requests per message instead of one,
 * for every node on the path.
 */
export class ReplicaBatcher {
  private readonly queues = new Map<string, { kind: Kind; node: string; items: Pending[]; bytes: number }>();
  private scheduled = false;

  constructor(
    private readonly transport: Transport,
    private readonly subjects: Subjects,
  ) {}

  /** Merge versions on `node`; resolves once it stored (or already held) them. */
  put(node: string, item: string, timeoutMs: number): Promise<void> {
    return this.enqueue('put', node, item, timeoutMs) as Promise<void>;
  }

  /** `node`'s versions of a key ([] when it holds none). */
  get(node: string, item: string, timeoutMs: number): Promise<Version[]> {
    return this.enqueue('get', node, item, timeoutMs) as Promise<Version[]>;
  }

  private enqueue(kind: Kind, node: string, item: string, timeoutMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const name = `${kind} ${node}`;
      let q = this.queues.get(name);
      if (q !== undefined && (q.items.length >= MAX_REPLICA_BATCH || q.bytes + item.length > MAX_BATCH_BYTES)) {
        this.send(q);
        q = undefined;
      }
      if (q === undefined) this.queues.set(name, (q = { kind, node, items: [], bytes: 0 }));
      q.items.push({ item, timeoutMs, resolve, reject });
      q.bytes += item.length;
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

  private send(q: { kind: Kind; node: string; items: Pending[] }): void {
    if (this.queues.get(`${q.kind} ${q.node}`) === q) this.queues.delete(`${q.kind} ${q.node}`);
    const { items } = q;
    const subject = q.kind === 'put' ? this.subjects.replicaPut(q.node) : this.subjects.replicaGet(q.node);
    const timeoutMs = Math.min(...items.map((i) => i.timeoutMs));
    this.transport.request(subject, `{"items":[${items.map((i) => i.item).join(',')}]}`, timeoutMs).then(
      (data) => {
        const reply = decodeJson<{ ok: boolean; found?: (Version[] | null)[]; error?: { message: string } }>(data);
        if (!reply.ok) {
          const e = new Error(`replica ${q.node} refused: ${reply.error?.message ?? 'unknown error'}`);
          for (const i of items) i.reject(e);
          return;
        }
        items.forEach((i, n) => i.resolve(q.kind === 'get' ? (reply.found?.[n] ?? []) : undefined));
      },
      (e: Error) => {
        for (const i of items) i.reject(e);
      },
    );
  }
}
