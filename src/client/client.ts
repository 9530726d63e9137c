import type { NatsSecurity } from '../transport/nats-security.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { TransportError, type ErrorCode } from '../errors.js';
import { subjects, type Subjects } from '../protocol/subjects.js';
import type { Op } from '../protocol/requests.js';
import { keyPosition, Ring, type RingMember } from '../ring/index.js';
import { NatsTransport } from '../transport/nats-transport.js';
import { decodeJson, type Transport } from '../transport/transport.js';
import { RequestBatcher, type BatchKind } from '../transport/batcher.js';
import { batchItemText, MAX_CLIENT_BATCH } from '../protocol/batch.js';
import { itemsBody } from '../protocol/batch-fill.js';
import { AbortedError, ConflictError, DynamoTimeoutError, errorFromReply, UnavailableError, type DynamoError } from './errors.js';
import { present } from '../invariant.js';
import { Semaphore } from './semaphore.js';
import { Watch, type WatchOptions } from './watch.js';

export interface ClientOptions {
  /** subject prefix of the cluster (default `dynamo`) */
  readonly prefix?: string;
  /** bucket used when a call names none (default `default`) */
  readonly bucket?: string;
  /** per-request timeout in ms when a call gives none (default 1000) */
  readonly timeoutMs?: number;
  /** requests in flight at once; further calls wait their turn (default 1024) */
  readonly maxInFlight?: number;
  /** send each request straight to a node of the key's preference list (default false: any node, which forwards) */
  readonly partitionAware?: boolean;
  /** how often a partition-aware client refreshes its copy of the ring, in ms (default 5000) */
  readonly ringRefreshMs?: number;
  /**
   * coalesce the requests made in one event-loop turn to the same node into one message on
   * the batch subject, as ioredis pipelines commands (default true); each call still gets its
   * own result or error
   */
  readonly batch?: boolean;
  /**
   * how `connect()` logs in to NATS and checks its TLS: a credentials or nkey seed file, a
   * user and password, or a token, and CA/client certificate files (default: none)
   */
  readonly security?: NatsSecurity;
}

/** What one key of a getMany or putMany came to. */
export type Outcome<T> =
  | { readonly key: string; readonly ok: true; readonly result: T }
  | { readonly key: string; readonly ok: false; readonly error: DynamoError };

export interface CallOptions {
  readonly bucket?: string;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export interface GetOptions extends CallOptions {
  /** replicas that must answer (default: the cluster's R) */
  readonly r?: number;
}

export interface WriteOptions extends CallOptions {
  /** replicas that must acknowledge (default: the cluster's W) */
  readonly w?: number;
  /** the context of the read this write is based on: the write supersedes what that read saw */
  readonly context?: string | null;
  /** a read's context that must still cover what the key holds, or the write fails with ConflictError (and supersedes it otherwise) */
  readonly ifMatch?: string;
  /** create only: fail with ConflictError if the key holds a value */
  readonly ifNoneMatch?: boolean;
  /** put: the value expires this many ms after the write (default: the bucket's time to live, if any) */
  readonly ttlMs?: number;
}

export interface KeysOptions extends Omit<CallOptions, 'signal'> {
  /** only keys that start with this */
  readonly prefix?: string;
  /** keys per page, 1 to 1000 (default 100) */
  readonly limit?: number;
  /** live replicas asked per range of the ring (default 1; more sees writes that reached fewer replicas) */
  readonly r?: number;
}

export interface GetResult<T> {
  readonly found: boolean;
  /** one value, or several when concurrent versions are returned unresolved */
  readonly values: T[];
  /** pass to put/delete to supersede what this read saw; null when not found */
  readonly context: string | null;
}

export interface PutResult {
  readonly context: string;
}

export interface UpdateOptions extends GetOptions, Omit<WriteOptions, 'context' | 'ifMatch' | 'ifNoneMatch'> {
  /** attempts before giving up on CONFLICT (default 5) */
  readonly maxAttempts?: number;
}

/** Backoff between update attempts: doubles from this, with jitter, to UPDATE_MAX_BACKOFF_MS. */
export const UPDATE_BASE_BACKOFF_MS = 10;
export const UPDATE_MAX_BACKOFF_MS = 500;

interface RingView {
  readonly ring: Ring;
  readonly n: number;
}

type Reply = { ok: true; found?: boolean; values?: unknown[]; context?: string | null } | { ok: false; error: { code: ErrorCode; message: string } };

/**
 * A client for the cluster. Calls made in the same event-loop turn go to a node as one
 * batch message (`batch: false` sends each call as its own request); errors are typed
 * (`QuorumNotMetError`, `ConflictError`...).
 *
 *   const client = await DynamoClient.connect('nats://127.0.0.1:4222');
 *   await client.put('cart:alice', ['book']);
 *   const { values, context } = await client.get<string[]>('cart:alice');
 */
export class DynamoClient {
  private readonly subjects: Subjects;
  private readonly slots: Semaphore;
  private ringView: RingView | null = null;
  private ringFetch: Promise<void> | null = null;
  private refreshTimer: ReturnType<typeof setInterval> | null = null;
  private readonly batcher: RequestBatcher | null;

