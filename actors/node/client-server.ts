import assert from 'node:assert';
import { inject, injectable } from 'tsyringe';
import type { Clock } from '../../src/clock/clock.js';
import type { NodeConfig } from '../../src/config.js';
import { TOKENS, type Random } from '../../src/di/tokens.js';
import { errorText, TransportError, type ErrorReply } from '../../src/errors.js';
import type { Membership } from '../../src/membership/membership.js';
import { isErrorReply, parseBucketRequest, parseRequest, parseRequestBody, type ClientRequest, type Limits, type Op } from '../../src/protocol/requests.js';
import { batchItemText, fittedBatchReply, MAX_CLIENT_BATCH, parseBatch, parseMulti, type MultiItem } from '../../src/protocol/batch.js';
import { itemsBody } from '../../src/protocol/batch-fill.js';
import { RequestBatcher, type BatchKind } from '../../src/transport/batcher.js';
import type { Subjects } from '../../src/protocol/subjects.js';
import { pendingReplicas, sloppyPreferenceList, replicaCount } from '../../src/membership/placement.js';
import { keyPosition } from '../../src/ring/index.js';
import { decodeJson, tryDecodeJson, type Endpoint, type Incoming, type Subscription, type Transport } from '../../src/transport/transport.js';
import { VERSION } from '../../src/version.js';
import { missingResolver } from '../../src/resolvers/index.js';
import { CoordinatorRunner } from '../coordinator/coordinator-runner.js';
import { Buckets } from './buckets.js';
import { NodeMetrics } from '../../src/metrics/metrics.js';
import { outcomeOf } from '../../src/inspect/trace.js';
import { KeysServer } from './keys-server.js';

type Reply = (data: string | Uint8Array) => void;

const decoder = new TextDecoder();

/** A forwarded batch's answer: each item's reply, as text to pass on to its client. */
const FORWARDED: BatchKind<string> = {
  body: itemsBody,
  split: (data) => {
    const reply = decodeJson<{ ok: boolean; results?: unknown[]; error?: { message: string } }>(data);
    if (!reply.ok || !Array.isArray(reply.results)) return new Error(`forwarded batch refused: ${reply.error?.message ?? 'unknown error'}`);
    return reply.results.map((r) => JSON.stringify(r));
  },
};

/** The subject's `fromEnd`-th token from the end (1 is the last): a bucket's subjects are `<prefix>.kv.<bucket>.<op>`. */
function subjectToken(subject: string, fromEnd: number): string {
  const tokens = subject.split('.');
  return tokens[tokens.length - fromEnd] ?? '';
}

const OPS: readonly Op[] = ['get', 'put', 'delete'];
/** The name every node's client service has in `nats micro ls` (its metadata tells node, prefix and cluster apart). */
export const SERVICE_NAME = 'dynamo-kv';
const NO_HINTS: ReadonlyMap<string, string> = new Map();
/** Bytes of a replica message beyond the escaped value: clock, dot, bucket, key. */
const REPLICA_ENVELOPE_BYTES = 4096;
/** Bytes of forwarded requests in one batch (one larger request still goes, alone). */
const FORWARD_BATCH_BYTES = 256 * 1024;

/**
 * The client subjects: validates every request, then coordinates it here when this
 * node is among the key's N replicas, or forwards it to one that is.
 */
@injectable()
export class ClientServer {
  /** Requests this node forwards to a replica in one turn go to it as one batch. */
  private readonly forwards: RequestBatcher;
  /** Client requests taken, by the subject they came on: any node, this node, or forwarded by a node. */
  readonly received = { queue: 0, direct: 0, forwarded: 0 };

