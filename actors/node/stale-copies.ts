import { inject, injectable } from 'tsyringe';
import { replicaCount } from '../../src/membership/placement.js';
import type { Clock } from '../../src/clock/clock.js';
import type { NodeConfig } from '../../src/config.js';
import { TOKENS, type Logger } from '../../src/di/tokens.js';
import type { Membership } from '../../src/membership/membership.js';
import { itemsBody } from '../../src/protocol/batch-fill.js';
import { replicaGetItem, replicaPutItem } from '../../src/protocol/replica.js';
import type { Subjects } from '../../src/protocol/subjects.js';
import { keyPosition, type Ring } from '../../src/ring/index.js';
import { SCAN_START, type Storage } from '../../src/storage/storage.js';
import { decodeJson, type Transport } from '../../src/transport/transport.js';
import { includesAll, type Version } from '../../src/versioning/index.js';

/** Stored keys one step looks at, at most (a step runs every second with the reaper). */
export const STALE_SCAN_PER_STEP = 200;
const REQUEST_TIMEOUT_MS = 5000;

/**
 * Drops the copies this node keeps of keys it no longer replicates: a join or a leave
 * moves a range to new owners but leaves the old owner's copy behind. Once the ring has
 * not changed for `staleCopySettleMs`, each step scans a page of the store; a key this
 * node is not among the N replicas of is deleted only if a live replica already holds
 * everything the copy holds (and the copy did not change meanwhile); otherwise the copy
 * is sent to the replicas first, and deleted on a later pass.
 */
@injectable()
export class StaleCopies {
  private cursor = SCAN_START;
  private ring: Ring | null = null;
  private ringSince = 0;
  /** copies dropped, and copies sent to the replicas because they lacked something, since start */
  dropped = 0;
  sent = 0;

  constructor(
    @inject(TOKENS.Subjects) private readonly subjects: Subjects,
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Transport) private readonly transport: Transport,
    @inject(TOKENS.Storage) private readonly storage: Storage,
    @inject(TOKENS.Membership) private readonly membership: Membership,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.Clock) private readonly clock: Clock,
  ) {}

  /** One step of the sweep; resolves to the copies dropped. */
  async step(): Promise<number> {
    if (this.config.staleCopySettleMs === 0) return 0;
    const ring = this.membership.ring();
    const now = this.clock.monotonic();
    if (ring !== this.ring) {
      // The ring changed: wait for it to settle, and start the scan again.
      this.ring = ring;
      this.ringSince = now;
      this.cursor = SCAN_START;
      return 0;
    }
    if (now - this.ringSince < this.config.staleCopySettleMs || this.membership.futureRing() !== null || ring.size === 0) return 0;
    const n = replicaCount(this.config.n, ring);
    const page = await this.storage.scan(this.cursor, STALE_SCAN_PER_STEP);
    this.cursor = page.cursor;
    const self = this.config.nodeId;
    const stale = page.keys.map((k) => ({ ...k, replicas: ring.walk(keyPosition(k.bucket, k.key), n) })).filter((k) => !k.replicas.includes(self));
    if (stale.length === 0) return 0;
    const raws = await this.storage.readRawMany(stale);
    let dropped = 0;
    let failed: string | null = null;
    for (const [i, k] of stale.entries()) {
      const raw = raws[i];
      const owner = k.replicas.find((id) => !this.membership.isDown(id));
      if (raw === null || raw === undefined || owner === undefined) continue;
      try {
        const mine = JSON.parse(raw) as Version[];
        const reply = decodeJson<{ ok: boolean; found?: (Version[] | null)[] }>(
          await this.transport.request(this.subjects.replicaGet(owner), itemsBody([replicaGetItem(k.bucket, k.key)]), REQUEST_TIMEOUT_MS),
        );
        if (!reply.ok) continue;
        if (includesAll(reply.found?.[0] ?? [], mine)) {
          if (await this.storage.deleteIfUnchanged(k.bucket, k.key, raw)) dropped++;
          continue;
        }
        // The replicas lack something this copy holds (a write that reached only this node): theirs first.
        const body = itemsBody([replicaPutItem(k.bucket, k.key, raw)]);
        await Promise.all(
          k.replicas
            .filter((id) => !this.membership.isDown(id))
            .map((id) => this.transport.request(this.subjects.replicaPut(id), body, REQUEST_TIMEOUT_MS).catch(() => undefined)),
        );
        this.sent++;
      } catch (e) {
        failed = `${k.bucket}/${k.key}: ${(e as Error).message}`;
      }
    }
    // One line a step at most: the keys whose check failed are looked at again on the next pass.
    if (failed !== null) this.logger.warn(`checking stale copies failed (for example ${failed}); they are kept for now`);
    this.dropped += dropped;
    return dropped;
  }
}