  constructor(
    private readonly transport: Transport,
    private readonly options: ClientOptions = {},
    private readonly ownsTransport = false,
  ) {
    this.subjects = subjects(options.prefix ?? 'dynamo');
    this.slots = new Semaphore(options.maxInFlight ?? 1024);
    this.batcher = options.batch === false ? null : new RequestBatcher(transport, { maxItems: MAX_CLIENT_BATCH, maxBytes: CLIENT_BATCH_BYTES });
    if (options.partitionAware) {
      this.refreshTimer = setInterval(() => void this.refreshRing().catch(() => {}), options.ringRefreshMs ?? 5000);
      this.refreshTimer.unref();
    }
  }

  /** Connect to the cluster's NATS (comma-separate several server URLs). */
  static async connect(url: string, options: ClientOptions = {}): Promise<DynamoClient> {
    return new DynamoClient(await NatsTransport.connect(url, 'dynamo-client', options.security), options, true);
  }

  /** Use a NATS connection the application already has; close() leaves it open. */
  static fromConnection(nc: NatsConnection, options: ClientOptions = {}): DynamoClient {
    return new DynamoClient(NatsTransport.wrap(nc), options, false);
  }

  async get<T = unknown>(key: string, opts: GetOptions = {}): Promise<GetResult<T>> {
    const reply = await this.call('get', key, { bucket: opts.bucket, r: opts.r, timeoutMs: opts.timeoutMs }, opts);
    return { found: reply.found ?? false, values: (reply.values ?? []) as T[], context: reply.context ?? null };
  }

  async put<T = unknown>(key: string, value: T, opts: WriteOptions = {}): Promise<PutResult> {
    if (value === undefined) throw new TypeError('put needs a value (null is a value; undefined is not)');
    const reply = await this.call('put', key, { ...writeFields(opts), value, ttlMs: opts.ttlMs }, opts);
    return { context: reply.context as string };
  }

  /**
   * Apply an op to a CRDT bucket's key: `{add: [...], remove: [...]}` for an orset
   * bucket, `{incr: n}` for a counter bucket. The node merges it into the stored state.
   */
  async applyOp(key: string, op: Record<string, unknown>, opts: WriteOptions = {}): Promise<PutResult> {
    const reply = await this.call('put', key, { ...writeFields(opts), op }, opts);
    return { context: reply.context as string };
  }

  async delete(key: string, opts: WriteOptions = {}): Promise<void> {
    await this.call('delete', key, writeFields(opts), opts);
  }

  /**
   * Read, let `fn` turn the current values (several if there are siblings) into the
   * new value, and write it back with the read's context, so it supersedes what was
   * read. If another writer got in between, retry with backoff (up to `maxAttempts`).
   */
  async update<T = unknown>(key: string, fn: (values: T[], found: boolean) => T | Promise<T>, opts: UpdateOptions = {}): Promise<PutResult & { value: T }> {
    const attempts = opts.maxAttempts ?? 5;
    for (let attempt = 1; ; attempt++) {
      const current = await this.get<T>(key, opts);
      const value = await fn(current.values, current.found);
      try {
        const put = await this.put(key, value, current.context === null ? { ...opts, ifNoneMatch: true } : { ...opts, ifMatch: current.context });
        return { ...put, value };
      } catch (e) {
        if (!(e instanceof ConflictError) || attempt >= attempts) throw e;
        const backoff = Math.min(UPDATE_MAX_BACKOFF_MS, UPDATE_BASE_BACKOFF_MS * 2 ** (attempt - 1));
        await new Promise((r) => setTimeout(r, backoff / 2 + Math.random() * (backoff / 2)));
      }
    }
  }

