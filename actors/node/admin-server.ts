import { inject, injectable } from 'tsyringe';
import { replicaCount } from '../../src/membership/placement.js';
import type { Clock } from '../../src/clock/clock.js';
import { removalRefusal } from '../../src/membership/removal.js';
import { NODE_ID } from '../../src/config.js';
import type { NodeConfig } from '../../src/config.js';
import { TOKENS } from '../../src/di/tokens.js';
import { errorReply, errorText } from '../../src/errors.js';
import type { Subjects } from '../../src/protocol/subjects.js';
import { RING_BITS } from '../../src/ring/index.js';
import type { Storage } from '../../src/storage/storage.js';
import { decodeJson, type Incoming, type Subscription, type Transport } from '../../src/transport/transport.js';
import { VERSION } from '../../src/version.js';
import { memberState, type NodeMembership } from '../../src/membership/membership.js';
import { NodeStatus, type NodeProbe } from './node-status.js';
import { checkBucketSet } from '../../src/buckets/buckets.js';
import { BUCKET_NAME } from '../../src/protocol/requests.js';
import { tryDecodeJson } from '../../src/transport/transport.js';
import { Buckets } from './buckets.js';
import type { AntiEntropyMetrics, RangeStatus } from '../anti-entropy/anti-entropy.js';
import type { TransferProgress } from './transfers.js';
import { NodeMetrics } from '../../src/metrics/metrics.js';
import type { LatencyHistogram } from '../../src/metrics/quantile.js';

/** How long a status request waits for each member's ping. */
export const PING_TIMEOUT_MS = 500;

export interface PingReply {
  ok: true;
  node: string;
  state: string;
  /** keys holding a value now */
  keys: number;
  /** keys holding only tombstones (deleted, or expired) */
  tombstones: number;
  inFlight: number;
  transfer: TransferProgress | null;
  /** client requests taken so far: on the any-node subject, on this node's own subject, forwarded by another node */
  requests: { queue: number; direct: number; forwarded: number };
  /** hints held for other nodes now, and counters since start */
  hints: { pending: number; stored: number; refused: number; delivered: number };
  /** writes that folded a key's siblings into one because they passed the bound (MAX_SIBLINGS) */
  siblingsFolded: number;
  /** expired values reaped into tombstones, and change events published or lost, since start */
  expiredReaped: number;
  staleCopies: { dropped: number; sent: number };
  tombstoneReaping: NodeProbe['tombstoneReaping'];
  awayRepair: NodeProbe['awayRepair'];
  changes: { published: number; lost: number };
  /** anti-entropy: counters since start, the machine's state, and per range (peer) the last exchange */
  antiEntropy: AntiEntropyStatus;
  /** each long-lived actor this process hosts, and its state (e.g. node: "online.serving") */
  actors: Record<string, string>;
  /** --inspect: whether this node traces, what it published, and what the bounds held back */
  trace: TraceStatus;
  /** client request latency per op since start: cumulative counts per bound of LATENCY_BOUNDS_MS */
  latency: Record<string, LatencyHistogram>;
  version: string;
}

export interface TraceStatus {
  enabled: boolean;
  published: number;
  messages: number;
  runsNotSampled: number;
  /** inspection failures, counted and kept away from the actors */
  failures: number;
  /** inspection events the Stately relay's queue dropped while the relay was unreachable */
  relayDropped: number;
}

export interface AntiEntropyStatus extends AntiEntropyMetrics {
  enabled: boolean;
  state: string;
  ranges: RangeStatus[];
}

/** One row of `dynamo status`; docs/operations.md documents each field. */
export interface MemberStatus {
  id: string;
  /** joining, up, rebalancing, leaving or left (as the member says), or down / suspect (as this node judges) */
  state: string;
  /** ms since this node last saw the member's heartbeat advance */
  heartbeatAgeMs: number;
  weight: number;
  tokens: number;
  /** fraction of the ring the member owns as first replica */
  ownership: number;
  keys: number | null;
  tombstones: number | null;
  /** why its tombstones past their grace are not reaped yet, or null */
  tombstonesWaiting: string | null;
  /** the live peers anti-entropy has yet to compare it with before it serves reads again (back after longer than the grace), or null */
  repairingFor: string[] | null;
  inFlight: number | null;
  /** hints it holds for members that were down */
  hints: number | null;
  /** a join, leave or weight change moving keys right now */
  transfer: TransferProgress | null;
  /** its anti-entropy counters and ranges, as it reports them */
  antiEntropy: AntiEntropyStatus | null;
  /** its long-lived actors' states, tracing, client requests taken and their latency (see PingReply) */
  actors: Record<string, string> | null;
  trace: TraceStatus | null;
  requests: PingReply['requests'] | null;
  latency: Record<string, LatencyHistogram> | null;
}

