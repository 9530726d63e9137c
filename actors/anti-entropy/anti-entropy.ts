import { inject, injectable } from 'tsyringe';
import { Inspection } from '../../src/inspect/inspection.js';
import { createActor, fromPromise, type ActorRefFrom } from 'xstate';
import type { Clock } from '../../src/clock/clock.js';
import { RateLimiter } from '../../src/clock/rate-limiter.js';
import type { NodeConfig } from '../../src/config.js';
import { TOKENS, type Logger, type Random } from '../../src/di/tokens.js';
import { compareTrees, diffKeys, maskShare, MerkleTree, parseTreeField, ringFingerprint, sharedSegmentsOf, type RemoteHashes } from '../../src/merkle/index.js';
import { MAX_REPLICA_BATCH, replicaPutItem } from '../../src/protocol/replica.js';
import { BatchFill, itemsBody } from '../../src/protocol/batch-fill.js';
import { MAX_AE_KEYS, MAX_AE_PARENTS, MAX_AE_SEGMENTS } from '../../src/protocol/anti-entropy.js';
import type { Subjects } from '../../src/protocol/subjects.js';
import type { Storage } from '../../src/storage/storage.js';
import { decodeJson, type Transport } from '../../src/transport/transport.js';
import type { Version } from '../../src/versioning/index.js';
import type { NodeMembership } from '../../src/membership/membership.js';
import { syncedMetaName, syncedText } from '../../src/membership/reaping.js';
import { antiEntropyMachine, type ExchangePlan } from './anti-entropy-machine.js';
import { ExchangeServer } from './exchange-server.js';

/** How often the runner looks for peers back up after being down (a read of the membership table). */
const WATCH_MS = 250;
/** Timeout of one request of an exchange. */
export const AE_REQUEST_TIMEOUT_MS = 5000;
/** Differing leaves whose key lists are asked for in one request. */
const LEAVES_PER_REQUEST = MAX_AE_SEGMENTS;
/** A tree hash on the wire: 16 bytes in base64. */
const HASH_WIRE_BYTES = 22;

interface Plan extends ExchangePlan {
  readonly x: string;
  /** the store's clock just before the tree was read: every key changed before it is in the tree */
  readonly at: number;
  readonly ring: string;
  readonly share: number;
  readonly tree: MerkleTree;
}

/** What this node knows of one range: the keys it shares with one peer. */
export interface RangeStatus {
  peer: string;
  /** fraction of the ring the two nodes both replicate */
  share: number;
  /** wall-clock ms of the last exchange that finished (or failed), null before the first */
  lastExchangeAt: number | null;
  /** ms since then, when the status was taken */
  lastExchangeAgeMs: number | null;
  /** true when the last compare found the trees equal, false when it found differences, null when unknown */
  inSync: boolean | null;
  /** in sync, repaired, or why the last exchange did not finish */
  outcome: string;
  /** leaves that differed and keys repaired in the last exchange */
  differingLeaves: number;
  keysRepaired: number;
  /** bytes both ways in the last exchange */
  bytes: number;
}

export interface AntiEntropyMetrics {
  exchanges: number;
  failures: number;
  treeNodesVisited: number;
  keysRepaired: number;
  /** bytes this node sent in anti-entropy, as initiator and as peer */
  bytesSent: number;
}

class ExchangeRefused extends Error {
  override readonly name = 'ExchangeRefused';
}

/**
 * Runs this node's anti-entropy machine: the three steps it invokes, a record per
 * range for `dynamo status`, and the counters behind the metrics. One exchange runs
 * at a time; repairs are paced by a token bucket (--anti-entropy-keys-per-second).
 */
@injectable()
export class AntiEntropy {
  private actor: ActorRefFrom<typeof antiEntropyMachine> | null = null;
  private readonly limiter: RateLimiter;
  private readonly ranges = new Map<string, RangeStatus>();
  private exchangeCounter = 0;
  /** Ring members seen down, and those since seen up again that no exchange has picked yet. */
  private readonly wasDown = new Set<string>();
  private readonly back = new Set<string>();
  private watchTimer: unknown = null;
  private readonly counters = { exchanges: 0, failures: 0, treeNodesVisited: 0, keysRepaired: 0, bytesSent: 0 };

