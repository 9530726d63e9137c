import { MAX_REPLICA_BATCH } from '../../src/protocol/replica.js';
import type { Subjects } from '../../src/protocol/subjects.js';
import { itemsBody } from '../../src/protocol/batch-fill.js';
import { RequestBatcher, type BatchKind } from '../../src/transport/batcher.js';
import { decodeJson, type Transport } from '../../src/transport/transport.js';
import type { Version } from '../../src/versioning/index.js';

/** Bytes of items in one batch, at most (one larger item still goes, alone). */
export const MAX_BATCH_BYTES = 256 * 1024;

type ReplicaReply = { ok: boolean; found?: (Version[] | null)[]; error?: { message: string } };

function replicaKind<R>(node: string, answer: (reply: ReplicaReply, n: number) => R): BatchKind<R> {
  return {
    body: itemsBody,
    split: (data, count) => {
      const reply = decodeJson<ReplicaReply>(data);
      if (!reply.ok) return new Error(`replica ${node} refused: ${reply.error?.message ?? 'unknown error'}`);
      return Array.from({ length: count }, (_, n) => answer(reply, n));
    },
  };
}

/**
 * Replica reads and writes this node sends to one peer within one event-loop turn go
 * out as one message (the replica protocol carries lists), and each caller gets its
 * own item's answer.
 */
export class ReplicaBatcher {
  private readonly batcher: RequestBatcher;
  private readonly putKinds = new Map<string, BatchKind<void>>();
  private readonly getKinds = new Map<string, BatchKind<Version[]>>();

  constructor(
    transport: Transport,
    private readonly subjects: Subjects,
  ) {
    this.batcher = new RequestBatcher(transport, { maxItems: MAX_REPLICA_BATCH, maxBytes: MAX_BATCH_BYTES });
  }

  /** Merge versions on `node`; resolves once it stored (or already held) them. */
  put(node: string, item: string, timeoutMs: number): Promise<void> {
    let kind = this.putKinds.get(node);
    if (kind === undefined) {
      kind = replicaKind(node, () => undefined);
      this.putKinds.set(node, kind);
    }
    return this.batcher.request(this.subjects.replicaPut(node), kind, item, timeoutMs);
  }

  /** `node`'s versions of a key ([] when it holds none). */
  get(node: string, item: string, timeoutMs: number): Promise<Version[]> {
    let kind = this.getKinds.get(node);
    if (kind === undefined) {
      kind = replicaKind(node, (reply, n) => reply.found?.[n] ?? []);
      this.getKinds.set(node, kind);
    }
    return this.batcher.request(this.subjects.replicaGet(node), kind, item, timeoutMs);
  }
}