/** Admin subjects: this node's liveness and leave, and cluster status and ring for any client. */
@injectable()
export class AdminServer {
  constructor(
    @inject(TOKENS.Subjects) private readonly subjects: Subjects,
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Transport) private readonly transport: Transport,
    @inject(TOKENS.Storage) private readonly storage: Storage,
    @inject(TOKENS.Membership) private readonly membership: NodeMembership,
    private readonly buckets: Buckets,
    private readonly metrics: NodeMetrics,
    private readonly status_: NodeStatus,
    @inject(TOKENS.Clock) private readonly clock: Clock,
  ) {}

  listen(): Subscription[] {
    const reply = (m: Incoming, work: () => Promise<unknown>) =>
      void work().then(
        (body) => m.respond(JSON.stringify(body)),
        (e: Error) => m.respond(errorText('INTERNAL', e.message)),
      );
    return [
      this.transport.subscribe(this.subjects.ping(this.config.nodeId), (m) => reply(m, () => this.ping())),
      this.transport.subscribe(this.subjects.leave(this.config.nodeId), (m) => reply(m, () => this.leave())),
      this.transport.subscribe(this.subjects.status, (m) => reply(m, () => this.status()), { queue: this.subjects.queue.admin }),
      this.transport.subscribe(this.subjects.nodeStatus(this.config.nodeId), (m) => reply(m, () => this.status())),
      this.transport.subscribe(this.subjects.ring, (m) => reply(m, async () => this.ring()), { queue: this.subjects.queue.admin }),
      this.transport.subscribe(this.subjects.bucketSet, (m) => reply(m, () => this.bucketSet(tryDecodeJson(m.data))), { queue: this.subjects.queue.admin }),
      this.transport.subscribe(this.subjects.bucketGet, (m) => reply(m, async () => this.bucketGet(tryDecodeJson(m.data))), {
        queue: this.subjects.queue.admin,
      }),
      this.transport.subscribe(this.subjects.bucketList, (m) => reply(m, async () => this.bucketList()), { queue: this.subjects.queue.admin }),
      this.transport.subscribe(this.subjects.remove, (m) => reply(m, () => this.remove(tryDecodeJson(m.data))), { queue: this.subjects.queue.admin }),
    ];
  }

  async ping(): Promise<PingReply> {
    const probe = this.status_.probe();
    const [stored, keys, pending, latency] = await Promise.all([
      this.storage.keyCount(),
      this.storage.liveKeyCount(this.clock.now()),
      this.storage.hintCount(),
      this.metrics.latency(),
    ]);
    return {
      ok: true,
      node: this.config.nodeId,
      ...probe,
      keys,
      tombstones: Math.max(0, stored - keys),
      requests: { ...probe.requests },
      hints: { pending, ...probe.hints },
      latency,
      version: VERSION,
    };
  }

  /**
   * `admin.remove {"node"}`: take a node that is down for good out of the ring. Its ranges'
   * other replicas stream them to the nodes that gain them (anti-entropy, which compares
   * the ranges of the ring as it is now); hints held for it go to those replicas.
   */
  private async remove(body: unknown) {
    const node = (body as { node?: unknown } | null | undefined)?.node;
    if (typeof node !== 'string' || !NODE_ID.test(node)) return errorReply('BAD_REQUEST', 'expected {"node": ID}', { field: 'node' });
    const ring = this.membership.ring();
    const n = replicaCount(this.config.n, ring);
    const refusal = removalRefusal(Object.fromEntries(this.membership.table().map((m) => [m.id, m])), node, n, (id) => this.membership.isDown(id));
    if (refusal !== null) return errorReply('BAD_REQUEST', refusal, { node });
    const before = ring.ownership().get(node) ?? 0;
    await this.membership.removeMember(node);
    return { ok: true, node, ownership: before, members: this.membership.ring().members.map((m) => m.id) };
  }

  private async leave() {
    const { state } = this.status_.probe();
    if (state !== 'serving') return errorReply('UNAVAILABLE', `node ${this.config.nodeId} is ${state}; only a serving node can leave`);
    const refusal = this.status_.leaveRefusal();
    if (refusal) return errorReply('UNAVAILABLE', refusal);
    this.status_.requestLeave();
    return { ok: true, node: this.config.nodeId, keys: await this.storage.keyCount() };
  }

  private async status() {
    const ring = this.membership.ring();
    const ownership = ring.ownership();
    const tokens = new Map<string, number>();
    for (const t of ring.tokens) tokens.set(t.node, (tokens.get(t.node) ?? 0) + 1);
    const members: MemberStatus[] = await Promise.all(
      this.membership.members().map(async (m) => {
        const base = {
          id: m.id,
          state: memberState(m),
          heartbeatAgeMs: m.heartbeatAgeMs,
          weight: m.ringWeight === m.weight ? m.weight : m.ringWeight,
          tokens: tokens.get(m.id) ?? 0,
          ownership: ownership.get(m.id) ?? 0,
        };
        const unknown = {
          ...base,
          keys: null,
          tombstones: null,
          tombstonesWaiting: null,
          repairingFor: null,
          inFlight: null,
          hints: null,
          transfer: null,
          antiEntropy: null,
          actors: null,
          trace: null,
          requests: null,
          latency: null,
        };
        if (m.status === 'left' || m.liveness === 'down') return unknown;
        try {
          const p =
            m.id === this.config.nodeId
              ? await this.ping()
              : decodeJson<PingReply>(await this.transport.request(this.subjects.ping(m.id), '', PING_TIMEOUT_MS));
          return {
            ...base,
            keys: p.keys,
            tombstones: p.tombstones ?? null,
            tombstonesWaiting: p.tombstoneReaping?.waiting ?? null,
            repairingFor: p.awayRepair?.pending ?? null,
            inFlight: p.inFlight,
            hints: p.hints.pending,
            transfer: p.transfer?.phase === 'done' ? null : p.transfer,
            antiEntropy: p.antiEntropy,
            actors: p.actors ?? null,
            trace: p.trace ?? null,
            requests: p.requests ?? null,
            latency: p.latency ?? null,
          };
        } catch {
          return unknown;
        }
      }),
    );
    const n = Math.min(this.config.n, ring.size);
    return {
      ok: true,
      node: this.config.nodeId,
      version: VERSION,
      n,
      r: Math.min(this.config.r, n),
      w: Math.min(this.config.w, n),
      gossip: this.membership.metrics,
      members,
    };
  }

  private n(): number {
    return this.config.n;
  }

  /** Set a bucket's props here and push them to every live member at once (gossip carries them on). */
  private async bucketSet(body: unknown) {
    const name = (body as { bucket?: unknown } | null)?.bucket;
    const current = this.buckets.props(typeof name === 'string' ? name : 'default');
    const checked = checkBucketSet(body, current, this.n(), (r) => this.buckets.knows(r));
    if (typeof checked === 'string') return errorReply('BAD_REQUEST', checked);
    this.buckets.set(checked.bucket, checked.props);
    const unreached = await this.membership.announceToAll();
    return {
      ok: true,
      bucket: checked.bucket,
      props: checked.props,
      ...(unreached > 0 ? { note: `${unreached} member(s) did not answer; gossip will reach them` } : {}),
    };
  }

  private bucketGet(body: unknown) {
    const name = (body as { bucket?: unknown } | null)?.bucket;
    if (typeof name !== 'string' || !BUCKET_NAME.test(name)) return errorReply('BAD_REQUEST', 'expected {"bucket": NAME}');
    return { ok: true, bucket: name, props: this.buckets.props(name), set: this.buckets.isSet(name) };
  }

  private bucketList() {
    return {
      ok: true,
      buckets: Object.entries(this.buckets.table)
        .map(([bucket, e]) => ({ bucket, props: e.props }))
        .sort((a, b) => (a.bucket < b.bucket ? -1 : 1)),
    };
  }

  private ring() {
    const ring = this.membership.ring();
    return {
      ok: true,
      hash: `md5, first ${RING_BITS} bits, of "bucket/key"`,
      n: Math.min(this.config.n, ring.size),
      members: ring.members,
      tokens: ring.tokens.map((t) => [t.position, t.node]),
    };
  }
}
