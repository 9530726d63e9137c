import { inject, injectable } from 'tsyringe';
import type { Clock } from '../../src/clock/clock.js';
import type { NodeConfig } from '../../src/config.js';
import { TOKENS, type Random } from '../../src/di/tokens.js';
import { errorReply, TransportError } from '../../src/errors.js';
import type { Membership } from '../../src/membership/membership.js';
import { isErrorReply, parseRequest, type Limits, type Op } from '../../src/protocol/requests.js';
import { subjects, type Subjects } from '../../src/protocol/subjects.js';
import { pendingReplicas, sloppyPreferenceList } from '../../src/membership/placement.js';
import { keyPosition } from '../../src/ring/index.js';
import type { Incoming, Subscription, Transport } from '../../src/transport/transport.js';
import { missingResolver } from '../../src/resolvers/index.js';
import { CoordinatorRunner } from '../coordinator/coordinator-runner.js';
import { Buckets } from './buckets.js';
import { NodeMetrics } from '../../src/metrics/metrics.js';
import { outcomeOf } from '../../src/inspect/trace.js';

type Reply = (data: string | Uint8Array) => void;

const OPS: readonly Op[] = ['get', 'put', 'delete'];
const NO_HINTS: ReadonlyMap<string, string> = new Map();
/** Bytes of a replica message beyond the escaped value: clock, dot, bucket, key. */
const REPLICA_ENVELOPE_BYTES = 4096;

/**
 * The client subjects: validates every request, then coordinates it here when this
 * node is among the key's N replicas, or forwards it to one that is.
 */
@injectable()
export class ClientServer {
  private readonly subjects: Subjects;
  /** Client requests taken, by the subject they came on: any node, this node, or forwarded by a node. */
  readonly received = { queue: 0, direct: 0, forwarded: 0 };

