import type { KeysPage } from '../protocol/keys.js';
import type { VClock, Version } from '../versioning/index.js';

/** What the coordinator asks of the local replica when it starts a write. */
export interface CoordinatedWrite {
  readonly bucket: string;
  readonly key: string;
  /** the client's causal context (already pruned) */
  readonly context: VClock;
  /** the coordinating node, which owns the new dot */
  readonly node: string;
  readonly ts: number;
  /** JSON text of the value; undefined writes a tombstone */
  readonly value: string | undefined;
  /**
   * 'match': refuse (ConflictError) when this replica holds a version the context did
   * not see. 'none-match': refuse when it holds a value (tombstones do not count; the
   * write supersedes them).
   */
  readonly condition?: 'match' | 'none-match';
  /**
   * Last-write-wins: the new version also supersedes every version stored here, and
   * its timestamp is raised above theirs, so the key holds one version, the latest.
   */
  readonly supersede?: boolean;
  /** refuse (SiblingLimitError) when the write would leave more siblings than this; 0 or absent: no bound */
  readonly maxSiblings?: number;
  /** when the new value expires (ms, wall clock; absent: never): the version's `x` */
  readonly expiresAt?: number;
}

/** Siblings a key may hold; a write beyond it folds them (or is refused when the client resolves them). */
export const MAX_SIBLINGS = 64;

/** A write would have left more than `maxSiblings` versions of its key. */
export class SiblingLimitError extends Error {
  override readonly name = 'SiblingLimitError';
}

/**
 * A node's local replica store. Every write is a merge: concurrent versions are
 * kept as siblings, obsolete ones dropped, and a replayed write is a no-op.
 */
