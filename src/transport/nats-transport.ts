import { connect, NoRespondersError, PermissionViolationError, RequestError, TimeoutError, type Msg, type NatsConnection } from '@nats-io/transport-node';
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

export class NatsTransport implements Transport {
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

  async request(subject: string, data: Uint8Array | string, timeoutMs: number): Promise<Uint8Array> {
    try {
      const m = await this.nc.request(subject, data, { timeout: Math.max(1, Math.floor(timeoutMs)) });
      return m.data;
    } catch (e) {
      throw toTransportError(e, subject);
    }
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
    if (!this.owned || this.nc.isClosed()) return;
    await this.nc.drain().catch(() => this.nc.close());
  }
}
