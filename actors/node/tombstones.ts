import { inject, injectable } from 'tsyringe';
import type { NodeConfig } from '../../src/config.js';
import { TOKENS } from '../../src/di/tokens.js';
import { replicaCount } from '../../src/membership/placement.js';
import type { Membership } from '../../src/membership/membership.js';
import {
  clusterBlocker,
  keyBlocker,
  parseSynced,
  reapAudience,
  shortestGrace,
  syncedMetaName,
  type ReapOutcome,
  type SyncRecord,
} from '../../src/membership/reaping.js';
import { ringFingerprint } from '../../src/merkle/index.js';
import { itemsBody } from '../../src/protocol/batch-fill.js';
import { MAX_REPLICA_BATCH, replicaPutItem } from '../../src/protocol/replica.js';
import type { Subjects } from '../../src/protocol/subjects.js';
import { keyPosition } from '../../src/ring/index.js';
import type { Storage, TombstoneKey } from '../../src/storage/storage.js';
import { decodeJson, type Transport } from '../../src/transport/transport.js';
import { includesAll, type Version } from '../../src/versioning/index.js';
import { Buckets } from './buckets.js';

/** Tombstone-only keys one step looks at, at most (a step runs every second with the reaper). */
export const TOMBSTONES_PER_STEP = MAX_REPLICA_BATCH;
const REQUEST_TIMEOUT_MS = 5000;

/**
 * Reaps tombstones by the rules of src/membership/reaping.ts: each step takes a page of
 * the keys holding only tombstones, oldest first; those this node is the first replica
 * of, past their grace and in sync with every other replica since they changed, go to
 * every member it hears from as one `replica.reap` batch; the keys every member dropped
 * (or never held) are deleted here last.
 */
@injectable()
export class TombstoneReaper {
  /** tombstone-only keys reaped since start */
  reaped = 0;
  /** why the last step reaped nothing although tombstones were waiting, or null */
  waiting: string | null = null;
  private offset = 0;

  constructor(
    @inject(TOKENS.Subjects) private readonly subjects: Subjects,
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Transport) private readonly transport: Transport,
    @inject(TOKENS.Storage) private readonly storage: Storage,
    @inject(TOKENS.Membership) private readonly membership: Membership,
    private readonly buckets: Buckets,
  ) {}

  /** The shortest grace of any bucket (0: nothing is reaped). */
  shortestGrace(): number {
    return shortestGrace(
      this.config.tombstoneGraceMs,
      Object.values(this.buckets.table).map((e) => e.props.tombstoneGraceMs),
    );
  }

  private graceOf(bucket: string): number {
    return this.buckets.props(bucket).tombstoneGraceMs ?? this.config.tombstoneGraceMs;
  }

  /** One step; resolves to the keys reaped. */
  async step(): Promise<number> {
    const now = await this.storage.storeClock();
    const shortest = this.shortestGrace();
    if (shortest === 0) return 0;
    const page = await this.storage.tombstones(now - shortest, this.offset, TOMBSTONES_PER_STEP);
    this.offset = page.length < TOMBSTONES_PER_STEP ? 0 : this.offset + page.length;
    if (page.length === 0) {
      this.waiting = null;
      return 0;
    }
    const ring = this.membership.ring();
    const blocked = clusterBlocker(
      ring.members.map((m) => m.id),
      (id) => this.membership.isDown(id),
      this.membership.futureRing() !== null,
    );
    if (blocked !== null) {
      this.waiting = blocked;
      return 0;
    }
    const n = replicaCount(this.config.n, ring);
    const fingerprint = ringFingerprint(ring, n);
    const synced = new Map<string, SyncRecord | null>();
    for (const m of ring.members) if (m.id !== this.config.nodeId) synced.set(m.id, parseSynced(await this.storage.getMeta(syncedMetaName(m.id))));
    let reason: string | null = null;
    const ready = page.filter((t) => {
      const why = keyBlocker(
        this.config.nodeId,
        ring.walk(keyPosition(t.bucket, t.key), n),
        t.at,
        this.graceOf(t.bucket),
        now,
        fingerprint,
        (peer) => synced.get(peer) ?? null,
      );
      if (why !== null && why !== 'not first replica' && why !== 'in grace') reason ??= `tombstones wait: ${why}`;
      return why === null;
    });
    this.waiting = reason;
    if (ready.length === 0) return 0;
    const reaped = await this.reap(ready);
    this.offset = Math.max(0, this.offset - reaped);
    this.reaped += reaped;
    return reaped;
  }

  /** Ask every member to drop its copies and hints of `keys`, then drop the keys all of them let go of. */
  private async reap(keys: readonly TombstoneKey[]): Promise<number> {
    const body = itemsBody(keys.map((t) => replicaPutItem(t.bucket, t.key, t.raw)));
    const audience = reapAudience(this.config.nodeId, this.membership.members());
    const answers = await Promise.all(
      audience.map(async (id) => {
        try {
          const reply = decodeJson<{ ok: boolean; reaped?: ReapOutcome[] }>(
            await this.transport.request(this.subjects.replicaReap(id), body, REQUEST_TIMEOUT_MS),
          );
          return reply.ok && reply.reaped?.length === keys.length ? reply.reaped : null;
        } catch {
          return null;
        }
      }),
    );
    if (answers.includes(null)) {
      const silent = audience.filter((_, i) => answers[i] === null);
      this.waiting = `tombstones wait: ${silent.join(', ')} did not answer a reap`;
      return 0;
    }
    let reaped = 0;
    const owners = await this.storage.hintOwners();
    for (const [i, t] of keys.entries()) {
      if (answers.some((a) => a?.[i] === 'kept')) continue;
      if ((await dropCovered(this.storage, t.bucket, t.key, JSON.parse(t.raw) as Version[], owners)) === 'dropped') reaped++;
    }
    return reaped;
  }
}

/**
 * Drop a store's hints and copy of a key where `tombstones` cover everything they hold
 * (a copy that changed meanwhile stays): 'kept' when any of them holds more.
 */
export async function dropCovered(
  storage: Storage,
  bucket: string,
  key: string,
  tombstones: readonly Version[],
  hintOwners: readonly string[],
): Promise<ReapOutcome> {
  let outcome: ReapOutcome = 'absent';
  const drop = async (raw: string | null, remove: (raw: string) => Promise<boolean>) => {
    if (raw === null || outcome === 'kept') return;
    outcome = includesAll(tombstones, JSON.parse(raw) as Version[]) && (await remove(raw)) ? 'dropped' : 'kept';
  };
  for (const owner of hintOwners) {
    await drop(await storage.readHint(owner, bucket, key), async (raw) => {
      await storage.deleteHint(owner, bucket, key, raw);
      return (await storage.readHint(owner, bucket, key)) === null;
    });
  }
  await drop(await storage.readRaw(bucket, key), (raw) => storage.deleteIfUnchanged(bucket, key, raw));
  return outcome;
}
