import { connect, NoRespondersError, RequestError, TimeoutError, type NatsConnection } from '@nats-io/transport-node';
import { TransportError } from '../errors.js';
import type { Incoming, SubscribeOptions, Subscription, Transport } from './transport.js';

function toTransportError(e: unknown, subject: string): TransportError {
  if (e instanceof RequestError && e.isNoResponders()) return new TransportError(`no responders on ${subject}`, 'no-responders', { cause: e });
  if (e instanceof NoRespondersError) return new TransportError(`no responders on ${subject}`, 'no-responders', { cause: e });
  if (e instanceof TimeoutError || (e instanceof RequestError && e.cause instanceof TimeoutError)) {
    return new TransportError(`request on ${subject} timed out`, 'timeout', { cause: e });
  }
  return new TransportError(`request on ${subject} failed: ${(e as Error).message}`, 'other', { cause: e });
}

export class NatsTransport implements Transport {
  private constructor(
    readonly nc: NatsConnection,
    private readonly owned: boolean,
  ) {}

  /** Connect to `url` (comma-separated for several servers). */
  static async connect(url: string, name?: string): Promise<NatsTransport> {
    const servers = url
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    // noAsyncTraces: nats.js otherwise builds two Error objects (stack traces) per request, about a fifth of a node's CPU.
    const nc = await connect({ servers, name, maxReconnectAttempts: -1, reconnectTimeWait: 250, noAsyncTraces: true });
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
    return this.nc.subscribe(subject, {
      queue: options.queue,
      callback: (err, m) => {
        if (err) return;
        handler({
          subject: m.subject,
          data: m.data,
          respond: (data) => {
            if (m.reply) m.respond(data);
          },
        });
      },
    });
  }

  async flush(): Promise<void> {
    await this.nc.flush();
  }

  async close(): Promise<void> {
    if (!this.owned || this.nc.isClosed()) return;
    await this.nc.drain().catch(() => this.nc.close());
  }
}