  constructor(
    @inject(TOKENS.Subjects) private readonly subjects: Subjects,
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Transport) private readonly transport: Transport,
    @inject(TOKENS.Storage) private readonly storage: Storage,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.Random) private readonly random: Random,
    @inject(TOKENS.Membership) private readonly membership: NodeMembership,
    readonly server: ExchangeServer,
    private readonly inspection: Inspection,
  ) {
    this.limiter = new RateLimiter(config.antiEntropyKeysPerSecond, clock);
  }

  get enabled(): boolean {
    return this.config.antiEntropyIntervalMs > 0;
  }

  start(): void {
    if (!this.enabled) return;
    const machine = antiEntropyMachine.provide({
      actors: {
        choose: fromPromise<ExchangePlan | null>(() => this.choose()),
        compare: fromPromise(({ input, signal }) => this.compare(input as Plan, signal)),
        repair: fromPromise(({ input, signal }) => this.repair(input.plan as Plan, input.leaves, signal)),
      },
    });
    this.actor = createActor(machine, {
      id: `anti-entropy-${this.config.nodeId}`,
      clock: this.clock,
      input: { intervalMs: this.config.antiEntropyIntervalMs },
      inspect: this.inspection.observer('anti-entropy'),
    });
    this.actor.start();
    this.watch();
  }

  /** A peer back up after being down gets the next exchange, at once (PEER_BACK). */
  private watch(): void {
    for (const m of this.membership.ring().members) {
      if (m.id === this.config.nodeId) continue;
      if (this.membership.isDown(m.id)) this.wasDown.add(m.id);
      else if (this.wasDown.delete(m.id)) {
        this.back.add(m.id);
        this.actor?.send({ type: 'PEER_BACK' });
      }
    }
    this.watchTimer = this.clock.setTimeout(() => this.watch(), WATCH_MS);
  }

  stop(): void {
    if (this.watchTimer !== null) this.clock.clearTimeout(this.watchTimer);
    this.watchTimer = null;
    this.actor?.stop();
    this.actor = null;
  }

  /** The machine's state: idle, choosingExchange, comparing or repairing (stopped when off). */
  get state(): string {
    return this.actor ? String(this.actor.getSnapshot().value) : 'stopped';
  }

  get metrics(): AntiEntropyMetrics {
    return { ...this.counters, bytesSent: this.counters.bytesSent + this.server.bytesSent };
  }

  /** Per range, the peers this node exchanges with now. */
  rangeStatus(): RangeStatus[] {
    const now = this.clock.now();
    return [...this.ranges.values()]
      .map((r) => ({ ...r, lastExchangeAgeMs: r.lastExchangeAt === null ? null : Math.max(0, now - r.lastExchangeAt) }))
      .sort((a, b) => (a.peer < b.peer ? -1 : 1));
  }

  private peersNow(): { peer: string; share: number; mask: Uint8Array }[] {
    const ring = this.membership.ring();
    const n = Math.min(this.config.n, ring.size);
    const self = this.config.nodeId;
    const out: { peer: string; share: number; mask: Uint8Array }[] = [];
    if (!ring.members.some((m) => m.id === self)) return out;
    for (const m of ring.members) {
      if (m.id === self || this.membership.isDown(m.id)) continue;
      const mask = sharedSegmentsOf(ring, self, m.id, n);
      const share = maskShare(mask);
      if (share > 0) out.push({ peer: m.id, share, mask });
    }
    return out;
  }

  /** Choose a peer back from down, else the range exchanged longest ago among live peers; null when there is none. */
  private async choose(): Promise<Plan | null> {
    const peers = this.peersNow();
    const live = new Set(peers.map((p) => p.peer));
    for (const peer of this.ranges.keys()) if (!live.has(peer) && !this.ringHas(peer)) this.ranges.delete(peer);
    if (peers.length === 0) return null;
    const last = (peer: string) => this.ranges.get(peer)?.lastExchangeAt ?? -Infinity;
    const pick = peers.find((p) => this.back.has(p.peer)) ?? peers.reduce((a, b) => (last(b.peer) < last(a.peer) ? b : a));
    this.back.delete(pick.peer);
    const ring = this.membership.ring();
    const range = this.range(pick.peer);
    range.share = pick.share;
    const at = await this.storage.storeClock();
    const tree = MerkleTree.fromLeaves(await this.storage.treeLeaves(), pick.mask);
    const x = `${this.config.nodeId}-${++this.exchangeCounter}-${Math.floor(this.random() * 2 ** 32).toString(36)}`;
    return {
      peer: pick.peer,
      nextInMs: Math.max(1, Math.round(this.config.antiEntropyIntervalMs / peers.length)),
      x,
      at,
      ring: ringFingerprint(ring, Math.min(this.config.n, ring.size)),
      share: pick.share,
      tree,
    };
  }

  private ringHas(peer: string): boolean {
    return this.membership.ring().members.some((m) => m.id === peer);
  }

  private range(peer: string): RangeStatus {
    let r = this.ranges.get(peer);
    if (r === undefined) {
      r = {
        peer,
        share: 0,
        lastExchangeAt: null,
        lastExchangeAgeMs: null,
        inSync: null,
        outcome: 'not yet exchanged',
        differingLeaves: 0,
        keysRepaired: 0,
        bytes: 0,
      };
      this.ranges.set(peer, r);
    }
    return r;
  }

  /** Bytes of the exchange under way, both ways (recorded on its range when it ends). */
  private exchangeBytes = 0;

  private async ask<T>(plan: Plan, body: object): Promise<T> {
    const text = JSON.stringify({ ...body, x: plan.x });
    const bytesOut = Buffer.byteLength(text);
    this.counters.bytesSent += bytesOut;
    const reply = await this.transport.request(this.subjects.antiEntropy(plan.peer), text, AE_REQUEST_TIMEOUT_MS);
    this.exchangeBytes += bytesOut + reply.length;
    const parsed = decodeJson<{ ok: boolean; error?: { message: string; reason?: string } } & T>(reply);
    if (!parsed.ok)
      throw new ExchangeRefused(
        parsed.error?.reason ? `${plan.peer} refused (${parsed.error.reason}): ${parsed.error.message}` : `${plan.peer}: ${parsed.error?.message}`,
      );
    return parsed;
  }

  private finish(plan: Plan, outcome: string, fields: Partial<RangeStatus>): void {
    const range = this.range(plan.peer);
    Object.assign(range, { ...fields, outcome, lastExchangeAt: this.clock.now(), bytes: this.exchangeBytes });
    this.exchangeBytes = 0;
    // Free the peer's session at once rather than after its TTL.
    this.transport.request(this.subjects.antiEntropy(plan.peer), JSON.stringify({ op: 'end', x: plan.x }), AE_REQUEST_TIMEOUT_MS).catch(() => {});
  }

  private failed(plan: Plan, e: unknown, signal: AbortSignal): never {
    this.counters.failures++;
    this.finish(plan, signal.aborted ? 'timed out' : `failed: ${(e as Error).message}`, {});
    if (!(e instanceof ExchangeRefused)) this.logger.warn(`anti-entropy with ${plan.peer} failed: ${(e as Error).message}`);
    throw e;
  }

  /** Compare this node's tree with the peer's; resolves to the differing leaves. */
  private async compare(plan: Plan, signal: AbortSignal): Promise<number[]> {
    this.exchangeBytes = 0;
    this.counters.exchanges++;
    const { fanout } = plan.tree.shape;
    const parentsPerRequest = Math.min(MAX_AE_PARENTS, Math.max(1, Math.floor(this.config.antiEntropyMaxMessageBytes / (HASH_WIRE_BYTES * fanout))));
    const hashes = (base64: string) => {
      const hex = Buffer.from(base64, 'base64').toString('hex');
      return Array.from({ length: hex.length / 32 }, (_, i) => hex.slice(i * 32, i * 32 + 32));
    };
    const remote: RemoteHashes = async (level, nodes) => {
      if (level === 0) return hashes((await this.ask<{ h: string }>(plan, { op: 'tree', from: this.config.nodeId, ring: plan.ring, level: 0 })).h);
      // compareTrees asks for whole families of children: send their parents.
      const parents = [...new Set(nodes.map((i) => Math.floor(i / fanout)))];
      const out: string[] = [];
      for (let i = 0; i < parents.length; i += parentsPerRequest) {
        if (signal.aborted) throw new Error('stopped');
        out.push(...hashes((await this.ask<{ h: string }>(plan, { op: 'tree', level, parents: parents.slice(i, i + parentsPerRequest) })).h));
      }
      return out;
    };
    try {
      const diff = await compareTrees(plan.tree, remote);
      this.counters.treeNodesVisited += diff.visited;
      if (diff.leaves.length === 0) {
        this.finish(plan, 'in sync', { inSync: true, differingLeaves: 0, keysRepaired: 0 });
        await this.recordSynced(plan);
      } else Object.assign(this.range(plan.peer), { inSync: false, differingLeaves: diff.leaves.length });
      return diff.leaves;
    } catch (e) {
      return this.failed(plan, e, signal);
    }
  }

  /** Bring the keys under the differing leaves to the merge of both sides, on both sides. */
  private async repair(plan: Plan, leaves: readonly number[], signal: AbortSignal): Promise<void> {
    const repaired = new Set<string>();
    try {
      for (let i = 0; i < leaves.length && !signal.aborted; ) {
        const chunk = leaves.slice(i, i + LEAVES_PER_REQUEST);
        const theirs = (await this.ask<{ keys: [string, string][][] }>(plan, { op: 'keys', segments: chunk })).keys;
        // The peer answers whole leaves, as many as fit in one message.
        const answered = chunk.slice(0, theirs.length);
        const mine = await this.storage.segmentKeys(answered);
        const pull: string[] = [];
        const push: string[] = [];
        answered.forEach((_, j) => {
          const d = diffKeys(mine[j], new Map(theirs[j]));
          pull.push(...d.pull);
          push.push(...d.push);
        });
        await this.pull(plan, pull, repaired, signal);
        await this.push(plan, push, repaired, signal);
        i += answered.length;
      }
      this.counters.keysRepaired += repaired.size;
      this.finish(plan, signal.aborted ? `timed out after repairing ${repaired.size} keys` : `repaired ${repaired.size} keys`, { keysRepaired: repaired.size });
      if (!signal.aborted) await this.recordSynced(plan);
    } catch (e) {
      this.counters.keysRepaired += repaired.size;
      this.range(plan.peer).keysRepaired = repaired.size;
      this.failed(plan, e, signal);
    }
  }

  /**
   * The exchange finished: the peer now holds, for every key shared with it, at least
   * what this node held when the exchange read its tree. Kept in the node's store for
   * the tombstone reaper (another process, maybe).
   */
  private async recordSynced(plan: Plan): Promise<void> {
    await this.storage.setMeta(syncedMetaName(plan.peer), syncedText({ at: plan.at, ring: plan.ring })).catch((e: Error) => {
      this.logger.warn(`could not record the exchange with ${plan.peer}: ${e.message}`);
    });
  }

  /** Fetch the peer's versions of `fields` and merge them here. */
  private async pull(plan: Plan, fields: readonly string[], repaired: Set<string>, signal: AbortSignal): Promise<void> {
    for (let i = 0; i < fields.length; ) {
      const found = (await this.ask<{ found: (Version[] | null)[] }>(plan, { op: 'fetch', keys: fields.slice(i, i + MAX_AE_KEYS) })).found;
      if (!(await this.limiter.take(found.length, signal))) return;
      await Promise.all(
        found.map(async (versions, j) => {
          const field = fields[i + j];
          const { bucket, key } = parseTreeField(field);
          if (versions !== null && (await this.storage.apply(bucket, key, versions))) repaired.add(field);
        }),
      );
      i += found.length;
    }
  }

  /** Send this node's versions of `fields` to the peer (after the pull, so they hold the merge). */
  private async push(plan: Plan, fields: readonly string[], repaired: Set<string>, signal: AbortSignal): Promise<void> {
    const raws = await this.storage.readRawMany(fields.map(parseTreeField));
    const fill = new BatchFill<{ field: string; item: string }>(MAX_REPLICA_BATCH, this.config.antiEntropyMaxMessageBytes);
    const send = async () => {
      const batch = fill.take();
      if (batch.length === 0 || !(await this.limiter.take(batch.length, signal))) return;
      const body = itemsBody(batch.map((b) => b.item));
      const bytesOut = Buffer.byteLength(body);
      this.counters.bytesSent += bytesOut;
      const reply = await this.transport.request(this.subjects.replicaPut(plan.peer), body, AE_REQUEST_TIMEOUT_MS);
      this.exchangeBytes += bytesOut + reply.length;
      const parsed = decodeJson<{ ok: boolean; stored?: boolean[]; error?: { message: string } }>(reply);
      if (!parsed.ok) throw new Error(`${plan.peer} refused the repair: ${parsed.error?.message}`);
      parsed.stored?.forEach((stored, j) => {
        if (stored) repaired.add(batch[j].field);
      });
    };
    for (const [j, raw] of raws.entries()) {
      if (raw === null || signal.aborted) continue;
      const { bucket, key } = parseTreeField(fields[j]);
      const item = replicaPutItem(bucket, key, raw);
      const size = Buffer.byteLength(item);
      if (fill.wouldOverflow(size)) await send();
      fill.add({ field: fields[j], item }, size);
    }
    await send();
  }
}
