import { inject, injectable } from 'tsyringe';
import { sleep, type Clock } from '../../src/clock/clock.js';
import type { NodeConfig } from '../../src/config.js';
import { TOKENS, type Logger } from '../../src/di/tokens.js';
import { gainingReplicas } from '../../src/membership/handoff.js';
import { currentRingMembers, futureRingMembers, type MemberTable } from '../../src/membership/member.js';
import { isPutItem, MAX_REPLICA_BATCH, replicaPutItem } from '../../src/protocol/replica.js';
import { BatchFill, itemsBody } from '../../src/protocol/batch-fill.js';
import type { Subjects } from '../../src/protocol/subjects.js';
import { keyPosition, Ring, type RingMember } from '../../src/ring/index.js';
import { SCAN_START, type Storage, type StoredKey } from '../../src/storage/storage.js';
import { decodeJson, type Transport } from '../../src/transport/transport.js';
import type { NodeMembership } from '../../src/membership/membership.js';
import { PULL_START, type PullCursor, type PullReply, type PullRequest } from './handoff-server.js';
import { present } from '../../src/invariant.js';

export interface TransferProgress {
  readonly phase: 'pulling' | 'pushing' | 'done';
  /** keys examined so far */
  readonly done: number;
  /** keys to examine (an estimate taken when the phase starts) */
  readonly total: number;
  /** keys sent or received */
  readonly moved: number;
}

/** Tries per page before a transfer gives up on a peer. */
export const TRANSFER_RETRIES = 8;
const PULL_TIMEOUT_MS = 10_000;
const META_PULL = 'pull';
const META_RING_WEIGHT = 'ringWeight';

interface SavedPull {
  readonly plan: string;
  readonly cursors: Record<string, PullCursor>;
}

/**
 * Moves ranges when this node's place in the ring changes: pulls the keys it gains
 * from their current owners (join, weight up), pushes the keys others gain from it
 * (leave, weight down), then tells the cluster its new ring weight. Pages are
 * bounded; pull cursors are saved in the node's Redis so a restarted join resumes.
 */
@injectable()
export class Transfers {
  progress: TransferProgress | null = null;