  constructor(
    @inject(TOKENS.Subjects) private readonly subjects: Subjects,
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Transport) private readonly transport: Transport,
    @inject(TOKENS.Membership) private readonly membership: Membership,
    @inject(TOKENS.Random) private readonly random: Random,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    private readonly runner: CoordinatorRunner,
    private readonly buckets: Buckets,
    private readonly metrics: NodeMetrics,
    private readonly keys: KeysServer,
  ) {
    this.forwards = new RequestBatcher(transport, { maxItems: MAX_CLIENT_BATCH, maxBytes: FORWARD_BATCH_BYTES });
  }

  get inFlight(): number {
    return this.runner.inFlight;
  }

  /** Settles once listen()'s client endpoints are subscribed. */
  ready: Promise<void> = Promise.resolve();

  /**
   * The client subjects, as one NATS service per node (`$SRV.PING`/`INFO`/`STATS`,
   * per-endpoint stats) in today's queue group, and the forwarded-batch subject.
   */
  listen(): Subscription[] {
    const self = this.config.nodeId;
    const r = this.received;
    const s = this.subjects;
    const queue = s.queue.kv;
    const counted =
      (via: 'queue' | 'direct', handle: (m: Incoming) => void) =>
      (m: Incoming): void => {
        r[via]++;
        handle(m);
      };
    const endpoints: Endpoint[] = [
      ...OPS.flatMap((op): Endpoint[] => [
        { name: op, subject: s.kv(op), queue, handler: counted('queue', (m) => this.handle(op, m)) },
        { name: `bucket-${op}`, subject: s.anyBucketKv(op), queue, handler: counted('queue', (m) => this.handleOnBucket(op, m)) },
        { name: `node-${op}`, subject: s.nodeKv(self, op), handler: counted('direct', (m) => this.handle(op, m)) },
      ]),
      { name: 'batch', subject: s.kvBatch, queue, handler: (m) => this.handleBatch(m, true, 'queue') },
      { name: 'node-batch', subject: s.nodeKvBatch(self), handler: (m) => this.handleBatch(m, true, 'direct') },
      { name: 'mget', subject: s.kvMget, queue, handler: (m) => this.runItems(m, parseMulti('mget', tryDecodeJson(m.data)), true, 'queue') },
      { name: 'mput', subject: s.kvMput, queue, handler: (m) => this.runItems(m, parseMulti('mput', tryDecodeJson(m.data)), true, 'queue') },
      { name: 'keys', subject: s.kvKeys, queue, handler: (m) => void this.keys.handle(m) },
      { name: 'bucket-keys', subject: s.anyBucketKeys, queue, handler: (m) => void this.keys.handle(m, subjectToken(m.subject, 2)) },
    ];
    const service = this.transport.serve(
      {
        name: SERVICE_NAME,
        version: VERSION,
        description: `Dynamo-style key-value store: the client subjects of node ${self}`,
        metadata: { node: self, prefix: this.config.prefix, cluster: this.config.cluster },
      },
      endpoints,
    );
    this.ready = service.ready;
    return [service, this.transport.subscribe(s.coordinateBatch(self), (m) => this.handleBatch(m, false, 'forwarded'))];
  }

  /** A bucket's limits: its n, r, w and resolver, capped by the ring's size. */
  limits(bucket: string): Limits {
    const props = this.buckets.props(bucket);
    const n = replicaCount(props.n, this.membership.ring());
    return {
      n,
      defaultR: Math.min(props.r, n),
      defaultW: Math.min(props.w, n),
      defaultTimeoutMs: this.config.defaultTimeoutMs,
      maxTimeoutMs: this.config.maxTimeoutMs,
      maxKeyBytes: this.config.maxKeyBytes,
      maxValueBytes: this.config.maxValueBytes,
      ttlMs: props.ttlMs,
      resolver: this.buckets.resolver(props.resolver) ?? missingResolver(props.resolver),
    };
  }

  /** A reply that counts and times a client's request here (a forwarded one was counted where it arrived). */
  private clientReply(op: Op, respond: Reply): Reply {
    const started = this.clock.monotonic();
    return (data) => {
      this.metrics.request(op, outcomeOf(data), this.clock.monotonic() - started);
      respond(data);
    };
  }

  private handle(op: Op, m: Incoming): void {
    const reply = this.clientReply(op, (data) => m.respond(data));
    this.safely(reply, () => {
      const limits = this.limitsOf();
      this.route(op, parseRequest(op, m.data, limits), limits.last, () => decoder.decode(m.data), reply, true);
    });
  }

  /** A request on `<p>.kv.<bucket>.<op>`: the bucket comes from the subject. */
  private handleOnBucket(op: Op, m: Incoming): void {
    const reply = this.clientReply(op, (data) => m.respond(data));
    this.safely(reply, () => {
      // The subject is `<prefix>.kv.<bucket>.<op>`: the bucket is the token before the op.
      const bucket = subjectToken(m.subject, 2);
      const limits = this.limitsOf();
      const { req, body } = parseBucketRequest(op, m.data, bucket, limits);
      this.route(op, req, limits.last, () => JSON.stringify(body), reply, true);
    });
  }

  /**
   * A batch: every item routed as a request of its own would be (coordinated here, or
   * forwarded in a batch to a replica), and one reply once every item has its answer.
   */
  private handleBatch(m: Incoming, fromClient: boolean, via: 'queue' | 'direct' | 'forwarded'): void {
    this.runItems(m, parseBatch(tryDecodeJson(m.data)), fromClient, via);
  }

  /** The items of a batch, an mget or an mput, each as a request of its own; one reply with every result, fitted to the message limit. */
  private runItems(m: Incoming, items: readonly MultiItem[] | ErrorReply, fromClient: boolean, via: 'queue' | 'direct' | 'forwarded'): void {
    if (isErrorReply(items)) return void m.respond(JSON.stringify(items));
    this.received[via] += items.length;
    const results: string[] = new Array(items.length);
    let left = items.length;
    items.forEach(({ op, body, refused }, i) => {
      let answered = false;
      const respond: Reply = (data) => {
        if (answered) return;
        answered = true;
        results[i] = typeof data === 'string' ? data : decoder.decode(data);
        if (--left === 0) m.respond(fittedBatchReply(results, this.transport.maxPayload));
      };
      const reply = fromClient ? this.clientReply(op, respond) : respond;
      if (refused !== undefined) reply(JSON.stringify(refused));
      else
        this.safely(reply, () => {
          const limits = this.limitsOf();
          this.route(op, parseRequestBody(op, body, limits), limits.last, () => JSON.stringify(body), reply, fromClient);
        });
    });
  }

  /** Run `work`; nothing a client sends should throw, but if a bug does, the client still gets an answer. */
  private safely(reply: Reply, work: () => void): void {
    try {
      work();
    } catch (e) {
      reply(errorText('INTERNAL', `request failed: ${(e as Error).message}`));
    }
  }

  /** The bucket-limits lookup parseRequest calls once it knows the bucket, keeping what it returned: limits are worked out once a request. */
  private limitsOf(): ((bucket: string) => Limits) & { last?: Limits } {
    const f: ((bucket: string) => Limits) & { last?: Limits } = (bucket: string) => (f.last = this.limits(bucket));
    return f;
  }

  /** `limits` are those of the request's bucket; `bodyText` gives the request's JSON text, should it be forwarded. */
  private route(op: Op, req: ClientRequest | ErrorReply, limits: Limits | undefined, bodyText: () => string, reply: Reply, mayForward: boolean): void {
    if (isErrorReply(req)) return void reply(JSON.stringify(req));
    // A bug if not: a parsed request has asked for its bucket's limits. safely() turns the throw into INTERNAL.
    assert(limits !== undefined, 'a request was parsed without asking for its bucket limits');

    const ring = this.membership.ring();
    if (ring.size === 0) return void reply(errorText('UNAVAILABLE', 'no node has joined the ring yet'));
    const position = keyPosition(req.bucket, req.key);
    const isDown = (id: string) => this.membership.isDown(id);
    const { replicas, hintFor } = sloppyPreferenceList(ring, position, limits.n, isDown);
    // A conditional write is checked atomically in one Redis: the key's first live replica's.
    // Sending every conditional write of a key there makes the check a real compare-and-set.
    // CRDT writes read, merge and write back there too: fewer concurrent states to merge later.
    const conditional = req.op !== 'get' && (req.condition !== undefined || req.resolver.kind === 'crdt');
    if (conditional && replicas[0] !== this.config.nodeId && mayForward) return void this.forward(op, bodyText(), reply, replicas, req.timeoutMs, true);
    // Coordinate on a real replica: a fallback's own write would be data, not the hint it must be.
    const real = replicas.filter((r) => !hintFor.has(r));
    const coordinators = real.length > 0 ? real : replicas;
    if (!coordinators.includes(this.config.nodeId)) {
      if (mayForward) return void this.forward(op, bodyText(), reply, coordinators, req.timeoutMs, false);
      return void reply(errorText('UNAVAILABLE', 'this node is not a replica of the key (ring views disagree); retry'));
    }
    if (req.op === 'put' && req.value !== undefined && !this.fitsTransport(req.value)) {
      return void reply(
        errorText('TOO_LARGE', `value does not fit the transport's ${this.transport.maxPayload}-byte message limit`, { limit: this.transport.maxPayload }),
      );
    }
    if (this.runner.inFlight >= this.config.maxInFlight) {
      return void reply(errorText('UNAVAILABLE', `node is at its limit of ${this.config.maxInFlight} requests in flight`));
    }
    const needed = req.op === 'get' ? req.r : req.w;
    if (replicas.length < needed) {
      // Too few live replicas: say so now rather than wait on nodes known to be down.
      return void reply(errorText('QUORUM_NOT_MET', `only ${replicas.length} of the key's replicas are up; ${needed} are required`, { acks: 0, needed }));
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
   * Pass the request to a replica, in a batch with the others this node forwards there
   * in the same turn; try the next replica when one has no responder. `inOrder` starts
   * at the first replica (conditional writes); otherwise a random one spreads the load,
   * replicas this node has not heard from for two gossip rounds last. A replica cut off
   * by a partition is not down yet for a while: one that has not answered by half the
   * time left, and has not been heard from meanwhile, is passed over for the next one,
   * as Riak retries a put whose remote coordinator does not answer; one that answered another
   * forwarded request meanwhile is only busy and is waited for. Never for `inOrder`
   * requests, which must not run twice (a counter would count twice); a put or delete
   * that does run twice leaves two versions of the same write, which reads merge.
   */
  private async forward(op: Op, bodyText: string, reply: Reply, replicas: readonly string[], timeoutMs: number, inOrder: boolean): Promise<void> {
    const quietMs = 2 * this.config.gossipIntervalMs;
    let order = replicas;
    if (!inOrder) {
      const start = Math.floor(this.random() * replicas.length);
      const rotated = [...replicas.slice(start), ...replicas.slice(0, start)];
      const heard = rotated.filter((id) => this.membership.silentForMs(id) <= quietMs);
      order = heard.length === rotated.length ? rotated : [...heard, ...rotated.filter((id) => !heard.includes(id))];
    }
    const deadline = this.clock.monotonic() + timeoutMs;
    const item = batchItemText(op, bodyText);
    for (const [i, target] of order.entries()) {
      const remaining = deadline - this.clock.monotonic();
      if (remaining <= 0) break;
      try {
        // A little longer than the request's own timeout, so the coordinator's TIMEOUT reply wins the race.
        const answer = this.forwards.request(this.subjects.coordinateBatch(target), FORWARDED, item, remaining + 250);
        if (!inOrder && i < order.length - 1) {
          const early = await this.within(answer, remaining / 2);
          if (early === undefined && this.membership.silentForMs(target) > quietMs && !this.answeredWithin(target, quietMs)) {
            answer.catch(() => {});
            continue;
          }
          reply(early ?? (await answer));
        } else {
          reply(await answer);
        }
        this.answeredAt.set(target, this.clock.monotonic());
        return;
      } catch (e) {
        if (e instanceof TransportError && e.kind === 'no-responders') continue;
        return void reply(errorText('TIMEOUT', `forwarding to replica ${target} timed out after ${timeoutMs} ms`));
      }
    }
    reply(errorText('UNAVAILABLE', `none of the key's replicas (${replicas.join(', ')}) is reachable`));
  }

  /** When each replica last answered a request forwarded to it. */
  private readonly answeredAt = new Map<string, number>();

  /**
   * A replica that answered a forwarded request within `ms` is busy, not cut off: under load
   * its heartbeats can look late, and passing it over would run the request twice.
   */
  private answeredWithin(target: string, ms: number): boolean {
    const at = this.answeredAt.get(target);
    return at !== undefined && this.clock.monotonic() - at <= ms;
  }

  /** What `p` resolves to within `ms`, or undefined if it has not by then (its rejection is thrown). */
  private within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
    return new Promise<T | undefined>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => resolve(undefined), ms);
      p.then(
        (v) => {
          this.clock.clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          this.clock.clearTimeout(timer);
          reject(e);
        },
      );
    });
  }
}