  /**
   * Read many keys in one request (`<p>.kv.mget`, at most 1024): one outcome per key, in
   * order, each its own success or error (not atomic). Throws only when the request as a
   * whole fails (refused, or no reply in time).
   */
  async getMany<T = unknown>(keys: readonly string[], opts: Omit<GetOptions, 'signal'> = {}): Promise<Outcome<GetResult<T>>[]> {
    const results = await this.many(this.subjects.kvMget, { keys, r: opts.r }, opts);
    return results.map((reply, i) =>
      reply.ok
        ? {
            key: present(keys[i], 'a result per key'),
            ok: true,
            result: { found: reply.found ?? false, values: (reply.values ?? []) as T[], context: reply.context ?? null },
          }
        : { key: present(keys[i], 'a result per key'), ok: false, error: errorFromReply(reply.error) },
    );
  }

  /** Write many keys in one request (`<p>.kv.mput`, at most 1024): one outcome per item, in order, not atomic. */
  async putMany<T = unknown>(
    items: readonly { readonly key: string; readonly value: T; readonly context?: string | null; readonly ttlMs?: number }[],
    opts: Pick<WriteOptions, 'bucket' | 'w' | 'timeoutMs'> = {},
  ): Promise<Outcome<PutResult>[]> {
    const body = items.map(({ key, value, context, ttlMs }) => ({ key, value, ...(context ? { context } : {}), ...(ttlMs === undefined ? {} : { ttlMs }) }));
    const results = await this.many(this.subjects.kvMput, { items: body, w: opts.w }, opts);
    return results.map((reply, i) => {
      const key = present(items[i], 'a result per item').key;
      return reply.ok ? { key, ok: true, result: { context: reply.context as string } } : { key, ok: false, error: errorFromReply(reply.error) };
    });
  }

  /**
   * A bucket's keys (`<p>.kv.keys`), page by page in UTF-8 byte order, as an async
   * iterator: `for await (const page of client.keys({ prefix: 'user:' }))`. Each page is
   * one request of at most `limit` keys (default 100, at most 1000); a page may hold
   * fewer and still not be the last. Tombstones are not listed.
   */
  async *keys(opts: KeysOptions = {}): AsyncGenerator<string[], void, undefined> {
    for (let cursor: string | null = null; ; ) {
      const { body, transportTimeoutMs } = this.requestBody({ prefix: opts.prefix, limit: opts.limit, r: opts.r, cursor: cursor ?? undefined }, opts);
      await this.slots.acquire();
      let reply: { ok: true; keys: string[]; cursor: string | null } | Extract<Reply, { ok: false }>;
      try {
        reply = decodeJson(await this.transport.request(this.subjects.kvKeys, JSON.stringify(body), transportTimeoutMs));
      } catch (e) {
        throw clientError(e, transportTimeoutMs);
      } finally {
        this.slots.release();
      }
      if (!reply.ok) throw errorFromReply(reply.error);
      if (reply.keys.length > 0) yield reply.keys;
      if (reply.cursor === null) return;
      cursor = reply.cursor;
    }
  }

  /**
   * Change events of a bucket (`<p>.watch.<bucket>`), as an async iterator:
   * `for await (const e of client.watch({ prefix: 'user:' }))`. Every acknowledged write
   * at least once, in order per coordinating node, from now on (or after `from`, a
   * `position()` of an earlier watch). An `{ op: 'lost' }` item says a node's log no
   * longer held events this watcher missed. `stop()` or breaking out of the loop ends it.
   */
  watch(opts: WatchOptions & { readonly bucket?: string } = {}): Watch {
    return new Watch(this.transport, this.subjects, opts.bucket ?? this.options.bucket ?? 'default', opts);
  }

  private async many(subject: string, fields: Record<string, unknown>, opts: CallOptions): Promise<Reply[]> {
    const { body, transportTimeoutMs } = this.requestBody(fields, opts);
    await this.slots.acquire();
    let reply: { ok: true; results: Reply[] } | Extract<Reply, { ok: false }>;
    try {
      reply = decodeJson(await this.transport.request(subject, JSON.stringify(body), transportTimeoutMs));
    } catch (e) {
      throw clientError(e, transportTimeoutMs);
    } finally {
      this.slots.release();
    }
    if (!reply.ok) throw errorFromReply(reply.error);
    return reply.results;
  }

  /** A request's body: `fields`, the bucket and timeout (the call's, else the client's), nothing undefined; and how long the transport waits. */
  private requestBody(
    fields: Record<string, unknown>,
    opts: CallOptions,
  ): { body: Record<string, unknown>; bucket: string | undefined; transportTimeoutMs: number } {
    const bucket = opts.bucket ?? this.options.bucket;
    const timeoutMs = opts.timeoutMs ?? this.options.timeoutMs;
    const body: Record<string, unknown> = { ...fields, bucket, timeoutMs };
    for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
    // The cluster answers within timeoutMs; the transport waits a little longer for that answer.
    return { body, bucket, transportTimeoutMs: (timeoutMs ?? 1000) + 1000 };
  }

