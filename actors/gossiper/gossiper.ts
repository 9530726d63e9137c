import { inject, injectable } from 'tsyringe';
import { Inspection } from '../../src/inspect/inspection.js';
import { stateText } from '../../src/inspect/trace.js';
import { createActor, fromPromise, waitFor, type ActorRefFrom } from 'xstate';
import type { Clock } from '../../src/clock/clock.js';
import type { NodeConfig } from '../../src/config.js';
import { TOKENS, type Logger, type Random } from '../../src/di/tokens.js';
import { errorText } from '../../src/errors.js';
import { liveness } from '../../src/membership/failure-detector.js';
import { isMember, MAX_MEMBERS, statusOf, type Member } from '../../src/membership/member.js';
import type { MemberView, NodeMembership } from '../../src/membership/membership.js';
import type { Subjects } from '../../src/protocol/subjects.js';
import { MAX_TOTAL_WEIGHT, MAX_WEIGHT, totalWeight, type Ring } from '../../src/ring/index.js';
import { decodeJson, tryDecodeJson, type Incoming, type Subscription, type Transport } from '../../src/transport/transport.js';
import type { Storage } from '../../src/storage/storage.js';
import { randomBytes } from 'node:crypto';

/** Name, in a node's Redis, of the token its processes show when they change its gossip entry. */
export const CONTROL_TOKEN = 'control-token';
import { Buckets } from '../node/buckets.js';
import { gossiperMachine, ringsFor, tableMessage, type ExchangeOutput, type GossipMetrics, type TableMessage } from './gossiper-machine.js';
import { present } from '../../src/invariant.js';

/** What a node's gossiper tells the node's other processes: its members, table, counters and bucket table. */
export interface MembershipView {
  readonly members: MemberView[];
  readonly table: Member[];
  readonly metrics: object;
  readonly buckets: unknown;
}

/** A gossip message: a node's whole member table, and its bucket table when it has one. */
export interface GossipMessage extends TableMessage {
  readonly cluster: string;
  readonly from: string;
  readonly buckets?: unknown;
}

/** A member table as received: well-formed entries, and rings small enough to build (else it could poison ours). */
export function isTable(x: unknown): x is Member[] {
  if (!Array.isArray(x) || x.length > MAX_MEMBERS || !x.every(isMember)) return false;
  const members = x as Member[];
  return totalWeight(members.map((m) => ({ id: m.id, weight: Math.max(m.weight, m.ringWeight) }))) <= MAX_TOTAL_WEIGHT;
}

function parseGossip(data: Uint8Array): GossipMessage | null {
  let body: unknown;
  try {
    body = decodeJson(data);
  } catch {
    return null;
  }
  if (typeof body !== 'object' || body === null) return null;
  const b = body as Record<string, unknown>;
  if (typeof b['cluster'] !== 'string' || typeof b['from'] !== 'string' || !isTable(b['members'])) return null;
  const ages = b['ages'];
  if (ages !== undefined && (typeof ages !== 'object' || ages === null || !Object.values(ages).every((a) => typeof a === 'number' && a >= 0))) return null;
  return body as GossipMessage;
}

/**
 * The node's gossiper actor and the Membership view the request path reads. The
 * machine holds the table; this class wires it to NATS and answers questions
 * about it from the machine's current snapshot.
 */
@injectable()
export class Gossiper implements NodeMembership {
  readonly self: string;
  private actor: ActorRefFrom<typeof gossiperMachine> | null = null;
  private rings: { key: string; ring: Ring; futureRing: Ring | null } | null = null;
  private subscription: Subscription | null = null;