  constructor(
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Transport) private readonly transport: Transport,
    @inject(TOKENS.Membership) private readonly membership: Membership,
    @inject(TOKENS.Random) private readonly random: Random,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    private readonly runner: CoordinatorRunner,
    private readonly buckets: Buckets,
    private readonly metrics: NodeMetrics,
  ) {
    this.subjects = subjects(config.prefix);
  }

  get inFlight(): number {
    return this.runner.inFlight;
  }

  listen(): Subscription[] {
    const self = this.config.nodeId;
    const r = this.received;
    return OPS.flatMap((op) => [
      this.transport.subscribe(this.subjects.kv(op), (m) => (r.queue++, this.handle(op, m, true)), { queue: this.subjects.queue.kv }),
      this.transport.subscribe(this.subjects.nodeKv(self, op), (m) => (r.direct++, this.handle(op, m, true))),
      this.transport.subscribe(this.subjects.coordinate(self, op), (m) => (r.forwarded++, this.handle(op, m, false))),
    ]);
  }

  /** A bucket's limits: its n, r, w and resolver, capped by the ring's size. */
  limits(bucket: string): Limits {
    const props = this.buckets.props(bucket);
    const n = Math.max(1, Math.min(props.n, this.membership.ring().size));
    return {
      n,
      defaultR: Math.min(props.r, n),
      defaultW: Math.min(props.w, n),
      defaultTimeoutMs: this.config.defaultTimeoutMs,
      maxTimeoutMs: this.config.maxTimeoutMs,
      maxKeyBytes: this.config.maxKeyBytes,
      maxValueBytes: this.config.maxValueBytes,
      resolver: this.buckets.resolver(props.resolver) ?? missingResolver(props.resolver),
    };
  }

  private handle(op: Op, m: Incoming, fromClient: boolean): void {
    // Requests from clients are counted and timed here; a forwarded one was counted where it arrived.
    const started = fromClient ? this.clock.monotonic() : 0;
    const reply: Reply = fromClient
      ? (data) => {
          this.metrics.request(op, outcomeOf(data), this.clock.monotonic() - started);
          m.respond(data);
        }
      : (data) => m.respond(data);
    try {
      this.route(op, m, reply, fromClient);
    } catch (e) {
      // Nothing a client sends should get here; if a bug does, the client still gets an answer.
      reply(JSON.stringify(errorReply('INTERNAL', `request failed: ${(e as Error).message}`)));
    }
  }

  private route(op: Op, m: Incoming, reply: Reply, mayForward: boolean): void {
    // The bucket's limits, worked out once: parseRequest asks for them when it knows the bucket.
    let limits: Limits | undefined;
    const req = parseRequest(op, m.data, (bucket) => (limits = this.limits(bucket)));
    if (isErrorReply(req) || limits === undefined) return reply(JSON.stringify(req));

    const ring = this.membership.ring();
    if (ring.size === 0) return reply(JSON.stringify(errorReply('UNAVAILABLE', 'no node has joined the ring yet')));
    const position = keyPosition(req.bucket, req.key);
    const isDown = (id: string) => this.membership.isDown(id);
    const { replicas, hintFor } = sloppyPreferenceList(ring, position, limits.n, isDown);
    // A conditional write is checked atomically in one Redis: the key's first live replica's.
    // Sending every conditional write of a key there makes the check a real compare-and-set.
    // CRDT writes read, merge and write back there too: fewer concurrent states to merge later.
    const conditional = req.op !== 'get' && (req.condition !== undefined || req.resolver.kind === 'crdt');
    if (conditional && replicas[0] !== this.config.nodeId && mayForward) return void this.forward(op, m, reply, replicas, req.timeoutMs, true);
    // Coordinate on a real replica: a fallback's own write would be data, not the hint it must be.
    const real = replicas.filter((r) => !hintFor.has(r));
    const coordinators = real.length > 0 ? real : replicas;
    if (!coordinators.includes(this.config.nodeId)) {
      if (mayForward) return void this.forward(op, m, reply, coordinators, req.timeoutMs, false);
      return reply(JSON.stringify(errorReply('UNAVAILABLE', 'this node is not a replica of the key (ring views disagree); retry')));
    }
    if (req.op === 'put' && req.value !== undefined && !this.fitsTransport(req.value)) {
      return reply(
        JSON.stringify(errorReply('TOO_LARGE', `value does not fit the transport's ${this.transport.maxPayload}-byte message limit`, { limit: this.transport.maxPayload })),
      );
    }
    if (this.runner.inFlight >= this.config.maxInFlight) {
      return reply(JSON.stringify(errorReply('UNAVAILABLE', `node is at its limit of ${this.config.maxInFlight} requests in flight`)));
    }
    const needed = req.op === 'get' ? req.r : req.w;
    if (replicas.length < needed) {
      // Too few live replicas: say so now rather than wait on nodes known to be down.
      return reply(
        JSON.stringify(errorReply('QUORUM_NOT_MET', `only ${replicas.length} of the key's replicas are up; ${needed} are required`, { acks: 0, needed })),
      );
    }
    const extras = req.op === 'get' ? [] : pendingReplicas(this.membership.futureRing(), position, limits.n, replicas, isDown);
    this.runner.run(req, replicas, extras, req.op === 'get' ? NO_HINTS : hintFor, reply);
  }

  /** Replica messages carry the value escaped inside a JSON string; make sure that still fits. */
  private fitsTransport(valueText: string): boolean {
    const room = this.transport.maxPayload - REPLICA_ENVELOPE_BYTES;
    if (valueText.length * 2 <= room) return true;
    return Buffer.byteLength(JSON.stringify(valueText), 'utf8') <= room;
  }

  /**
   * Pass the request, unchanged, to a replica; try the next when one has no responder.
   * `inOrder` starts at the first replica (conditional writes); otherwise a random one spreads the load.
   */
  private async forward(op: Op, m: Incoming, reply: Reply, replicas: readonly string[], timeoutMs: number, inOrder: boolean): Promise<void> {
    const start = inOrder ? 0 : Math.floor(this.random() * replicas.length);
    const deadline = this.clock.monotonic() + timeoutMs;
    for (let i = 0; i < replicas.length; i++) {
      const target = replicas[(start + i) % replicas.length]!;
      const remaining = deadline - this.clock.monotonic();
      if (remaining <= 0) break;
      try {
        // A little longer than the request's own timeout, so the coordinator's TIMEOUT reply wins the race.
        reply(await this.transport.request(this.subjects.coordinate(target, op), m.data, remaining + 250));
        return;
      } catch (e) {
        if (e instanceof TransportError && e.kind === 'no-responders') continue;
        return reply(JSON.stringify(errorReply('TIMEOUT', `forwarding to replica ${target} timed out after ${timeoutMs} ms`)));
      }
    }
    reply(JSON.stringify(errorReply('UNAVAILABLE', `none of the key's replicas (${replicas.join(', ')}) is reachable`)));
  }
}