  /** Requests in flight now (at most `maxInFlight`). */
  get inFlight(): number {
    return this.slots.inUse;
  }

  async close(): Promise<void> {
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    if (this.ownsTransport) await this.transport.close();
  }

  private async refreshRing(): Promise<void> {
    const reply = decodeJson<{ ok: boolean; n: number; members: RingMember[] }>(await this.transport.request(this.subjects.ring, '', 2000));
    if (reply.ok) this.ringView = { ring: new Ring(reply.members), n: reply.n };
  }

  /** The node to send a key's request to: the first of its preference list, per our copy of the ring. */
  private async target(bucket: string, key: string): Promise<string | null> {
    if (!this.options.partitionAware) return null;
    if (this.ringView === null) {
      this.ringFetch ??= this.refreshRing().finally(() => (this.ringFetch = null));
      await this.ringFetch.catch(() => {});
    }
    const view = this.ringView;
    if (view === null || view.ring.size === 0) return null;
    return view.ring.walk(keyPosition(bucket, key), 1)[0] ?? null;
  }

  private async call(op: Op, key: string, fields: Record<string, unknown>, opts: CallOptions): Promise<Extract<Reply, { ok: true }>> {
    const { body, bucket, transportTimeoutMs } = this.requestBody({ key, ...fields }, opts);
    const data = JSON.stringify(body);

    const signal = opts.signal;
    if (signal?.aborted) throw new AbortedError('aborted before it was sent');
    await this.slots.acquire();
    try {
      if (signal?.aborted) throw new AbortedError('aborted while waiting for a slot');
      const request = this.send(op, bucket ?? 'default', key, data, transportTimeoutMs);
      const reply = signal ? await abortable(request, signal) : await request;
      if (!reply.ok) throw errorFromReply(reply.error);
      return reply;
    } finally {
      this.slots.release();
    }
  }

  private async send(op: Op, bucket: string, key: string, data: string, timeoutMs: number): Promise<Reply> {
    const node = await this.target(bucket, key);
    try {
      if (node !== null) {
        try {
          return await this.ask(op, data, timeoutMs, node);
        } catch (e) {
          // That node is gone: any node will do (it forwards), and our ring copy is stale.
          if (!(e instanceof TransportError && e.kind === 'no-responders')) throw e;
          void this.refreshRing().catch(() => {});
        }
      }
      return await this.ask(op, data, timeoutMs, null);
    } catch (e) {
      throw clientError(e, timeoutMs);
    }
  }

  /** One request to `node` (null: any node), alone or in this turn's batch for it. */
  private async ask(op: Op, data: string, timeoutMs: number, node: string | null): Promise<Reply> {
    if (this.batcher === null)
      return decodeJson<Reply>(await this.transport.request(node === null ? this.subjects.kv(op) : this.subjects.nodeKv(node, op), data, timeoutMs));
    return this.batcher.request(node === null ? this.subjects.kvBatch : this.subjects.nodeKvBatch(node), BATCH_REPLY, batchItemText(op, data), timeoutMs);
  }
}

/** Bytes of requests in one batch (one larger request still goes, alone). */
const CLIENT_BATCH_BYTES = 256 * 1024;

/** A batch's answer: each item's reply; a refusal of the whole batch fails each of its calls with that error. */
const BATCH_REPLY: BatchKind<Reply> = {
  body: itemsBody,
  split: (data) => {
    const reply = decodeJson<{ ok: true; results: Reply[] } | Extract<Reply, { ok: false }>>(data);
    return reply.ok ? reply.results : errorFromReply(reply.error);
  },
};

/** A transport failure as the client's own error: no reply in time, or no node listening. */
function clientError(e: unknown, timeoutMs: number): unknown {
  if (e instanceof TransportError && e.kind === 'timeout') return new DynamoTimeoutError('TIMEOUT', `no reply within ${timeoutMs} ms`, {}, { cause: e });
  if (e instanceof TransportError && e.kind === 'no-responders') return new UnavailableError('UNAVAILABLE', 'no dynamo node is listening', {}, { cause: e });
  return e;
}

function writeFields(opts: WriteOptions): Record<string, unknown> {
  return { w: opts.w, context: opts.context ?? undefined, ifMatch: opts.ifMatch, ifNoneMatch: opts.ifNoneMatch || undefined };
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new AbortedError('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
