import { BUCKET_NAME, MAX_TTL_MS } from '../protocol/requests.js';

/** A bucket's properties: replicas, default quorums, and how concurrent versions resolve. */
export interface BucketProps {
  readonly n: number;
  readonly r: number;
  readonly w: number;
  readonly resolver: string;
  /** time to live (ms) of the values a put writes without a ttlMs of its own; absent: they never expire */
  readonly ttlMs?: number;
  /**
   * ms a key's tombstones are kept at least before they may be reaped (once every replica
   * was compared in sync after them); absent: the node's --tombstone-grace
   */
  readonly tombstoneGraceMs?: number;
}

/** One bucket's props as set, with who set them when: the later setting wins everywhere. */
export interface BucketEntry {
  readonly props: BucketProps;
  /** wall-clock ms of the setting */
  readonly at: number;
  /** the node that took it */
  readonly by: string;
}

export type BucketTable = Readonly<Record<string, BucketEntry>>;

/** Buckets with properties of their own, at most (gossip carries them all). */
export const MAX_BUCKETS = 1000;

const later = (a: BucketEntry, b: BucketEntry) => a.at > b.at || (a.at === b.at && a.by > b.by);

/** Merge two tables: per bucket the later setting. Commutative, associative, idempotent. */
export function mergeBucketTables(a: BucketTable, b: BucketTable): BucketTable {
  const out: Record<string, BucketEntry> = { ...a };
  for (const [name, e] of Object.entries(b)) {
    const mine = out[name];
    if (mine === undefined || later(e, mine)) out[name] = e;
  }
  return out;
}

export function sameTable(a: BucketTable, b: BucketTable): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => b[k] !== undefined && b[k].at === a[k].at && b[k].by === a[k].by);
}

const isInt = (x: unknown, lo: number, hi: number): x is number => Number.isInteger(x) && (x as number) >= lo && (x as number) <= hi;

/** A table received by gossip, checked field by field; null if anything is off. */
export function parseBucketTable(x: unknown): BucketTable | null {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return null;
  const entries = Object.entries(x as Record<string, unknown>);
  if (entries.length > MAX_BUCKETS) return null;
  for (const [name, e] of entries) {
    if (!BUCKET_NAME.test(name) || typeof e !== 'object' || e === null) return null;
    const { props, at, by } = e as Record<string, unknown>;
    if (!Number.isSafeInteger(at) || typeof by !== 'string' || typeof props !== 'object' || props === null) return null;
    const p = props as Record<string, unknown>;
    if (!isInt(p['n'], 1, 16) || !isInt(p['r'], 1, p['n'] as number) || !isInt(p['w'], 1, p['n'] as number) || typeof p['resolver'] !== 'string') return null;
    if (p['ttlMs'] !== undefined && !isInt(p['ttlMs'], 1, MAX_TTL_MS)) return null;
    if (p['tombstoneGraceMs'] !== undefined && !isInt(p['tombstoneGraceMs'], 1, MAX_TTL_MS)) return null;
  }
  return x as BucketTable;
}

/**
 * Validate a `bucket.set` body against the cluster: returns the new props (unset
 * fields from `current`) or the sentence of a BAD_REQUEST.
 *
 * n is the cluster's and cannot differ per bucket in this version: anti-entropy
 * trees cover the ranges of the cluster's n, and changing the n of a bucket that
 * holds data would leave keys on the wrong replicas.
 */
export function checkBucketSet(
  body: unknown,
  current: BucketProps,
  clusterN: number,
  knownResolver: (name: string) => boolean,
): { bucket: string; props: BucketProps } | string {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    return 'expected {"bucket": NAME, "resolver"?, "n"?, "r"?, "w"?, "ttlMs"?, "tombstoneGraceMs"?}';
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) if (!['bucket', 'resolver', 'n', 'r', 'w', 'ttlMs', 'tombstoneGraceMs'].includes(k)) return `unknown field "${k}"`;
  const bucket = b['bucket'];
  if (typeof bucket !== 'string' || !BUCKET_NAME.test(bucket)) return '"bucket" must be 1-64 characters of letters, digits, "_", "." or "-"';
  if (b['n'] !== undefined && b['n'] !== clusterN) {
    return `"n" of a bucket is the cluster's n (${clusterN}) in this version; per-bucket n is not supported, so an n that would move keys is refused`;
  }
  const resolver = b['resolver'] ?? current.resolver;
  if (typeof resolver !== 'string' || !knownResolver(resolver))
    return `unknown resolver "${String(resolver)}": lww, siblings, union, orset, counter, or one loaded with --resolver NAME=FILE on this node`;
  const r = b['r'] ?? current.r;
  const w = b['w'] ?? current.w;
  if (!isInt(r, 1, clusterN)) return `"r" must be an integer from 1 to ${clusterN}`;
  if (!isInt(w, 1, clusterN)) return `"w" must be an integer from 1 to ${clusterN}`;
  // ttlMs and tombstoneGraceMs: 0 or null clears the bucket's own setting.
  const own = (name: 'ttlMs' | 'tombstoneGraceMs'): unknown =>
    b[name] === undefined ? current[name] : b[name] === null || b[name] === 0 ? undefined : b[name];
  const ttl = own('ttlMs');
  if (ttl !== undefined && !isInt(ttl, 1, MAX_TTL_MS)) return `"ttlMs" must be an integer from 1 to ${MAX_TTL_MS} (365 days), or 0 for none`;
  const grace = own('tombstoneGraceMs');
  if (grace !== undefined && !isInt(grace, 1, MAX_TTL_MS))
    return `"tombstoneGraceMs" must be an integer from 1 to ${MAX_TTL_MS} (365 days), or 0 for the node's --tombstone-grace`;
  const props: BucketProps = {
    n: clusterN,
    r,
    w,
    resolver,
    ...(ttl === undefined ? {} : { ttlMs: ttl }),
    ...(grace === undefined ? {} : { tombstoneGraceMs: grace }),
  };
  return { bucket, props };
}
