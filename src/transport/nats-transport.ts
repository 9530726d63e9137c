import {
  connect,
  createInbox,
  NoRespondersError,
  PermissionViolationError,
  RequestError,
  TimeoutError,
  type Msg,
  type NatsConnection,
  type Subscription as NatsSubscription,
} from '@nats-io/transport-node';
import { TransportError } from '../errors.js';
import { Svcm } from '@nats-io/services';
import type { Endpoint, Incoming, ServiceSpec, ServiceSubscription, SubscribeOptions, Subscription, Transport } from './transport.js';
import { securityOptions, type NatsSecurity } from './nats-security.js';

function toTransportError(e: unknown, subject: string): TransportError {
  if (e instanceof RequestError && e.isNoResponders()) return new TransportError(`no responders on ${subject}`, 'no-responders', { cause: e });
  if (e instanceof NoRespondersError) return new TransportError(`no responders on ${subject}`, 'no-responders', { cause: e });
  const permission = e instanceof PermissionViolationError ? e : e instanceof RequestError && e.cause instanceof PermissionViolationError ? e.cause : null;
  if (permission) return new TransportError(`NATS refused ${subject}`, 'refused', { cause: e });
  if (e instanceof TimeoutError || (e instanceof RequestError && e.cause instanceof TimeoutError)) {
    return new TransportError(`request on ${subject} timed out`, 'timeout', { cause: e });
  }
  return new TransportError(`request on ${subject} failed: ${(e as Error).message}`, 'other', { cause: e });
}

/** A NATS message as the actors see it: a message sent without a reply subject ignores its answer. */
function incoming(m: Msg): Incoming {
  return {
    subject: m.subject,
    data: m.data,
    respond: (data) => {
      if (m.reply) m.respond(data);
    },
  };
}

/** A first connection that takes longer has failed (nats.js waits 20 s by default). */
const CONNECT_TIMEOUT_MS = 5000;

/**
 * A connection whose server stops answering (a black-holed link: no reset, TCP just
 * hangs) is given up after PING_INTERVAL_MS × (MAX_PINGS_OUT + 1), about 3 s, and
 * nats.js reconnects to another server of the cluster (it learns them from the server
 * it is on); measured, a node whose connection was black-holed answered again through
 * another server 8 s after the cut. nats.js's default, 2 minutes and 2 pings, leaves a
 * node cut off for up to 6 minutes while the rest of its cluster is reachable.
 */
export const PING_INTERVAL_MS = 1000;
export const MAX_PINGS_OUT = 2;

/** What a failed connect means for the person who has to fix it. */
function connectProblem(e: Error, security: NatsSecurity): string {
  const m = e.message;
  if (/certificate|self[- ]signed|unable to verify/i.test(m)) {
    return `${m}: this NATS's TLS certificate is not trusted here${security.tlsCa ? ` by ${security.tlsCa}` : ''}; give the CA that signed it with --tls-ca (DYNAMO_NATS_TLS_CA)`;
  }
  if (/authorization violation|authentication/i.test(m)) {
    const how = security.user ?? security.creds ?? security.nkey ?? security.token;
    return `${m}: NATS refused the login${how === undefined ? ' (none was given: --user and --password, --token, --creds or --nkey)' : ''}`;
  }
  if (/tls/i.test(m) && security.tlsCa === undefined && security.tlsCert === undefined) return `${m} (does this NATS want TLS? give --tls-ca)`;
  if (/timeout/i.test(m) && security.tlsCert === undefined && security.tlsCa !== undefined) {
    return `${m} after ${CONNECT_TIMEOUT_MS} ms (a NATS that verifies client certificates also drops a client without --tls-cert and --tls-key)`;
  }
  return m;
}

/** How often unanswered requests are checked against their deadlines (while any are waiting). */
const SWEEP_MS = 10;

interface Waiting {
  readonly subject: string;
  readonly deadline: number;
  readonly resolve: (data: Uint8Array) => void;
  readonly reject: (e: TransportError) => void;
}

/**
 * Requests share one reply subscription (`<inbox>.<n>`), one map of waiting requests and
 * one sweeping timer. A nats.js request makes its own timer, promise pair, token and two
 * Error objects (one for a request that succeeded): measured on one connection, 29 µs of
 * the requester's CPU per request against 14 here. Errors mean what nats.js's would: no
 * responders (the server's 503), a refused subject (the server's permission error), a timeout.
 */
class ReplyMux {
  private readonly prefix: string;
  private readonly waiting = new Map<string, Waiting>();
  private sequence = 0;
  private sweeper: ReturnType<typeof setInterval> | null = null;
  private readonly sub: NatsSubscription;

  constructor(private readonly nc: NatsConnection) {
    this.prefix = `${createInbox()}.`;
    this.sub = nc.subscribe(`${this.prefix}*`, {
      callback: (err, m) => {
        if (err) {
          // NATS refused the inbox subscription (a user without _INBOX.>): the next request makes a new one.
          this.broken = true;
          return this.failAll(toTransportError(err, `the reply inbox ${this.prefix}*`));
        }
        const id = m.subject.slice(this.prefix.length);
        const w = this.waiting.get(id);
        if (w === undefined) return;
        this.waiting.delete(id);
        if (m.data.length === 0 && m.headers?.code === 503) w.reject(new TransportError(`no responders on ${w.subject}`, 'no-responders'));
        else w.resolve(m.data);
      },
    });
    void this.watchRefusals();
    void nc.closed().then(() => this.close());
  }

