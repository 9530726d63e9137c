import { inject, injectable } from 'tsyringe';
import type { Clock } from '../../src/clock/clock.js';
import type { NodeConfig } from '../../src/config.js';
import { TOKENS } from '../../src/di/tokens.js';
import type { Membership } from '../../src/membership/membership.js';
import { replicaCount } from '../../src/membership/placement.js';
import { clusterBlocker, reapAudience } from '../../src/membership/reaping.js';
import { BatchFill, itemsBody } from '../../src/protocol/batch-fill.js';
import { MAX_REPLICA_BATCH, replicaPutItem } from '../../src/protocol/replica.js';
import type { Subjects } from '../../src/protocol/subjects.js';
import { compactedText } from '../../src/resolvers/orset.js';
import { keyPosition } from '../../src/ring/index.js';
import type { Storage } from '../../src/storage/storage.js';
import { decodeJson, type Transport } from '../../src/transport/transport.js';
import { includesAll, sameDot, type Version } from '../../src/versioning/index.js';
import { Buckets } from './buckets.js';

/** OR-Set keys one step looks at, at most (a step runs every second with the reaper). */
export const ORSET_KEYS_PER_STEP = MAX_REPLICA_BATCH;
const REQUEST_TIMEOUT_MS = 5000;
/** Bytes of versions one compact message carries, about (a larger single value still goes, alone). */
const COMPACT_MESSAGE_BYTES = 256 * 1024;

interface Candidate {
  readonly key: string;
  readonly raw: string;
  readonly version: Version;
  /** the key's other natural replicas */
  readonly others: readonly string[];
}

/** What a member holds of a key whose retired tags are to be collected (see compactCopy). */
export type CompactOutcome = 'same' | 'covered' | 'absent' | 'kept' | 'compacted';

/**
 * Collects an OR-Set's retired tags. A retired tag is there only to beat a copy of it in
 * a version concurrent with the one that retired it. Once a key holds one version V,
 * older than its bucket's grace, on every natural replica (so every write from now on is
 * made from V and descends it), and no member holds a hint or copy of the key that V
 * does not cover (so no concurrent version is left anywhere), the tags cannot meet such a
 * copy again and V's value can drop them. The version keeps its dot and clock: a replica
 * still holding V with its tags reads the same elements, so the rewrite needs no order.
 *
 * Each step pages through the keys of the OR-Set buckets this node is the first natural
 * replica of; candidates go to every member in two rounds: is V what you hold, then, for
 * those every natural replica holds, drop the tags. The same cluster conditions as for
 * tombstones apply (src/membership/reaping.ts): every ring member up, the ring steady.
 */
@injectable()
export class RetiredTags {
  /** keys whose retired tags this node collected as first replica, since start */
  compacted = 0;
  /** why the last candidates past their grace wait (a member down, the ring changing), or null */
  waiting: string | null = null;
  private bucket = 0;
  private after: string | null = null;