export interface Storage {
  /** The key's siblings, or [] when the key was never written. */
  read(bucket: string, key: string): Promise<Version[]>;
  /** The same, as the stored JSON array text (null when absent), for replies that pass it on unparsed. */
  readRaw(bucket: string, key: string): Promise<string | null>;
  /** Merge versions written elsewhere, atomically; resolves true when that changed what is stored. */
  apply(bucket: string, key: string, versions: readonly Version[]): Promise<boolean>;
  /** apply() for many keys at once (a replica's batch): each key merged atomically, one result per item in order. */
  applyMany(items: readonly VersionsOf[]): Promise<boolean[]>;
  /**
   * Create a new version with a fresh dot of `write.node` and merge it locally, in
   * one atomic step so concurrent writes get distinct dots.
   */
  coordinate(write: CoordinatedWrite): Promise<CoordinatedResult>;
  /** Connect and check the store answers; rejects with StorageError. */
  connect(): Promise<void>;
  /**
   * One page of a full scan of the stored keys. Start with SCAN_START; a returned
   * cursor of SCAN_START means the scan is complete. Keys present for the whole scan
   * are returned at least once.
   */
  scan(cursor: string, count: number): Promise<{ cursor: string; keys: StoredKey[] }>;
  /**
   * One node's part of a key listing: the keys of `bucket` that start with `prefix`,
   * come after `after` (UTF-8 byte order) and hold a value (not only tombstones), that
   * `accept` takes, not expired at `now`; at most `limit` of them, examining at most `maxScan` stored keys.
   * `next` is the last key examined, or null when none is left past it.
   */
  listKeys(
    bucket: string,
    prefix: string,
    after: string | null,
    limit: number,
    accept: (key: string) => boolean,
    maxScan: number,
    now: number,
  ): Promise<KeysPage>;
  /** Keys that hold a value at `now`, tombstones and expired values not counted. */
  liveKeyCount(now: number): Promise<number>;
  /**
   * The reaper: turn up to `max` keys' expired values into tombstones of the same dots
   * (a value's expiry is part of its version, so it reads as gone already; the
   * tombstone keeps superseding what the version superseded). Resolves to the values dropped.
   * The store may find them by an index a few seconds old (RedisStorage's
   * HOUSEKEEPING_FOLD_MS): a value that expired since is reaped by a later call.
   */
  reapExpired(now: number, max: number): Promise<number>;
  /**
   * The change log (a Redis stream): append acknowledged writes' events (JSON text), in
   * order, keeping about the last `keep`; resolves to their ids (`ms-seq`, increasing,
   * one per entry). Later calls get later ids.
   */
  appendChanges(entries: readonly ChangeEntry[], keep: number): Promise<string[]>;
  /**
   * Up to `count` changes after `after` (null: the log's head only), in order; `head` is
   * the latest id, `oldest` the oldest it still holds, `trimmed` whether it has dropped any.
   */
  readChanges(after: string | null, count: number): Promise<ChangePage>;
  /** Drop a key's copy if it still holds exactly `raw` (a copy this node no longer owns, once its owners hold it); true when dropped. */
  deleteIfUnchanged(bucket: string, key: string, raw: string): Promise<boolean>;
  /**
   * Tombstone reaping: keys holding only tombstones that have held them unchanged since
   * `before` or earlier (ms on the store's clock, see storeClock), oldest first, from
   * `offset` on, at most `max`; each with its stored text and when it last changed. The
   * store may find them by an index a few seconds old (RedisStorage's HOUSEKEEPING_FOLD_MS):
   * a key that came to hold only tombstones since is found by a later call, one that holds a
   * value again is left out, and `at` may be that much earlier than the key's last change.
   */
  tombstones(before: number, offset: number, max: number): Promise<TombstoneKey[]>;
  /** Replace a key's stored text with `next` if it still holds exactly `raw` (same dots: the tree does not change); true when replaced. */
  replaceIfUnchanged(bucket: string, key: string, raw: string, next: string): Promise<boolean>;
  /** Tombstone-only keys held. */
  tombstoneCount(): Promise<number>;
  /**
   * The store's own clock (ms), on which tombstones are timed. Every key that changed
   * before the returned time is in the tree a treeLeaves() called after it returns.
   */
  storeClock(): Promise<number>;
  /** One hint's stored text, or null. */
  readHint(owner: string, bucket: string, key: string): Promise<string | null>;
  /**
   * Forget every key, hint and tree entry and take a fresh epoch, keeping the node's
   * bookkeeping (bucket table, meta): for a store too old to rejoin with its data.
   * Resolves to the keys dropped.
   */
  wipeData(): Promise<number>;
  /** Stored sibling arrays (JSON text, null when absent) for several keys at once. */
  readRawMany(keys: readonly StoredKey[]): Promise<(string | null)[]>;
  /** The name this store writes under for `node`: `node.epoch` (see ACTOR_ID), taking an epoch if it has none. */
  writerId(node: string): Promise<string>;
  /**
   * A lease on `name` for `ttlMs`, held by `owner`: true when taken (free, expired, or
   * already this owner's, which renews it), false when another owner holds it.
   */
  acquireLease(name: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Give a lease back, if `owner` still holds it. */
  releaseLease(name: string, owner: string): Promise<void>;
  /** The node-local value `name`, set to `value` first if it has none (atomically): what every process of the node agrees on. */
  metaOnce(name: string, value: string): Promise<string>;
  /** Small node-local bookkeeping (transfer progress), outside the data key space. */
  getMeta(name: string): Promise<string | null>;
  setMeta(name: string, value: string | null): Promise<void>;
  /**
   * Keep versions for `owner` (hinted handoff), merged like data but apart from it.
   * 'full' when the hint store is at its bounds (HINT_LIMITS) and the key is new to it.
   */
  storeHint(owner: string, bucket: string, key: string, versions: readonly Version[]): Promise<'stored' | 'known' | 'full'>;
  /** Owners this node holds hints for. */
  hintOwners(): Promise<string[]>;
  /** Up to `count` of the hints held for `owner`, with their stored text. */
  readHints(owner: string, count: number): Promise<{ bucket: string; key: string; raw: string }[]>;
  /** Drop a delivered hint, unless it changed since `raw` was read (then it goes out again). */
  deleteHint(owner: string, bucket: string, key: string, raw: string): Promise<void>;
  /** Hints held, all owners together. */
  hintCount(): Promise<number>;
  /**
   * Anti-entropy: this replica's tree leaves, SEGMENTS × HASH_BYTES (shorter when
   * the top segments are empty: read the missing bytes as zeros), covering every
   * write acknowledged before the call. (The Redis store marks written keys dirty in
   * the write's atomic step and folds them into the tree here, in batches.)
   */
  treeLeaves(): Promise<Uint8Array>;
  /** Anti-entropy: for each segment asked, the keys stored in it and their hashes (tree field → hex), at least as recent as the last treeLeaves(). */
  segmentKeys(segments: readonly number[]): Promise<Map<string, string>[]>;
  /** True once the tree covers the data (false for data written before trees existed). */
  treeBuilt(): Promise<boolean>;
  /** Re-derive the tree from the data; safe while writes go on. Resolves to the keys checked. */
  rebuildTree(onProgress?: (keys: number) => void): Promise<number>;
  /** Number of keys held (tombstones included). */
  keyCount(): Promise<number>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * What a coordinated write leaves on the coordinator: the new version and the key's
 * whole sibling set (as JSON text, the new version last). The whole set goes to the
 * other replicas, not the new version alone: a replica that holds a node's dot then
 * also holds that node's earlier concurrent dots of the key, so a context read from
 * any replica covers only versions the reader saw.
 */
export interface CoordinatedResult {
  readonly version: Version;
  readonly siblingsText: string;
}

/** Bounds of a node's hint store; a hinted write beyond them is refused (and does not count towards W). */
export const HINT_LIMITS = { maxHints: 100_000, maxBytes: 64 * 1024 * 1024 } as const;

/** One acknowledged write's event for the change log. */
export interface ChangeEntry {
  readonly bucket: string;
  readonly key: string;
  readonly event: string;
}

/** A read of the change log. */
export interface ChangePage {
  readonly changes: { readonly id: string; readonly bucket: string; readonly key: string; readonly event: string }[];
  readonly head: string | null;
  readonly oldest: string | null;
  readonly trimmed: boolean;
}

/** A key holding only tombstones, as tombstones() finds it. */
export interface TombstoneKey {
  readonly bucket: string;
  readonly key: string;
  readonly raw: string;
  /** when it last changed, on the store's clock */
  readonly at: number;
}

/** A key and versions to merge into it. */
export interface VersionsOf {
  readonly bucket: string;
  readonly key: string;
  readonly versions: readonly Version[];
}

export interface StoredKey {
  readonly bucket: string;
  readonly key: string;
}

export const SCAN_START = '0';

/** Redis key of a data item. Bucket names cannot contain ':', so the split is unambiguous. */
export function dataKey(bucket: string, key: string): string {
  return `v:${bucket}:${key}`;
}

/** The inverse of dataKey; null for keys outside the data space. */
export function parseDataKey(redisKey: string): StoredKey | null {
  if (!redisKey.startsWith('v:')) return null;
  const colon = redisKey.indexOf(':', 2);
  if (colon < 0) return null;
  return { bucket: redisKey.slice(2, colon), key: redisKey.slice(colon + 1) };
}
