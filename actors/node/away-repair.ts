import { inject, injectable } from 'tsyringe';
import type { Clock } from '../../src/clock/clock.js';
import type { NodeConfig } from '../../src/config.js';
import { TOKENS, type Logger } from '../../src/di/tokens.js';
import type { Membership } from '../../src/membership/membership.js';
import { replicaCount } from '../../src/membership/placement.js';
import { ALIVE_META, AWAY_REPAIR_META, awayLongerThanGrace, awayRepairPending, parseSynced, syncedMetaName } from '../../src/membership/reaping.js';
import { maskShare, sharedSegmentsOf } from '../../src/merkle/index.js';
import type { Storage } from '../../src/storage/storage.js';

const FOLLOW_MS = 1000;
/** Why a replica read of a repairing node is refused. */
export const AWAY_REPAIR_REFUSAL = 'this replica is repairing after being away longer than the tombstone grace; the other replicas serve reads';

/**
 * A node back after longer than the tombstone grace serves no reads until anti-entropy
 * has compared its ranges with every live peer it shares them with (Cassandra's
 * gc_grace rule, enforced): its replica reads are refused and its coordinator does not
 * read its own store, so reads come from the replicas that stayed. Writes go on. The
 * state is kept in the node's Redis, so a restart during the repair goes on with it,
 * and every process of the node (a coordinator placed apart) follows it.
 */
@injectable()
export class AwayRepair {
  /** the store's clock when the repair began; null while the node serves reads */
  since: number | null = null;
  /** live peers it has yet to be compared with */
  pending: string[] = [];
  private timer: unknown = null;
  private readonly startedAt: number;

  constructor(
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Storage) private readonly storage: Storage,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.Membership) private readonly membership: Membership,
  ) {
    this.startedAt = clock.monotonic();
  }

  get repairing(): boolean {
    return this.since !== null;
  }

  /** At boot, in the process of the node actor: begin (or go on with) a repair if the store was away longer than `graceMs`. */
  async beginIfAway(graceMs: number): Promise<void> {
    const saved = await this.storage.getMeta(AWAY_REPAIR_META);
    if (saved !== null) {
      this.since = Number(saved);
      return;
    }
    const now = await this.storage.storeClock();
    const alive = await this.storage.getMeta(ALIVE_META);
    // Alive from now on (the housekeeping pass keeps it up to date every second).
    await this.storage.setMeta(ALIVE_META, String(now));
    if (!awayLongerThanGrace(alive === null ? null : Number(alive), now, graceMs) || (await this.storage.keyCount()) === 0) return;
    const away = Math.round((now - Number(alive)) / 1000);
    if (this.config.antiEntropyIntervalMs === 0) {
      this.logger.warn(`this node was away ${away} s, longer than the tombstone grace, and anti-entropy is off: it serves reads unrepaired`);
      return;
    }
    await this.storage.setMeta(AWAY_REPAIR_META, String(now));
    this.since = now;
    this.logger.warn(`this node was away ${away} s, longer than the tombstone grace: it serves no reads until anti-entropy has compared its ranges`);
  }

  /** A process of the node without the node actor (a coordinator placed apart): follow the repair's state in the node's Redis. */
  follow(): void {
    const poll = () => {
      this.storage.getMeta(AWAY_REPAIR_META).then(
        (v) => {
          this.since = v === null ? null : Number(v);
        },
        () => {},
      );
      this.timer = this.clock.setTimeout(poll, FOLLOW_MS);
    };
    this.timer = this.clock.setTimeout(poll, FOLLOW_MS);
  }

  stop(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  /** The node actor's housekeeping pass: end the repair once every live peer sharing a range was compared after it began. */
  async step(): Promise<void> {
    await this.storage.setMeta(ALIVE_META, String(await this.storage.storeClock()));
    const since = this.since;
    if (since === null) return;
    const ring = this.membership.ring();
    const self = this.config.nodeId;
    const n = replicaCount(this.config.n, ring);
    // A peer down in this node's view is not waited for, once that view has had time to form.
    const settled = this.clock.monotonic() - this.startedAt > this.config.downAfterMs;
    const peers = ring.members
      .map((m) => m.id)
      .filter((id) => id !== self && !(settled && this.membership.isDown(id)) && maskShare(sharedSegmentsOf(ring, self, id, n)) > 0);
    const synced = new Map(await Promise.all(peers.map(async (p) => [p, parseSynced(await this.storage.getMeta(syncedMetaName(p)))] as const)));
    this.pending = awayRepairPending(peers, since, (p) => synced.get(p) ?? null);
    if (this.pending.length > 0 || !ring.members.some((m) => m.id === self)) return;
    await this.storage.setMeta(AWAY_REPAIR_META, null);
    this.since = null;
    this.logger.info('anti-entropy has compared every range with the live peers: this node serves reads again');
  }
}
