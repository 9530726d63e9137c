import { inject, injectable } from 'tsyringe';
import type { NodeConfig } from '../../src/config.js';
import { TOKENS, type Logger } from '../../src/di/tokens.js';
import { errorText } from '../../src/errors.js';
import { BatchFill } from '../../src/protocol/batch-fill.js';
import { changeText, compareChangeIds, parseWatchSince, publishedText } from '../../src/protocol/changes.js';
import { isErrorReply } from '../../src/protocol/requests.js';
import type { Subjects } from '../../src/protocol/subjects.js';
import type { Storage } from '../../src/storage/storage.js';
import { tryDecodeJson, type Incoming, type Subscription, type Transport } from '../../src/transport/transport.js';
import { encodeContext, fullClock, type Version } from '../../src/versioning/index.js';
import { present } from '../../src/invariant.js';

/** Events in one published message, at most. */
const EVENTS_PER_MESSAGE = 256;

interface Pending {
  readonly bucket: string;
  readonly key: string;
  /** the event as logged */
  readonly event: string;
}

/** Events appended per storage call (one script run in Redis), at most. */
const APPENDS_PER_CALL = 256;

/**
 * Recorded events wait this long to go to the log and out together. Appended every
 * event-loop turn, they cost a script run per write when requests come one to a message (a
 * turn then holds one write): the log cost a put 54 µs of CPU across node, Redis and
 * nats-server, and the window took 22 of them. Every message costs nats-server and the node
 * more than its bytes do too.
 */
export const PUBLISH_EVERY_MS = 5;

/**
 * This node's change events. Each write it coordinates and acknowledges is appended to
 * the node's log in Redis (a stream of about `changeLogSize` entries) and then published
 * on `<p>.watch.<bucket>`: the events of PUBLISH_EVERY_MS go to the log in one call and
 * then out as one message per bucket, after the clients' replies, so a write's latency
 * does not wait on them. Each event names its log id and the previous id of the same
 * bucket on this node, so a watcher sees when it missed one and asks
 * `<p>.node.<id>.watch.since` for the rest.
 */
@injectable()
export class ChangeLog {
  private pending: Pending[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** publishing runs one batch at a time, in order, so each bucket's chain of ids holds */
  private tail: Promise<void> = Promise.resolve();
  /** the last id published per bucket since this process started */
  private readonly last = new Map<string, string>();
  /** events published, and acknowledged writes whose event could not be logged */
  published = 0;
  lost = 0;
  private failing = false;
  private publishFailing = false;

  constructor(
    @inject(TOKENS.Subjects) private readonly subjects: Subjects,
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Transport) private readonly transport: Transport,
    @inject(TOKENS.Storage) private readonly storage: Storage,
    @inject(TOKENS.Logger) private readonly logger: Logger,
  ) {}

  /** An acknowledged write coordinated here: `version` is the new version, `context` the reply's (null: work it out). */
  record(op: 'put' | 'delete', bucket: string, key: string, version: Version, context: string | null): void {
    if (this.config.changeLogSize === 0) return;
    const event = changeText(op, bucket, key, version.v, context ?? encodeContext(fullClock(version)), version.t, version.x);
    this.pending.push({ bucket, key, event });
    this.timer ??= setTimeout(() => this.append(), PUBLISH_EVERY_MS);
  }

  /** The window's events go to the log together (calls made in order get increasing ids), then out in order. */
  private append(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    for (let at = 0; at < this.pending.length; at += APPENDS_PER_CALL) {
      const batch = this.pending.slice(at, at + APPENDS_PER_CALL);
      const ids = this.storage.appendChanges(batch, this.config.changeLogSize);
      // Settled in publish(); a rejection must not go unhandled meanwhile.
      ids.catch(() => {});
      this.tail = this.tail.then(() => this.publish(batch, ids));
    }
    this.pending = [];
  }

  private async publish(batch: readonly Pending[], appended: Promise<string[]>): Promise<void> {
    let ids: string[];
    try {
      ids = await appended;
    } catch (e) {
      this.lost += batch.length;
      if (!this.failing) this.logger.warn(`change log append failed; watchers miss these writes: ${(e as Error).message}`);
      this.failing = true;
      return;
    }
    this.failing = false;
    const byBucket = new Map<string, string[]>();
    batch.forEach((p, i) => {
      const id = present(ids[i], 'the log gives an id per event');
      const text = publishedText(this.config.nodeId, id, this.last.get(p.bucket) ?? null, p.event);
      this.last.set(p.bucket, id);
      const list = byBucket.get(p.bucket);
      if (list === undefined) byBucket.set(p.bucket, [text]);
      else list.push(text);
    });
    this.publishEvents(byBucket);
  }

  private publishEvents(byBucket: ReadonlyMap<string, readonly string[]>): void {
    const maxBytes = Math.max(1, this.transport.maxPayload - 64);
    for (const [bucket, events] of byBucket) {
      const fill = new BatchFill<string>(EVENTS_PER_MESSAGE, maxBytes);
      const send = () => {
        const items = fill.take();
        if (items.length === 0) return;
        try {
          this.transport.publish(this.subjects.watch(bucket), `{"events":[${items.join(',')}]}`);
        } catch (e) {
          // A closed connection (a stop whose drain ran out of time): the events stay in the log for watch.since.
          if (!this.publishFailing) this.logger.warn(`publishing change events failed; watchers read them from the log: ${(e as Error).message}`);
          this.publishFailing = true;
          return;
        }
        this.publishFailing = false;
      };
      for (const e of events) {
        // An event too large for a message with others goes alone; one too large for any message is left to the log.
        const bytes = Buffer.byteLength(e, 'utf8');
        if (bytes > maxBytes) continue;
        if (fill.wouldOverflow(bytes)) send();
        fill.add(e, bytes);
      }
      send();
      this.published += events.length;
    }
  }

  /** Resolves once every event recorded so far is published (tests, and a stopping node). */
  async drain(): Promise<void> {
    this.append();
    await this.tail;
  }

  listen(): Subscription[] {
    return [this.transport.subscribe(this.subjects.nodeWatchSince(this.config.nodeId), (m) => void this.since(m))];
  }

  /** `watch.since`: the bucket's events after an id, from the log; with `after: null`, the log's head only. */
  private async since(m: Incoming): Promise<void> {
    const req = parseWatchSince(tryDecodeJson(m.data));
    if (isErrorReply(req)) return void m.respond(JSON.stringify(req));
    try {
      const page = await this.storage.readChanges(req.after, req.limit);
      const events: string[] = [];
      for (const c of page.changes) {
        if (req.bucket !== undefined && c.bucket !== req.bucket) continue;
        if (!c.key.startsWith(req.prefix)) continue;
        events.push(publishedText(this.config.nodeId, c.id, null, c.event));
      }
      const examined = page.changes[page.changes.length - 1]?.id ?? null;
      // Entries before the oldest kept one were dropped: if the watcher's place is before it, some it never saw may be among them.
      const truncated = req.after !== null && page.trimmed && (page.oldest === null || compareChangeIds(req.after, page.oldest) < 0);
      m.respond(
        `{"ok":true,"node":${JSON.stringify(this.config.nodeId)},"events":[${events.join(',')}],"next":${examined === null ? 'null' : `"${examined}"`},"more":${page.changes.length === req.limit},"head":${page.head === null ? 'null' : `"${page.head}"`},"truncated":${truncated}}`,
      );
    } catch (e) {
      m.respond(errorText('UNAVAILABLE', `reading the change log failed: ${(e as Error).message}`));
    }
  }
}