  constructor(
    @inject(TOKENS.Subjects) private readonly subjects: Subjects,
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Transport) private readonly transport: Transport,
    @inject(TOKENS.Storage) private readonly storage: Storage,
    @inject(TOKENS.Membership) private readonly membership: Membership,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    private readonly buckets: Buckets,
  ) {}

  /** One step over a page of one OR-Set bucket's keys; resolves to the keys compacted. */
  async step(): Promise<number> {
    const orsets = Object.keys(this.buckets.table)
      .filter((b) => this.buckets.props(b).resolver === 'orset')
      .sort();
    if (orsets.length === 0) return 0;
    const bucket = orsets[this.bucket % orsets.length] as string;
    const grace = this.buckets.props(bucket).tombstoneGraceMs ?? this.config.tombstoneGraceMs;
    const now = this.clock.now();
    const page = await this.storage.listKeys(bucket, '', this.after, ORSET_KEYS_PER_STEP, () => true, ORSET_KEYS_PER_STEP * 4, now);
    this.after = page.next;
    if (page.next === null) this.bucket++;
    if (grace <= 0 || page.keys.length === 0) return 0;
    const ring = this.membership.ring();
    const n = replicaCount(this.config.n, ring);
    const self = this.config.nodeId;
    const raws = await this.storage.readRawMany(page.keys.map((key) => ({ bucket, key })));
    const candidates = page.keys.flatMap((key, i) => {
      const raw = raws[i];
      if (raw === null || raw === undefined) return [];
      const versions = JSON.parse(raw) as Version[];
      const v = versions[0];
      if (versions.length !== 1 || v === undefined || v.v === undefined || compactedText(v.v) === null || now - v.t < grace) return [];
      const replicas = ring.walk(keyPosition(bucket, key), n);
      return replicas[0] === self ? [{ key, raw, version: v, others: replicas.slice(1) } satisfies Candidate] : [];
    });
    if (candidates.length === 0) {
      this.waiting = null;
      return 0;
    }
    this.waiting = clusterBlocker(
      ring.members.map((m) => m.id),
      (id) => this.membership.isDown(id),
      this.membership.futureRing() !== null,
    );
    if (this.waiting !== null) return 0;
    // A message per chunk of candidates: OR-Set values can be large.
    let done = 0;
    const fill = new BatchFill<Candidate>(MAX_REPLICA_BATCH, COMPACT_MESSAGE_BYTES);
    for (const c of candidates) {
      if (fill.wouldOverflow(c.raw.length)) done += await this.compact(bucket, fill.take());
      fill.add(c, c.raw.length);
    }
    done += await this.compact(bucket, fill.take());
    this.compacted += done;
    return done;
  }

  /** Ask every member whether it holds the candidates' versions, then have the replicas, and this node, drop the tags of those all hold. */
  private async compact(bucket: string, candidates: readonly Candidate[]): Promise<number> {
    if (candidates.length === 0) return 0;
    const ask = async (ids: readonly string[], list: readonly Candidate[], apply: boolean) => {
      // {"apply":...,"items":[...]}: the items body with the flag in front.
      const body = `{"apply":${apply},${itemsBody(list.map((c) => replicaPutItem(bucket, c.key, JSON.stringify([c.version])))).slice(1)}`;
      return new Map(
        await Promise.all(
          ids.map(async (id) => {
            try {
              const reply = decodeJson<{ ok: boolean; compact?: CompactOutcome[] }>(
                await this.transport.request(this.subjects.replicaCompact(id), body, REQUEST_TIMEOUT_MS),
              );
              return [id, reply.ok && reply.compact?.length === list.length ? reply.compact : null] as const;
            } catch {
              return [id, null] as const;
            }
          }),
        ),
      );
    };
    const checked = await ask(reapAudience(this.config.nodeId, this.membership.members()), candidates, false);
    if ([...checked.values()].includes(null)) return 0;
    const ready = candidates.filter((c, i) => {
      if ([...checked.values()].some((a) => a?.[i] === 'kept')) return false;
      return c.others.every((id) => checked.get(id)?.[i] === 'same');
    });
    if (ready.length === 0) return 0;
    await ask([...new Set(ready.flatMap((c) => c.others))], ready, true);
    let done = 0;
    const owners = await this.storage.hintOwners();
    for (const c of ready) if ((await compactCopy(this.storage, bucket, c.key, c.version, true, owners)) === 'compacted') done++;
    return done;
  }
}

/**
 * What this store holds of a key, against the one version `version` (see RetiredTags):
 * 'kept' when a hint or the copy holds something it does not cover; 'same' when the copy
 * is that version alone (with `apply`, its value rewritten without retired tags:
 * 'compacted'); 'covered' when the copy is older; 'absent' when there is none.
 */
export async function compactCopy(
  storage: Storage,
  bucket: string,
  key: string,
  version: Version,
  apply: boolean,
  hintOwners: readonly string[],
): Promise<CompactOutcome> {
  for (const owner of hintOwners) {
    const hint = await storage.readHint(owner, bucket, key);
    if (hint !== null && !includesAll([version], JSON.parse(hint) as Version[])) return 'kept';
  }
  const raw = await storage.readRaw(bucket, key);
  if (raw === null) return 'absent';
  const mine = JSON.parse(raw) as Version[];
  const only = mine.length === 1 ? mine[0] : undefined;
  if (only !== undefined && only.v !== undefined && sameDot(only.d, version.d)) {
    if (!apply) return 'same';
    const text = compactedText(only.v);
    if (text === null) return 'compacted';
    return (await storage.replaceIfUnchanged(bucket, key, raw, JSON.stringify([{ ...only, v: text }]))) ? 'compacted' : 'kept';
  }
  return includesAll([version], mine) ? 'covered' : 'kept';
}