  constructor(
    @inject(TOKENS.Subjects) private readonly subjects: Subjects,
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Transport) private readonly transport: Transport,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Random) private readonly random: Random,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    private readonly buckets: Buckets,
    @inject(TOKENS.Storage) private readonly storage: Storage,
    private readonly inspection: Inspection,
  ) {
    this.self = config.nodeId;
  }

  private message(): string {
    const buckets = this.buckets.table;
    const withBuckets = Object.keys(buckets).length > 0 ? { buckets } : {};
    return JSON.stringify({ cluster: this.config.cluster, from: this.self, ...tableMessage(this.context), ...withBuckets } satisfies GossipMessage);
  }

  /** Swap tables with each peer; the replies that parse and belong to our cluster come back. */
  private async exchange(peers: readonly string[], timeoutMs: number): Promise<ExchangeOutput> {
    const body = this.message();
    const results = await Promise.allSettled(peers.map((p) => this.transport.request(this.subjects.gossip(p), body, timeoutMs)));
    const replies: TableMessage[] = [];
    let failed = 0;
    for (const r of results) {
      const msg = r.status === 'fulfilled' ? parseGossip(r.value) : null;
      if (msg && msg.cluster === this.config.cluster) {
        replies.push(msg);
        if (msg.buckets !== undefined) this.buckets.merge(msg.buckets);
      } else failed++;
    }
    return { replies, failed };
  }

  /**
   * Start gossiping as `entry`. Resolves once a seed has answered (or at once with no
   * seeds): from then on the table holds the cluster as the seed knew it.
   */
  async start(entry: Member): Promise<void> {
    const machine = gossiperMachine.provide({
      actors: {
        announce: fromPromise(({ input }) => this.exchange(input.seeds, this.config.gossipIntervalMs)),
        exchange: fromPromise(({ input }) => this.exchange(input.peers, this.config.gossipIntervalMs)),
      },
    });
    this.actor = createActor(machine, {
      clock: this.clock,
      id: `gossiper-${this.self}`,
      inspect: this.inspection.observer('gossiper'),
      input: {
        self: entry,
        seeds: this.config.seeds,
        intervalMs: this.config.gossipIntervalMs,
        downAfterMs: this.config.downAfterMs,
        fanout: this.config.gossipFanout,
        monotonic: () => this.clock.monotonic(),
        random: this.random,
        log: (m) => this.logger.warn(m),
      },
    });
    this.subscription = this.transport.subscribe(this.subjects.gossip(this.self), (m) => {
      const msg = parseGossip(m.data);
      if (msg === null) {
        this.actor?.send({ type: 'GOSSIP.DROPPED', reason: 'malformed' });
        m.respond(errorText('BAD_REQUEST', 'malformed gossip message'));
        return;
      }
      if (msg.cluster !== this.config.cluster) {
        this.actor?.send({ type: 'GOSSIP.DROPPED', reason: 'foreignCluster' });
        m.respond(errorText('BAD_REQUEST', `this node belongs to cluster "${this.config.cluster}"`));
        return;
      }
      this.actor?.send({ type: 'GOSSIP.RECEIVED', members: msg.members, ages: msg.ages });
      if (msg.buckets !== undefined) this.buckets.merge(msg.buckets);
      m.respond(this.message());
    });
    await this.transport.flush();
    this.actor.start();
    await waitFor(this.actor, (s) => s.matches('running'), { timeout: Infinity });
    this.serveView();
  }

  /** Push our table to every live member now (used around joins and leaves so the change spreads at once). */
  async announceToAll(): Promise<number> {
    const peers = this.members()
      .filter((m) => m.id !== this.self && m.status !== 'left' && m.liveness !== 'down')
      .map((m) => m.id);
    const out = await this.exchange(peers, this.config.gossipIntervalMs * 2);
    for (const reply of out.replies) this.actor?.send({ type: 'GOSSIP.RECEIVED', ...reply });
    return out.failed;
  }

  async setWeights(weight: number, ringWeight: number): Promise<void> {
    present(this.actor, 'the gossiper is started before weights are set').send({ type: 'SET_WEIGHTS', weight, ringWeight });
  }

  async removeMember(id: string): Promise<void> {
    present(this.actor, 'the gossiper is started before a member is removed').send({ type: 'REMOVE_MEMBER', id });
    await this.announceToAll();
  }

  stop(): void {
    this.subscription?.unsubscribe();
    for (const s of this.viewSubscriptions) s.unsubscribe();
    if (this.viewTimer !== null) this.clock.clearTimeout(this.viewTimer);
    this.viewTimer = null;
    this.actor?.stop();
  }

  private viewSubscriptions: Subscription[] = [];
  private viewTimer: unknown = null;

  /** This node's membership as its other processes need it (see GossipMirror). */
  view(): MembershipView {
    return { members: this.members(), table: this.table(), metrics: { ...this.metrics }, buckets: this.buckets.table };
  }

  /**
   * Serve this node's other processes (actors placed elsewhere, `--actors`): publish
   * the view every round, answer for it on request, and take their changes to this
   * node's entry.
   */
  private serveView(): void {
    const s = this.subjects;
    const publish = () => {
      this.transport.publish(s.membershipView(this.self), JSON.stringify(this.view()));
      this.viewTimer = this.clock.setTimeout(publish, this.config.gossipIntervalMs);
    };
    this.viewSubscriptions = [
      this.transport.subscribe(s.membershipGet(this.self), (m) => m.respond(JSON.stringify(this.view()))),
      this.transport.subscribe(s.membershipControl(this.self), (m) => void this.control(m)),
    ];
    publish();
  }

  /**
   * A change asked by another process of this node. It must carry the node's control
   * token, kept in the node's Redis: only processes that share the node's store can
   * change its entry, not any NATS client.
   */
  private async control(m: Incoming): Promise<void> {
    const body = tryDecodeJson(m.data) as { op?: unknown; weight?: unknown; ringWeight?: unknown; token?: unknown } | null;
    const token = await this.storage.metaOnce(CONTROL_TOKEN, randomBytes(16).toString('hex')).catch(() => null);
    if (token === null || body?.token !== token) {
      m.respond(errorText('BAD_REQUEST', "only this node's own processes may change its entry (the control token is in its Redis)"));
      return;
    }
    if (body.op === 'remove' && typeof (body as { id?: unknown }).id === 'string') {
      await this.removeMember((body as { id: string }).id);
      m.respond(JSON.stringify({ ok: true, view: this.view() }));
    } else if (body.op === 'announce') {
      m.respond(JSON.stringify({ ok: true, failed: await this.announceToAll() }));
    } else if (
      body.op === 'setWeights' &&
      typeof body.weight === 'number' &&
      typeof body.ringWeight === 'number' &&
      body.weight >= 0 &&
      body.ringWeight >= 0 &&
      body.weight <= MAX_WEIGHT &&
      body.ringWeight <= MAX_WEIGHT
    ) {
      await this.setWeights(body.weight, body.ringWeight);
      m.respond(JSON.stringify({ ok: true, view: this.view() }));
    } else m.respond(errorText('BAD_REQUEST', 'expected {"op":"announce"}, {"op":"remove","id":ID} or {"op":"setWeights","weight":W,"ringWeight":R}'));
  }

  /** The machine's state (stopped before start and after stop). */
  get state(): string {
    return this.actor ? stateText(this.actor.getSnapshot().value) : 'stopped';
  }

  private get context() {
    if (this.actor === null) throw new Error('gossiper not started');
    return this.actor.getSnapshot().context;
  }

  table(): Member[] {
    return Object.values(this.context.table);
  }

  entry(id: string): Member | undefined {
    return this.context.table[id];
  }

  get metrics(): GossipMetrics {
    return this.context.metrics;
  }

  private currentRings(): { ring: Ring; futureRing: Ring | null } {
    const { ringKey, table } = this.context;
    if (this.rings?.key !== ringKey) this.rings = { key: ringKey, ...ringsFor(table) };
    return this.rings;
  }

  ring(): Ring {
    return this.currentRings().ring;
  }

  futureRing(): Ring | null {
    return this.currentRings().futureRing;
  }

  isDown(id: string): boolean {
    if (id === this.self) return false;
    const at = this.context.seenAt[id];
    return at === undefined || liveness(at, this.clock.monotonic(), this.config) === 'down';
  }

  silentForMs(id: string): number {
    if (id === this.self) return 0;
    const at = this.context.seenAt[id];
    return at === undefined ? Number.POSITIVE_INFINITY : this.clock.monotonic() - at;
  }

  members(): MemberView[] {
    const { table, seenAt } = this.context;
    const now = this.clock.monotonic();
    return Object.values(table)
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .map((m) => ({
        id: m.id,
        status: statusOf(m),
        liveness: m.id === this.self ? 'alive' : liveness(seenAt[m.id] ?? -Infinity, now, this.config),
        weight: m.weight,
        ringWeight: m.ringWeight,
        generation: m.generation,
        heartbeat: m.heartbeat,
        heartbeatAgeMs: m.id === this.self ? 0 : Math.round(now - (seenAt[m.id] ?? now)),
      }));
  }
}