  constructor(
    @inject(TOKENS.Subjects) private readonly subjects: Subjects,
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Transport) private readonly transport: Transport,
    @inject(TOKENS.Storage) private readonly storage: Storage,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Membership) private readonly membership: NodeMembership,
  ) {}

  /** The ring weight this node held when it last stopped (0 if it never finished a join). */
  async savedRingWeight(): Promise<number> {
    const v = Number(await this.storage.getMeta(META_RING_WEIGHT));
    return Number.isFinite(v) && v > 0 ? v : 0;
  }

  /** Whether a join that was under way when the node stopped has saved where it got to. */
  async joinUnderWay(): Promise<boolean> {
    return (await this.storage.getMeta(META_PULL)) !== null;
  }

  /** Forget the ring weight this node held (its store was wiped): it joins again from nothing. */
  async startOver(): Promise<void> {
    await this.storage.setMeta(META_RING_WEIGHT, null);
    await this.storage.setMeta(META_PULL, null);
  }

  private rings(): { current: Ring; future: Ring; table: MemberTable } {
    const table = Object.fromEntries(this.membership.table().map((m) => [m.id, m]));
    return { current: new Ring(currentRingMembers(table)), future: new Ring(futureRingMembers(table)), table };
  }

  /** Why this node may not leave now (its keys would have nowhere to go), or null. */
  leaveRefusal(): string | null {
    const others = this.membership.ring().members.filter((m) => m.id !== this.config.nodeId && !this.membership.isDown(m.id));
    return others.length === 0 ? `node ${this.config.nodeId} is the last live node of the ring; leaving would take its keys with it` : null;
  }

  /** Bring this node's ring weight to `weight` (0 to leave), moving the keys that change hands. */
  async rebalance(weight: number): Promise<void> {
    if (weight === 0) {
      const refusal = this.leaveRefusal();
      if (refusal) throw new Error(refusal);
    }
    const me = present(this.membership.entry(this.config.nodeId), 'a node is in its own membership table');
    if (me.weight !== weight) await this.membership.setWeights(weight, me.ringWeight);
    if (me.ringWeight === weight) return;
    // Make sure everyone routes writes for the moving ranges to both old and new owners before data moves.
    await this.membership.announceToAll();
    const n = this.config.n;
    const { current, future } = this.rings();
    // Token i of a node sits at MD5(id#i) whatever its weight, so a heavier node only
    // gains ranges and a lighter (or leaving) one only loses them.
    if (weight > me.ringWeight) await this.pull(current, future, n);
    else await this.push(current, future, n);
    await this.membership.setWeights(weight, weight);
    await this.storage.setMeta(META_RING_WEIGHT, String(weight));
    await this.storage.setMeta(META_PULL, null);
    await this.membership.announceToAll();
    this.progress = { ...(this.progress ?? { done: 0, total: 0, moved: 0 }), phase: 'done' };
  }

  private async request<T>(subject: string, body: string, what: string): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        const reply = decodeJson<T & { ok: boolean; error?: { message: string } }>(await this.transport.request(subject, body, PULL_TIMEOUT_MS));
        if (!reply.ok) throw new Error(reply.error?.message ?? 'refused');
        return reply;
      } catch (e) {
        if (attempt >= TRANSFER_RETRIES) throw new Error(`${what} failed after ${attempt} tries: ${(e as Error).message}`, { cause: e });
        this.logger.warn(`${what}: ${(e as Error).message}; retrying`);
        await sleep(this.clock, Math.min(5000, 100 * 2 ** attempt));
      }
    }
  }

  private async pull(current: Ring, future: Ring, n: number): Promise<void> {
    const self = this.config.nodeId;
    const sources = current.members.map((m) => m.id).filter((id) => id !== self && !this.membership.isDown(id));
    if (sources.length === 0) return;
    const plan = JSON.stringify([current.members, future.members, sources]);
    const saved = JSON.parse((await this.storage.getMeta(META_PULL)) ?? 'null') as SavedPull | null;
    const cursors: Record<string, PullCursor> = saved?.plan === plan ? { ...saved.cursors } : {};
    const counts = await Promise.all(sources.map((s) => this.keysOf(s)));
    this.progress = { phase: 'pulling', done: 0, total: counts.reduce((a, b) => a + b, 0), moved: 0 };
    for (const source of sources) {
      let cursor = cursors[source] ?? PULL_START;
      for (;;) {
        const req: PullRequest = { target: self, n, current: current.members as RingMember[], future: future.members as RingMember[], sources, cursor };
        const page = await this.request<PullReply>(this.subjects.handoffPull(source), JSON.stringify(req), `pulling from ${source}`);
        for (const item of page.items) {
          if (isPutItem(item)) await this.storage.apply(item.b, item.k, item.x);
        }
        this.progress = { ...this.progress, done: this.progress.done + page.scanned, moved: this.progress.moved + page.items.length };
        cursor = page.cursor;
        cursors[source] = cursor;
        await this.storage.setMeta(META_PULL, JSON.stringify({ plan, cursors } satisfies SavedPull));
        if (page.done) break;
      }
    }
  }

  private async push(current: Ring, future: Ring, n: number): Promise<void> {
    const total = await this.storage.keyCount();
    this.progress = { phase: 'pushing', done: 0, total, moved: this.progress?.moved ?? 0 };
    let cursor = SCAN_START;
    do {
      const page = await this.storage.scan(cursor, this.config.transferBatchKeys);
      cursor = page.cursor;
      const byTarget = new Map<string, StoredKey[]>();
      for (const k of page.keys) {
        for (const t of gainingReplicas(current, future, keyPosition(k.bucket, k.key), n)) {
          if (t !== this.config.nodeId) byTarget.set(t, [...(byTarget.get(t) ?? []), k]);
        }
      }
      for (const [target, keys] of byTarget) await this.send(target, keys);
      this.progress = { ...this.progress, done: this.progress.done + page.keys.length };
    } while (cursor !== SCAN_START);
  }

  private async send(target: string, keys: readonly StoredKey[]): Promise<void> {
    // Batches bounded by count and by bytes (half the transport's message limit).
    const fill = new BatchFill<string>(MAX_REPLICA_BATCH, Math.floor(this.transport.maxPayload / 2));
    const flush = async () => {
      if (fill.length === 0) return;
      const items = fill.take();
      const body = itemsBody(items);
      const count = items.length;
      try {
        await this.request(this.subjects.replicaPut(target), body, `handing keys to ${target}`);
        const progress = present(this.progress, 'a transfer reports progress');
        this.progress = { ...progress, moved: progress.moved + count };
      } catch (e) {
        // The key's other replicas stay replicas in the future ring and keep it; read repair
        // and anti-entropy complete this copy. Say so rather than block the leave forever.
        this.logger.error(`${(e as Error).message}; ${count} keys left for repair`);
      }
    };
    for (let i = 0; i < keys.length; i += MAX_REPLICA_BATCH) {
      const batch = keys.slice(i, i + MAX_REPLICA_BATCH);
      const raws = await this.storage.readRawMany(batch);
      for (const [j, k] of batch.entries()) {
        const raw = raws[j];
        if (!raw) continue;
        const item = replicaPutItem(k.bucket, k.key, raw);
        if (fill.wouldOverflow(item.length)) await flush();
        fill.add(item, item.length);
      }
    }
    await flush();
  }

  private async keysOf(node: string): Promise<number> {
    try {
      return decodeJson<{ keys: number }>(await this.transport.request(this.subjects.ping(node), '', 2000)).keys;
    } catch {
      return 0;
    }
  }
}
