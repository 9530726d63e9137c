import { CHANGE_ID, compareChangeIds, MAX_CHANGES_PAGE, type ChangeEvent } from '../protocol/changes.js';
import type { Subjects } from '../protocol/subjects.js';
import type { RingMember } from '../ring/index.js';
import { decodeJson, tryDecodeJson, type Subscription, type Transport } from '../transport/transport.js';

/** Events a node's log no longer held when this watcher came to fetch them: re-read the bucket. */
export interface LostChanges {
  readonly op: 'lost';
  readonly node: string;
  /** the last id this watcher had from that node */
  readonly after: string;
}

export type WatchItem = ChangeEvent | LostChanges;

export interface WatchOptions {
  /** only keys that start with this */
  readonly prefix?: string;
  /** a position() from an earlier watch of the same bucket: resume after it */
  readonly from?: string;
  /** how often every node's log is checked for events missed live, in ms (default 5000) */
  readonly reconcileMs?: number;
}

type SinceReply = {
  ok: boolean;
  events?: ChangeEvent[];
  next?: string | null;
  more?: boolean;
  head?: string | null;
  truncated?: boolean;
  error?: { message: string };
};

/** Parse a position() string of this bucket; throws a TypeError for anything else. */
function decodePosition(text: string, bucket: string): Map<string, string> {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    v = null;
  }
  const o = v as { b?: unknown; p?: unknown } | null;
  if (o === null || typeof o !== 'object' || o.b !== bucket || typeof o.p !== 'object' || o.p === null) {
    throw new TypeError(`"from" is not a position of a watch of bucket "${bucket}"`);
  }
  return new Map(Object.entries(o.p as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

/**
 * A watch of one bucket: every acknowledged write as a change event, at least once, in
 * order per coordinating node (writes to one key coordinated by different nodes may come
 * in either order; their contexts tell which came first). Live events come on
 * `<p>.watch.<bucket>`; a gap in a node's chain of ids, a node that restarted, and a
 * check of every node's log every `reconcileMs` fetch what was missed from
 * `<p>.node.<id>.watch.since`. `position()` is where to resume after a restart.
 */
export class Watch implements AsyncIterableIterator<WatchItem> {
  private readonly queue: WatchItem[] = [];
  private waiting: ((r: IteratorResult<WatchItem>) => void) | null = null;
  private readonly pos = new Map<string, string>();
  private sub: Subscription | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** live messages, fetches and checks run one after another, in order */
  private chain: Promise<void>;
  private readonly prefix: string;

  constructor(
    private readonly transport: Transport,
    private readonly subjects: Subjects,
    private readonly bucket: string,
    options: WatchOptions = {},
  ) {
    this.prefix = options.prefix ?? '';
    const from = options.from === undefined ? null : decodePosition(options.from, bucket);
    this.sub = transport.subscribe(subjects.watch(bucket), (m) => {
      const body = tryDecodeJson(m.data) as { events?: unknown } | undefined;
      if (body === undefined || !Array.isArray(body.events)) return;
      const events = body.events as ChangeEvent[];
      this.run(async () => {
        for (const e of events) await this.take(e, true);
      });
    });
    this.chain = this.start(from).catch((e: unknown) => this.fail(e as Error));
    const every = options.reconcileMs ?? 5000;
    this.timer = setInterval(() => this.run(() => this.reconcile()), every);
    this.timer.unref();
  }

  /** Where this watch is: pass it as `from` to resume after the last event taken. */
  position(): string {
    return Buffer.from(JSON.stringify({ b: this.bucket, p: Object.fromEntries(this.pos) }), 'utf8').toString('base64url');
  }

  next(): Promise<IteratorResult<WatchItem>> {
    const item = this.queue.shift();
    if (item !== undefined) return Promise.resolve({ value: item, done: false });
    if (this.stopped) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiting = resolve));
  }

  async return(): Promise<IteratorResult<WatchItem>> {
    this.stop();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Stop watching: the iterator ends once what is queued has been taken. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.sub?.unsubscribe();
    if (this.timer) clearInterval(this.timer);
    const w = this.waiting;
    this.waiting = null;
    w?.({ value: undefined, done: true });
  }

  private error: Error | null = null;

  private fail(e: Error): void {
    this.error = e;
    this.stop();
  }

  /** Why the watch ended on its own (null while it runs, or when stop() ended it). */
  get failure(): Error | null {
    return this.error;
  }

  private run(task: () => Promise<void>): void {
    this.chain = this.chain.then(() => (this.stopped ? undefined : task())).catch(() => {});
  }

  private push(item: WatchItem): void {
    if (this.stopped) return;
    const w = this.waiting;
    if (w !== null) {
      this.waiting = null;
      w({ value: item, done: false });
    } else this.queue.push(item);
  }

  private async members(): Promise<string[]> {
    const reply = decodeJson<{ ok: boolean; members?: RingMember[] }>(await this.transport.request(this.subjects.ring, '', 5000));
    return reply.ok ? (reply.members ?? []).map((m) => m.id) : [];
  }

  private async since(node: string, after: string | null): Promise<SinceReply> {
    const body = JSON.stringify({ after, bucket: this.bucket, limit: MAX_CHANGES_PAGE });
    return decodeJson<SinceReply>(await this.transport.request(this.subjects.nodeWatchSince(node), body, 5000));
  }

  /** Where each node's log is now (or, resuming, where this watcher was), and what it missed since. */
  private async start(from: Map<string, string> | null): Promise<void> {
    await this.transport.flush();
    // A user allowed only the bucket's own subjects cannot list members: it watches live alone.
    const nodes = new Set([...(await this.members().catch(() => [])), ...(from?.keys() ?? [])]);
    for (const node of nodes) {
      const at = from?.get(node);
      if (at !== undefined) {
        this.pos.set(node, at);
        await this.fetch(node).catch(() => {});
      } else await this.startAtHead(node).catch(() => {});
    }
  }

  private async startAtHead(node: string): Promise<void> {
    const r = await this.since(node, null);
    if (r.ok && !this.pos.has(node)) this.pos.set(node, r.head ?? '0-0');
  }

  /** Every event of the node's log after this watcher's place, page by page. */
  private async fetch(node: string): Promise<void> {
    for (;;) {
      const at = this.pos.get(node) ?? '0-0';
      const r = await this.since(node, at);
      if (!r.ok) throw new Error(r.error?.message ?? 'refused');
      if (r.truncated) this.push({ op: 'lost', node, after: at });
      for (const e of r.events ?? []) await this.take(e, false);
      if (typeof r.next === 'string' && compareChangeIds(r.next, this.pos.get(node) ?? '0-0') > 0) this.pos.set(node, r.next);
      if (!r.more) return;
    }
  }

  /** One event: a duplicate is dropped; a live one after a gap first fetches what the gap holds. */
  private async take(e: ChangeEvent, live: boolean): Promise<void> {
    // Anything may publish on the subject: an event without these is not one.
    if (typeof e?.node !== 'string' || typeof e.id !== 'string' || !CHANGE_ID.test(e.id) || typeof e.key !== 'string') return;
    const at = this.pos.get(e.node);
    if (at !== undefined && compareChangeIds(e.id, at) <= 0) return;
    if (live && at !== undefined && (e.prev === null || compareChangeIds(e.prev, at) > 0)) {
      await this.fetch(e.node).catch(() => {});
      const now = this.pos.get(e.node);
      if (now !== undefined && compareChangeIds(e.id, now) <= 0) return;
    }
    this.pos.set(e.node, e.id);
    if (e.key.startsWith(this.prefix)) this.push(e);
  }

  /** The periodic check: every member's log after this watcher's place (a new member's from its head). */
  private async reconcile(): Promise<void> {
    let nodes: string[];
    try {
      nodes = await this.members();
    } catch {
      return;
    }
    for (const node of nodes) {
      if (this.pos.has(node)) await this.fetch(node).catch(() => {});
      else await this.startAtHead(node).catch(() => {});
    }
  }
}