  /** The inbox subscription was refused: this mux takes no more requests. */
  broken = false;

  request(subject: string, data: Uint8Array | string, timeoutMs: number): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      const id = String(++this.sequence);
      this.waiting.set(id, { subject, deadline: performance.now() + timeoutMs, resolve, reject });
      if (this.sweeper === null) this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
      try {
        this.nc.publish(subject, data, { reply: this.prefix + id });
      } catch (e) {
        this.waiting.delete(id);
        reject(toTransportError(e, subject));
      }
    });
  }

  private sweep(): void {
    const now = performance.now();
    for (const [id, w] of this.waiting) {
      if (w.deadline > now) continue;
      this.waiting.delete(id);
      w.reject(new TransportError(`request on ${w.subject} timed out`, 'timeout'));
    }
    if (this.waiting.size === 0 && this.sweeper !== null) {
      clearInterval(this.sweeper);
      this.sweeper = null;
    }
  }

  /** A publish NATS refused fails the requests waiting on that subject at once, as nats.js's own requests do. */
  private async watchRefusals(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (this.broken || this.closed) return;
      if (s.type !== 'error' || !(s.error instanceof PermissionViolationError) || s.error.operation !== 'publish') continue;
      const subject = s.error.subject;
      for (const [id, w] of this.waiting) {
        if (w.subject !== subject) continue;
        this.waiting.delete(id);
        w.reject(new TransportError(`NATS refused ${subject}`, 'refused', { cause: s.error }));
      }
    }
  }

  failAll(e: TransportError): void {
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
  }

  private closed = false;

  close(): void {
    this.closed = true;
    this.failAll(new TransportError('the NATS connection was closed', 'closed'));
    if (!this.sub.isClosed() && !this.nc.isClosed()) this.sub.unsubscribe();
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.sweeper = null;
  }
}

export class NatsTransport implements Transport {
  private mux: ReplyMux | null = null;

  private constructor(
    readonly nc: NatsConnection,
    private readonly owned: boolean,
  ) {}

  /** Connect to `url` (comma-separated for several servers), logging in and checking TLS as `security` says. */
  static async connect(url: string, name?: string, security: NatsSecurity = {}): Promise<NatsTransport> {
    const servers = url
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const secured = securityOptions(security);
    // noAsyncTraces: nats.js otherwise builds two Error objects (stack traces) per request, about a fifth of a node's CPU.
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers,
        name,
        timeout: CONNECT_TIMEOUT_MS,
        pingInterval: PING_INTERVAL_MS,
        maxPingOut: MAX_PINGS_OUT,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        noAsyncTraces: true,
        ...secured,
      });
    } catch (e) {
      throw new Error(connectProblem(e as Error, security), { cause: e });
    }
    return new NatsTransport(nc, true);
  }

  /** Wrap a connection the caller owns; close() will not close it. */
  static wrap(nc: NatsConnection): NatsTransport {
    return new NatsTransport(nc, false);
  }

  get maxPayload(): number {
    return this.nc.info?.max_payload ?? 1024 * 1024;
  }

  request(subject: string, data: Uint8Array | string, timeoutMs: number): Promise<Uint8Array> {
    if (this.nc.isClosed()) return Promise.reject(new TransportError(`request on ${subject} failed: the NATS connection is closed`, 'closed'));
    try {
      if (this.mux === null || this.mux.broken) this.mux = new ReplyMux(this.nc);
    } catch (e) {
      // A connection that is draining or closing takes no new subscription.
      return Promise.reject(toTransportError(e, subject));
    }
    return this.mux.request(subject, data, Math.max(1, Math.floor(timeoutMs)));
  }

  publish(subject: string, data: Uint8Array | string): void {
    this.nc.publish(subject, data);
  }

  subscribe(subject: string, handler: (msg: Incoming) => void, options: SubscribeOptions = {}): Subscription {
    let reported = false;
    return this.nc.subscribe(subject, {
      queue: options.queue,
      callback: (err, m) => {
        if (err) {
          // A subscription NATS refuses (a permission the user lacks) says so once, not per message.
          if (!reported) process.stderr.write(`NATS refused the subscription to ${subject}: ${err.message}\n`);
          reported = true;
          return;
        }
        handler(incoming(m));
      },
    });
  }

  serve(spec: ServiceSpec, endpoints: readonly Endpoint[]): ServiceSubscription {
    // queue '' in the service config: each endpoint says its own group, or none.
    const service = new Svcm(this.nc).add({ ...spec, metadata: { ...spec.metadata }, queue: '' });
    const ready = service.then((svc) => {
      for (const e of endpoints) {
        svc.addEndpoint(e.name, {
          subject: e.subject,
          queue: e.queue ?? '',
          handler: (err, m) => {
            if (err) return;
            e.handler(incoming(m));
          },
        });
      }
    });
    return {
      ready,
      unsubscribe: () => void service.then((svc) => svc.stop()).catch(() => {}),
    };
  }

  async flush(): Promise<void> {
    await this.nc.flush();
  }

  async close(): Promise<void> {
    this.mux?.close();
    this.mux = null;
    if (!this.owned || this.nc.isClosed()) return;
    await this.nc.drain().catch(() => this.nc.close());
  }
}
