import { inject, injectable } from 'tsyringe';
import type { NodeConfig } from '../../src/config.js';
import { TOKENS, type Logger } from '../../src/di/tokens.js';
import { errorText } from '../../src/errors.js';
import { isCompactItem, isGetItem, isPutItem, isReapItem, parseReplicaBatch, type ReplicaPutItem } from '../../src/protocol/replica.js';
import type { Version } from '../../src/versioning/index.js';
import { AWAY_REPAIR_REFUSAL, AwayRepair } from './away-repair.js';
import { Buckets } from './buckets.js';
import { compactCopy } from './retired-tags.js';
import { dropCovered } from './tombstones.js';
import type { Subjects } from '../../src/protocol/subjects.js';
import { HINT_LIMITS, type Storage } from '../../src/storage/storage.js';
import { tryDecodeJson, type Incoming, type Subscription, type Transport } from '../../src/transport/transport.js';

/** Serves this node's replica: reads and merges asked of it by coordinators. */
@injectable()
export class ReplicaServer {
  constructor(
    @inject(TOKENS.Subjects) private readonly subjects: Subjects,
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Transport) private readonly transport: Transport,
    @inject(TOKENS.Storage) private readonly storage: Storage,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    private readonly buckets: Buckets,
    private readonly away: AwayRepair,
  ) {}

  listen(): Subscription[] {
    const s = this.subjects;
    return [
      this.transport.subscribe(s.replicaPut(this.config.nodeId), (m) => void this.put(m)),
      this.transport.subscribe(s.replicaGet(this.config.nodeId), (m) => void this.get(m)),
      this.transport.subscribe(s.replicaReap(this.config.nodeId), (m) => void this.reap(m)),
      this.transport.subscribe(s.replicaCompact(this.config.nodeId), (m) => void this.compact(m)),
    ];
  }

  /** Hinted writes stored and refused (store full) since start. */
  hintsStored = 0;
  hintsRefused = 0;

  private async hint(owner: string, bucket: string, key: string, versions: ReplicaPutItem['x']): Promise<boolean | 'full'> {
    const r = await this.storage.storeHint(owner, bucket, key, versions);
    if (r === 'full') return 'full';
    if (r === 'stored') this.hintsStored++;
    return r === 'stored';
  }

  /** The request's items, or null once it has been refused with BAD_REQUEST. */
  private batchOf<T extends { k: string }>(m: Incoming, isItem: (x: unknown) => x is T): T[] | null {
    const items = parseReplicaBatch(tryDecodeJson(m.data), isItem);
    const refusal = typeof items === 'string' ? items : items.some((it) => Buffer.byteLength(it.k, 'utf8') > this.config.maxKeyBytes) ? 'key too long' : null;
    if (refusal === null) return items as T[];
    m.respond(errorText('BAD_REQUEST', refusal));
    return null;
  }

  /** Keys whose copies or hints this node dropped when a reap asked (src/membership/reaping.ts). */
  reapDropped = 0;

  /**
   * A key's first replica is reaping its tombstones: drop this node's copy and its hints of
   * the key where the tombstones cover everything they hold; 'kept' where they do not (a
   * newer write, or one the tombstones did not see), which stops the reap.
   */
  private async reap(m: Incoming): Promise<void> {
    const items = this.batchOf(m, isReapItem);
    if (items === null) return;
    try {
      const owners = await this.storage.hintOwners();
      const reaped = await Promise.all(items.map((it) => dropCovered(this.storage, it.b, it.k, it.x, owners)));
      this.reapDropped += reaped.filter((r) => r === 'dropped').length;
      m.respond(JSON.stringify({ ok: true, reaped }));
    } catch (e) {
      m.respond(errorText('UNAVAILABLE', `replica storage failed: ${(e as Error).message}`));
    }
  }

  /**
   * An OR-Set key's first replica collecting its retired tags (actors/node/retired-tags.ts):
   * what this node holds against the one version it sent, and with `apply`, that version's
   * value here without its retired tags. A bucket this node does not know as an OR-Set keeps its copy.
   */
  private async compact(m: Incoming): Promise<void> {
    const body = tryDecodeJson(m.data) as { apply?: unknown } | null;
    if (typeof body !== 'object' || body === null || typeof body.apply !== 'boolean') {
      m.respond(errorText('BAD_REQUEST', 'expected {"apply": true|false, "items": [...]}'));
      return;
    }
    const apply = body.apply;
    const items = this.batchOf(m, isCompactItem);
    if (items === null) return;
    try {
      const owners = await this.storage.hintOwners();
      const compact = await Promise.all(
        items.map((it) => (this.buckets.props(it.b).resolver === 'orset' ? compactCopy(this.storage, it.b, it.k, it.x[0] as Version, apply, owners) : 'kept')),
      );
      m.respond(JSON.stringify({ ok: true, compact }));
    } catch (e) {
      m.respond(errorText('UNAVAILABLE', `replica storage failed: ${(e as Error).message}`));
    }
  }

  private async put(m: Incoming): Promise<void> {
    const items = this.batchOf(m, isPutItem);
    if (items === null) return;
    try {
      // Plain writes go to storage as one call (one script run in Redis); hints one by one.
      const plain = items.filter((it) => it.h === undefined);
      const applied = this.storage.applyMany(plain.map((it) => ({ bucket: it.b, key: it.k, versions: it.x })));
      const hinted = Promise.all(items.map((it) => (it.h === undefined ? false : this.hint(it.h, it.b, it.k, it.x))));
      const [merged, hints] = await Promise.all([applied, hinted]);
      let next = 0;
      const stored = items.map((it, i) => (it.h === undefined ? (merged[next++] ?? false) : hints[i]));
      if (stored.includes('full')) {
        this.hintsRefused++;
        m.respond(errorText('UNAVAILABLE', `this node's hint store is full (${HINT_LIMITS.maxHints} hints or ${HINT_LIMITS.maxBytes} bytes)`));
        return;
      }
      m.respond(JSON.stringify({ ok: true, stored }));
    } catch (e) {
      this.logger.warn(`replica write failed: ${(e as Error).message}`);
      m.respond(errorText('UNAVAILABLE', `replica storage failed: ${(e as Error).message}`));
    }
  }

  private async get(m: Incoming): Promise<void> {
    const items = this.batchOf(m, isGetItem);
    if (items === null) return;
    if (this.away.repairing) return void m.respond(errorText('UNAVAILABLE', AWAY_REPAIR_REFUSAL));
    try {
      const found = await this.storage.readRawMany(items.map((it) => ({ bucket: it.b, key: it.k })));
      // Stored sibling arrays go out as they are: no parse, no re-encode.
      m.respond(`{"ok":true,"found":[${found.map((f) => f ?? 'null').join(',')}]}`);
    } catch (e) {
      this.logger.warn(`replica read failed: ${(e as Error).message}`);
      m.respond(errorText('UNAVAILABLE', `replica storage failed: ${(e as Error).message}`));
    }
  }
}
