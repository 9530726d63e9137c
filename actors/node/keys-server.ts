import { inject, injectable } from 'tsyringe';
import { replicaCount } from '../../src/membership/placement.js';
import type { NodeConfig } from '../../src/config.js';
import { TOKENS } from '../../src/di/tokens.js';
import type { Clock } from '../../src/clock/clock.js';
import { errorText, TransportError } from '../../src/errors.js';
import { coveragePlan, segmentTable } from '../../src/membership/coverage.js';
import type { Membership } from '../../src/membership/membership.js';
import {
  encodeCursor,
  MAX_KEYS_SCAN,
  mergePages,
  parseKeysPageRequest,
  parseKeysRequest,
  type KeysPage,
  type KeysPageRequest,
  type KeysRequest,
} from '../../src/protocol/keys.js';
import { isErrorReply, onSubjectBucket } from '../../src/protocol/requests.js';
import type { Subjects } from '../../src/protocol/subjects.js';
import { keyPosition, segmentOf } from '../../src/ring/index.js';
import type { Storage } from '../../src/storage/storage.js';
import { decodeJson, tryDecodeJson, type Incoming, type Subscription, type Transport } from '../../src/transport/transport.js';
import { Buckets } from './buckets.js';

/**
 * Key listings. A client's `<p>.kv.keys` is planned here as a coverage query: each
 * range of the ring is asked of `r` of its live replicas (`<p>.node.<id>.keys`),
 * each of which lists the keys it holds in its share, in byte order, from its Redis
 * index; the parts are merged into one page and a cursor.
 */
@injectable()
export class KeysServer {
  constructor(
    @inject(TOKENS.Subjects) private readonly subjects: Subjects,
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Transport) private readonly transport: Transport,
    @inject(TOKENS.Storage) private readonly storage: Storage,
    @inject(TOKENS.Membership) private readonly membership: Membership,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    private readonly buckets: Buckets,
  ) {}

  /** The node's part of listings others plan. */
  listen(): Subscription[] {
    return [this.transport.subscribe(this.subjects.nodeKeys(this.config.nodeId), (m) => void this.servePage(m))];
  }

  private async servePage(m: Incoming): Promise<void> {
    const req = parseKeysPageRequest(tryDecodeJson(m.data));
    if (isErrorReply(req)) return void m.respond(JSON.stringify(req));
    try {
      const page = await this.page(req);
      m.respond(JSON.stringify({ ok: true, keys: page.keys, next: page.next }));
    } catch (e) {
      m.respond(errorText('UNAVAILABLE', `listing keys failed: ${(e as Error).message}`));
    }
  }

  private page(req: KeysPageRequest): Promise<KeysPage> {
    const mine = segmentTable(req.segments);
    const accept = (key: string) => mine[segmentOf(keyPosition(req.bucket, key))] === 1;
    return this.storage.listKeys(req.bucket, req.prefix, req.after, req.limit, accept, MAX_KEYS_SCAN, this.clock.now());
  }

  /**
   * A client's listing. `subjectBucket` is set when it came on a bucket's own subject
   * (`<p>.kv.<bucket>.keys`): a body naming another bucket is refused.
   */
  async handle(m: Incoming, subjectBucket?: string): Promise<void> {
    const parsed = tryDecodeJson(m.data);
    if (parsed === undefined) return void m.respond(errorText('BAD_REQUEST', 'request body is not valid JSON'));
    const body = subjectBucket === undefined ? parsed : onSubjectBucket(parsed, subjectBucket);
    if (isErrorReply(body)) return void m.respond(JSON.stringify(body));
    const req = parseKeysRequest(body, (bucket) => ({
      n: replicaCount(this.buckets.props(bucket).n, this.membership.ring()),
      maxKeyBytes: this.config.maxKeyBytes,
      defaultTimeoutMs: this.config.defaultTimeoutMs,
      maxTimeoutMs: this.config.maxTimeoutMs,
    }));
    if (isErrorReply(req)) return void m.respond(JSON.stringify(req));
    m.respond(await this.list(req));
  }

  private async list(req: KeysRequest): Promise<string> {
    const ring = this.membership.ring();
    if (ring.size === 0) return errorText('UNAVAILABLE', 'no node has joined the ring yet');
    const n = replicaCount(this.buckets.props(req.bucket).n, ring);
    // A node that has no responder (stopped, not yet seen down here) is left out and the listing planned again.
    const gone = new Set<string>();
    for (;;) {
      const plan = coveragePlan(ring, n, req.r, (id) => gone.has(id) || this.membership.isDown(id));
      if (!plan.ok)
        return errorText('UNAVAILABLE', `segment ${plan.segment} of the ring has ${plan.live} live replicas; the listing needs ${req.r}`, {
          live: plan.live,
          needed: req.r,
        });
      const nodes = [...plan.nodes.keys()];
      const settled = await Promise.allSettled(
        [...plan.nodes].map(([node, segments]) => {
          const part: KeysPageRequest = { bucket: req.bucket, prefix: req.prefix, after: req.after, limit: req.limit, segments };
          return node === this.config.nodeId ? this.page(part) : this.remotePage(node, part, req.timeoutMs);
        }),
      );
      const failed = settled.flatMap((s, i) => (s.status === 'rejected' ? [{ node: nodes[i] as string, reason: s.reason as Error }] : []));
      const absent = failed.filter((f) => f.reason instanceof TransportError && f.reason.kind === 'no-responders');
      if (failed.length > 0 && absent.length === failed.length) {
        for (const f of absent) gone.add(f.node);
        continue;
      }
      if (failed.length > 0) {
        const { node, reason } = failed[0] as { node: string; reason: Error };
        return errorText('UNAVAILABLE', `node ${node} did not list its keys: ${reason.message}`, { node });
      }
      const pages = settled.map((s) => (s as PromiseFulfilledResult<KeysPage>).value);
      const merged = mergePages(pages, req.limit);
      return JSON.stringify({
        ok: true,
        keys: merged.keys,
        cursor: merged.done || merged.last === null ? null : encodeCursor(req.bucket, req.prefix, merged.last),
      });
    }
  }

  private async remotePage(node: string, part: KeysPageRequest, timeoutMs: number): Promise<KeysPage> {
    const reply = decodeJson<{ ok: boolean; keys?: unknown; next?: unknown; error?: { message: string } }>(
      await this.transport.request(this.subjects.nodeKeys(node), JSON.stringify(part), timeoutMs),
    );
    if (!reply.ok) throw new Error(reply.error?.message ?? 'refused');
    const { keys, next } = reply;
    if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string') || (next !== null && typeof next !== 'string')) throw new Error('unreadable reply');
    return { keys, next };
  }
}
