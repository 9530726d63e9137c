import { Redis, type RedisOptions } from 'ioredis';
import { ConflictError, StorageError } from '../errors.js';
import type { Version } from '../versioning/index.js';
import { parseTreeField, treeField } from '../merkle/index.js';
import { keyPosition, segmentOf, SEGMENTS } from '../ring/index.js';
import {
  APPEND_CHANGES_LUA,
  APPLY_MANY_LUA,
  COORDINATE_LUA,
  DELETE_HINT_LUA,
  EPOCH_LUA,
  FOLD_DIRTY_LUA,
  LEASE_LUA,
  RELEASE_LUA,
  RECOMPUTE_LEAVES_LUA,
  REAP_LUA,
  DELETE_IF_UNCHANGED_LUA,
  REPLACE_IF_UNCHANGED_LUA,
  REFRESH_TREE_LUA,
  STORE_HINT_LUA,
} from './redis-scripts.js';
import {
  dataKey,
  HINT_LIMITS,
  parseDataKey,
  SiblingLimitError,
  type CoordinatedResult,
  type CoordinatedWrite,
  type Storage,
  type StoredKey,
  type VersionsOf,
  type ChangeEntry,
  type ChangePage,
  type TombstoneKey,
} from './storage.js';
import type { KeysPage } from '../protocol/keys.js';

type ScriptedRedis = Redis & {
  dynamoStoreHint(
    k1: string,
    k2: string,
    k3: string,
    k4: string,
    k5: string,
    versions: string,
    member: string,
    owner: string,
    maxHints: number,
    maxBytes: number,
  ): Promise<number>;
  dynamoDeleteHint(k1: string, k2: string, k3: string, k4: string, k5: string, raw: string, member: string, owner: string): Promise<number>;
  dynamoFoldDirty(leaves: string, dirty: string, count: number): Promise<number>;
  dynamoCoordinate(
    key: string,
    counterKey: string,
    epochKey: string,
    dirty: string,
    node: string,
    ts: string,
    context: string,
    value: string,
    tombstone: string,
    conditional: string,
    field: string,
    segment: number,
    supersede: string,
    maxSiblings: number,
    expiresAt: string,
  ): Promise<string>;
  dynamoReap(dirty: string, now: number, ...fieldsAndSegments: (string | number)[]): Promise<number>;
  dynamoDeleteIfUnchanged(key: string, dirty: string, raw: string, field: string, segment: number): Promise<number>;
  dynamoReplaceIfUnchanged(key: string, raw: string, next: string): Promise<number>;
  dynamoEpoch(key: string): Promise<string>;
  dynamoAppendChanges(log: string, ...keepAndEntries: (string | number)[]): Promise<string[]>;
  dynamoLease(key: string, owner: string, ttlMs: number): Promise<number>;
  dynamoRelease(key: string, owner: string): Promise<number>;
  dynamoRefreshTree(numKeys: number, ...args: (string | number)[]): Promise<number>;
  dynamoApplyMany(numKeys: number, ...args: (string | number)[]): Promise<number[]>;
  dynamoRecomputeLeaves(numKeys: number, ...args: (string | number)[]): Promise<number>;
};

/** Redis key holding the highest dot counter this node has issued. */
const DOT_COUNTER_KEY = 'm:dot';
/** The store's epoch: part of every dot it issues, renewed when the store loses its data. */
const EPOCH_KEY = 'm:epoch';
/** Anti-entropy tree: the leaves (one string), each segment's key index, and the shape it was built for. */
const TREE_LEAVES = 't:leaves';
const treeIndexKey = (segment: number) => `t:s:${segment}`;
const TREE_BUILT = 't:built';
/**
 * APPLY_MANY_LUA's shortcut argument: for one version whose clock does not cover its own dot
 * (every version a writer issues), '*' and its clock as "writer counter " pairs; '' otherwise.
 */
export function shortcutClock(versions: readonly Version[]): string {
  const v = versions.length === 1 ? versions[0] : undefined;
  if (v === undefined) return '';
  const own = v.c[v.d[0]];
  if (own !== undefined && own[0] >= v.d[1]) return '';
  let text = '*';
  for (const [writer, [counter]] of Object.entries(v.c)) text += `${writer} ${counter} `;
  return text;
}

/** Keys written since the tree last took them in, as `segment|field` (see FOLD_DIRTY_LUA). */
const TREE_DIRTY = 't:dirty';
/**
 * How stale the indexes may be for housekeeping (the reapers of expired values and of
 * tombstones, every second): they fold first only when no fold has started for this long.
 * A key rewritten many times between two folds is folded once, which is what taking the
 * tree off the write is for; folding every second, a key was folded about as often as it
 * was written. Exchanges, listings and counts still fold first, every time. A value past its
 * expiry already reads as gone, so reaping it a few seconds later only frees its bytes later.
 */
export const HOUSEKEEPING_FOLD_MS = 5000;

/**
 * Dirty keys folded per script call. A fold costs Redis about 33 µs a key (`npm run
 * bench:scripts`), and a script holds Redis for all its keys: 64 a call is about 2 ms, where 256
 * held every write and read to that node's Redis back for 8 ms or more.
 */
const FOLD_BATCH = 64;
/** Number of segment indexes (kept by the scripts). */
const TREE_SEGMENTS = 't:segs';
/** The listing index: every `bucket:key` holding a value, kept by the same folds (see indexkey in redis-scripts.ts). */
const LIST_INDEX = 'k:index';
/** When each key's values all expire, by field (see indexkey in redis-scripts.ts). */
const EXPIRY_INDEX = 'x:index';
/** Keys holding only tombstones, scored by when they last changed (see indexkey in redis-scripts.ts). */
const TOMBSTONE_INDEX = 'z:index';
/** The change log: one entry per acknowledged write this node coordinated (see actors/node/change-log.ts). */
const CHANGE_LOG = 'w:log';
/** Index entries read per command while listing. */
const LIST_CHUNK = 1000;
/** What the tree and the listing index were built as: a store built as anything else is rebuilt. */
const TREE_VERSION = `xor16-sha1-${SEGMENTS}+keys+tombstones+states`;
/** Hex digits of a key's hash in its index entry. */
const HASH_HEX = 32;
/** The leases a node's processes take (one per actor), kept beside the data. */
const LEASE_NAMES = ['node', 'coordinator', 'gossiper', 'anti-entropy'];
/** Keys per script call while rebuilding a tree. */
const REBUILD_BATCH = 200;
/** Redis hash of node-local bookkeeping. */
const META_KEY = 'm:meta';
const HINT_OWNERS = 'm:hint-owners';
const HINT_BYTES = 'm:hint-bytes';
const HINT_COUNT = 'm:hint-count';

/**
 * The production replica store: one Redis per node. Each write is a single
 * EVALSHA, so it pipelines and never interleaves with another write to the key.
 */
export class RedisStorage implements Storage {
  private readonly redis: ScriptedRedis;

  /** performance.now() when the last fold started (its writes are in the indexes). */
  private lastFoldAt = Number.NEGATIVE_INFINITY;
  private readonly housekeepingFoldMs: number;

  constructor(url: string, options: RedisOptions = {}, tuning: { housekeepingFoldMs?: number } = {}) {
    this.housekeepingFoldMs = tuning.housekeepingFoldMs ?? HOUSEKEEPING_FOLD_MS;
    const redis = new Redis(url, {
      // A replica that cannot reach its Redis should fail the request quickly;
      // the coordinator's quorum logic decides what that means for the client.
      maxRetriesPerRequest: 1,
      // Commands issued in the same event-loop turn go out in one write: a busy node makes far fewer syscalls.
      enableAutoPipelining: true,
      connectTimeout: 2000,
      lazyConnect: true,
      ...options,
    });
    redis.defineCommand('dynamoApplyMany', { lua: APPLY_MANY_LUA });
    redis.defineCommand('dynamoCoordinate', { numberOfKeys: 4, lua: COORDINATE_LUA });
    redis.defineCommand('dynamoFoldDirty', { numberOfKeys: 2, lua: FOLD_DIRTY_LUA });
    redis.defineCommand('dynamoRefreshTree', { lua: REFRESH_TREE_LUA });
    redis.defineCommand('dynamoAppendChanges', { numberOfKeys: 1, lua: APPEND_CHANGES_LUA });
    redis.defineCommand('dynamoEpoch', { numberOfKeys: 1, lua: EPOCH_LUA });
    redis.defineCommand('dynamoLease', { numberOfKeys: 1, lua: LEASE_LUA });
    redis.defineCommand('dynamoRelease', { numberOfKeys: 1, lua: RELEASE_LUA });
    redis.defineCommand('dynamoRecomputeLeaves', { lua: RECOMPUTE_LEAVES_LUA });
    redis.defineCommand('dynamoStoreHint', { numberOfKeys: 5, lua: STORE_HINT_LUA });
    redis.defineCommand('dynamoDeleteHint', { numberOfKeys: 5, lua: DELETE_HINT_LUA });
    redis.defineCommand('dynamoReap', { numberOfKeys: 1, lua: REAP_LUA });
    redis.defineCommand('dynamoDeleteIfUnchanged', { numberOfKeys: 2, lua: DELETE_IF_UNCHANGED_LUA });
    redis.defineCommand('dynamoReplaceIfUnchanged', { numberOfKeys: 1, lua: REPLACE_IF_UNCHANGED_LUA });
    // Connection errors surface through the commands that fail; without a listener
    // ioredis would print every reconnect attempt.
    redis.on('error', () => {});
    this.redis = redis as ScriptedRedis;
  }

  async connect(): Promise<void> {
    try {
      if (this.redis.status === 'wait') await this.redis.connect();
      await this.redis.ping();
    } catch (e) {
      throw new StorageError(`cannot reach Redis: ${(e as Error).message}`, { cause: e });
    }
  }

  async read(bucket: string, key: string): Promise<Version[]> {
    const raw = await this.readRaw(bucket, key);
    return raw === null ? [] : (JSON.parse(raw) as Version[]);
  }

  async readRaw(bucket: string, key: string): Promise<string | null> {
    try {
      return await this.redis.get(dataKey(bucket, key));
    } catch (e) {
      throw new StorageError(`read failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async apply(bucket: string, key: string, versions: readonly Version[]): Promise<boolean> {
    const [changed] = await this.applyMany([{ bucket, key, versions }]);
    return changed === true;
  }

  async applyMany(items: readonly VersionsOf[]): Promise<boolean[]> {
    if (items.length === 0) return [];
    const keys: string[] = [TREE_DIRTY];
    const args: (string | number)[] = [];
    for (const it of items) {
      keys.push(dataKey(it.bucket, it.key));
      args.push(JSON.stringify(it.versions), treeField(it.bucket, it.key), segmentOf(keyPosition(it.bucket, it.key)), shortcutClock(it.versions));
    }
    try {
      return (await this.redis.dynamoApplyMany(keys.length, ...keys, ...args)).map((r) => r === 1);
    } catch (e) {
      throw new StorageError(`write failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async coordinate(w: CoordinatedWrite): Promise<CoordinatedResult> {
    let text: string;
    try {
      const segment = segmentOf(keyPosition(w.bucket, w.key));
      text = await this.redis.dynamoCoordinate(
        dataKey(w.bucket, w.key),
        DOT_COUNTER_KEY,
        EPOCH_KEY,
        TREE_DIRTY,
        w.node,
        String(w.ts),
        JSON.stringify(w.context),
        w.value ?? '',
        w.value === undefined ? '1' : '0',
        w.condition === 'match' ? '1' : w.condition === 'none-match' ? '2' : '0',
        treeField(w.bucket, w.key),
        segment,
        w.supersede ? '1' : '0',
        w.maxSiblings ?? 0,
        w.expiresAt === undefined ? '' : String(w.expiresAt),
      );
    } catch (e) {
      if ((e as Error).message.startsWith('CONFLICT')) throw new ConflictError((e as Error).message.slice('CONFLICT '.length), { cause: e });
      if ((e as Error).message.startsWith('SIBLINGS')) throw new SiblingLimitError((e as Error).message.slice('SIBLINGS '.length), { cause: e });
      throw new StorageError(`write failed: ${(e as Error).message}`, { cause: e });
    }
    const siblings = JSON.parse(text) as Version[];
    return { version: siblings[siblings.length - 1], siblingsText: text };
  }

  async scan(cursor: string, count: number): Promise<{ cursor: string; keys: StoredKey[] }> {
    try {
      const [next, names] = await this.redis.scan(cursor, 'MATCH', 'v:*', 'COUNT', count);
      return { cursor: next, keys: names.map(parseDataKey).filter((k): k is StoredKey => k !== null) };
    } catch (e) {
      throw new StorageError(`scan failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async listKeys(
    bucket: string,
    prefix: string,
    after: string | null,
    limit: number,
    accept: (key: string) => boolean,
    maxScan: number,
    now: number,
  ): Promise<KeysPage> {
    try {
      // The index is kept by the folds, like the tree: fold first, so it holds every acknowledged write.
      await this.foldTree();
      const head = `${bucket}:`;
      // Everything starting with the prefix sorts below prefix + 0xff: no UTF-8 text holds that byte.
      const max = Buffer.concat([Buffer.from(`(${head}${prefix}`, 'utf8'), Buffer.from([0xff])]);
      let min = after === null ? `[${head}${prefix}` : `(${head}${after}`;
      const keys: string[] = [];
      for (let scanned = 0; scanned < maxScan; ) {
        const chunk = Math.min(LIST_CHUNK, maxScan - scanned);
        const fields = await this.redis.zrangebylex(LIST_INDEX, min, max, 'LIMIT', 0, chunk);
        // When each key's values expire, if they all do: a key past it is not listed (the reaper has yet to reach it).
        const until = fields.length === 0 ? [] : await this.redis.zmscore(EXPIRY_INDEX, ...fields);
        for (let i = 0; i < fields.length; i++) {
          const key = fields[i].slice(head.length);
          const expiry = until[i];
          if ((expiry === null || expiry === undefined || Number(expiry) > now) && accept(key)) keys.push(key);
          if (keys.length === limit) return { keys, next: key };
        }
        scanned += fields.length;
        if (fields.length < chunk) return { keys, next: null };
        min = `(${fields[fields.length - 1]}`;
      }
      return { keys, next: min.slice(1 + head.length) };
    } catch (e) {
      throw new StorageError(`key listing failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async liveKeyCount(now: number): Promise<number> {
    await this.foldTree();
    const [listed, expired] = await Promise.all([this.redis.zcard(LIST_INDEX), this.redis.zcount(EXPIRY_INDEX, '-inf', now)]);
    return listed - expired;
  }

  async reapExpired(now: number, max: number): Promise<number> {
    try {
      await this.foldTreeForHousekeeping();
      const fields = await this.redis.zrangebyscore(EXPIRY_INDEX, '-inf', now, 'LIMIT', 0, max);
      if (fields.length === 0) return 0;
      const args: (string | number)[] = [];
      for (const f of fields) {
        const { bucket, key } = parseTreeField(f);
        args.push(f, segmentOf(keyPosition(bucket, key)));
      }
      return await this.redis.dynamoReap(TREE_DIRTY, now, ...args);
    } catch (e) {
      throw new StorageError(`reaping expired values failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async appendChanges(entries: readonly ChangeEntry[], keep: number): Promise<string[]> {
    if (entries.length === 0) return [];
    try {
      const args: (string | number)[] = [keep];
      for (const e of entries) args.push(e.bucket, e.key, e.event);
      return await this.redis.dynamoAppendChanges(CHANGE_LOG, ...args);
    } catch (e) {
      throw new StorageError(`change log append failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async readChanges(after: string | null, count: number): Promise<ChangePage> {
    try {
      const [entries, info] = await Promise.all([
        after === null ? Promise.resolve([]) : this.redis.xrange(CHANGE_LOG, `(${after}`, '+', 'COUNT', count),
        this.redis.call('XINFO', 'STREAM', CHANGE_LOG).catch(() => null) as Promise<unknown[] | null>,
      ]);
      // XINFO STREAM answers a flat list of names and values.
      const field = (name: string): unknown => {
        if (info === null) return null;
        const i = info.indexOf(name);
        return i >= 0 ? info[i + 1] : null;
      };
      const head = field('last-generated-id');
      const first = field('first-entry');
      const oldest = Array.isArray(first) && typeof first[0] === 'string' ? first[0] : null;
      return {
        changes: entries.map(([id, f]) => ({ id, bucket: f[1] ?? '', key: f[3] ?? '', event: f[5] ?? '{}' })),
        head: typeof head === 'string' && head !== '0-0' ? head : null,
        oldest,
        // Trimming (MAXLEN) keeps no record of what it dropped but the count added beyond the length.
        trimmed: Number(field('entries-added') ?? 0) > Number(field('length') ?? 0),
      };
    } catch (e) {
      throw new StorageError(`change log read failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async deleteIfUnchanged(bucket: string, key: string, raw: string): Promise<boolean> {
    try {
      const segment = segmentOf(keyPosition(bucket, key));
      return (await this.redis.dynamoDeleteIfUnchanged(dataKey(bucket, key), TREE_DIRTY, raw, treeField(bucket, key), segment)) === 1;
    } catch (e) {
      throw new StorageError(`delete failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async tombstones(before: number, offset: number, max: number): Promise<TombstoneKey[]> {
    try {
      await this.foldTreeForHousekeeping();
      const flat = await this.redis.zrangebyscore(TOMBSTONE_INDEX, '-inf', before, 'WITHSCORES', 'LIMIT', offset, max);
      const found: { field: string; at: number }[] = [];
      for (let i = 0; i < flat.length; i += 2) found.push({ field: flat[i], at: Number(flat[i + 1]) });
      if (found.length === 0) return [];
      const raws = await this.redis.mget(found.map((f) => `v:${f.field}`));
      return found.flatMap((f, i) => {
        const raw = raws[i];
        // The index is as of the last fold: a key written since may hold a value again.
        return raw === null || (JSON.parse(raw) as Version[]).some((v) => v.v !== undefined) ? [] : [{ ...parseTreeField(f.field), raw, at: f.at }];
      });
    } catch (e) {
      throw new StorageError(`reading tombstones failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async replaceIfUnchanged(bucket: string, key: string, raw: string, next: string): Promise<boolean> {
    try {
      return (await this.redis.dynamoReplaceIfUnchanged(dataKey(bucket, key), raw, next)) === 1;
    } catch (e) {
      throw new StorageError(`write failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async tombstoneCount(): Promise<number> {
    await this.foldTree();
    return this.redis.zcard(TOMBSTONE_INDEX);
  }

  async storeClock(): Promise<number> {
    const [s, us] = await this.redis.time();
    return Number(s) * 1000 + Math.floor(Number(us) / 1000);
  }

  async readHint(owner: string, bucket: string, key: string): Promise<string | null> {
    return this.redis.get(this.hintKeys(owner, bucket, key)[0]);
  }

  async wipeData(): Promise<number> {
    try {
      let dropped = 0;
      // Data keys, tree indexes and hints, a page at a time; then the single bookkeeping keys.
      for (const pattern of ['v:*', 't:s:*', 'h:*', 'hk:*']) {
        for (let cursor = '0'; ; ) {
          const [next, names] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
          if (names.length > 0) await this.redis.unlink(...names);
          if (pattern === 'v:*') dropped += names.length;
          cursor = next;
          if (cursor === '0') break;
        }
      }
      await this.redis.unlink(
        DOT_COUNTER_KEY,
        EPOCH_KEY,
        HINT_OWNERS,
        HINT_BYTES,
        HINT_COUNT,
        TREE_LEAVES,
        TREE_SEGMENTS,
        TREE_DIRTY,
        LIST_INDEX,
        EXPIRY_INDEX,
        TOMBSTONE_INDEX,
      );
      await this.redis.set(TREE_BUILT, TREE_VERSION);
      return dropped;
    } catch (e) {
      throw new StorageError(`wiping the store failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async readRawMany(keys: readonly StoredKey[]): Promise<(string | null)[]> {
    if (keys.length === 0) return [];
    try {
      return await this.redis.mget(keys.map((k) => dataKey(k.bucket, k.key)));
    } catch (e) {
      throw new StorageError(`read failed: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * Fold the keys written since the last fold into the tree, a batch per script call,
   * so that what is read next matches the data. Bounded by the dirty keys there were
   * when it started: writes that keep coming are left for the next fold.
   */
  private async foldTree(): Promise<void> {
    const started = performance.now();
    const pending = await this.redis.scard(TREE_DIRTY);
    for (let calls = Math.ceil(pending / FOLD_BATCH) + 1; calls > 0; calls--) {
      if ((await this.redis.dynamoFoldDirty(TREE_LEAVES, TREE_DIRTY, FOLD_BATCH)) < FOLD_BATCH) break;
    }
    this.lastFoldAt = Math.max(this.lastFoldAt, started);
  }

  /** Housekeeping's fold: only when none has started for housekeepingFoldMs (see HOUSEKEEPING_FOLD_MS). */
  private async foldTreeForHousekeeping(): Promise<void> {
    if (performance.now() - this.lastFoldAt >= this.housekeepingFoldMs) await this.foldTree();
  }

  async treeLeaves(): Promise<Uint8Array> {
    try {
      await this.foldTree();
      return (await this.redis.getBuffer(TREE_LEAVES)) ?? new Uint8Array(0);
    } catch (e) {
      throw new StorageError(`tree read failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async segmentKeys(segments: readonly number[]): Promise<Map<string, string>[]> {
    if (segments.length === 0) return [];
    // No fold here: the indexes stay as the exchange's treeLeaves() left them, in step with
    // the leaves it compared; keys written since are dirty and go into the next exchange.
    const pipeline = this.redis.pipeline();
    for (const s of segments) pipeline.hgetall(treeIndexKey(s));
    const results = (await pipeline.exec()) ?? [];
    return results.map(([err, value]) => {
      if (err) throw new StorageError(`tree read failed: ${err.message}`, { cause: err });
      // An entry is the key's hash and a letter for its listing state (FOLD_DIRTY_LUA): the exchange compares hashes.
      const index = new Map<string, string>();
      for (const [field, entry] of Object.entries(value as Record<string, string>)) index.set(field, entry.slice(0, HASH_HEX));
      return index;
    });
  }

  async treeBuilt(): Promise<boolean> {
    // An empty store needs no rebuild: its tree is (trivially) what its writes made it.
    if ((await this.redis.get(TREE_BUILT)) === TREE_VERSION) return true;
    if ((await this.keyCount()) > 0) return false;
    await this.redis.set(TREE_BUILT, TREE_VERSION);
    return true;
  }

  async rebuildTree(onProgress: (keys: number) => void = () => {}): Promise<number> {
    let done = 0;
    const refresh = async (fields: readonly { bucket: string; key: string }[]) => {
      for (let i = 0; i < fields.length; i += REBUILD_BATCH) {
        const batch = fields.slice(i, i + REBUILD_BATCH);
        const keys: string[] = [TREE_LEAVES];
        const argv: (string | number)[] = [];
        for (const f of batch) {
          const segment = segmentOf(keyPosition(f.bucket, f.key));
          keys.push(dataKey(f.bucket, f.key), treeIndexKey(segment));
          argv.push(treeField(f.bucket, f.key), segment);
        }
        await this.redis.dynamoRefreshTree(keys.length, ...keys, ...argv);
        done += batch.length;
        onProgress(done);
      }
    };
    // 1. every stored key into its index; 2. index entries whose key is gone out of it.
    for (let cursor = '0'; ; ) {
      const page = await this.scan(cursor, 1000);
      await refresh(page.keys);
      cursor = page.cursor;
      if (cursor === '0') break;
    }
    for (let cursor = '0'; ; ) {
      const [next, names] = await this.redis.scan(cursor, 'MATCH', 't:s:*', 'COUNT', 1000);
      for (const name of names) {
        const segment = Number(name.slice('t:s:'.length));
        const fields = (await this.redis.hkeys(name)).map((f) => ({ field: f, ...parseTreeField(f) }));
        // An entry filed under the wrong segment is dropped; step 3 fixes that leaf.
        const misfiled = fields.filter((f) => segmentOf(keyPosition(f.bucket, f.key)) !== segment);
        if (misfiled.length > 0) await this.redis.hdel(name, ...misfiled.map((f) => f.field));
        await refresh(fields.filter((f) => !misfiled.includes(f)));
      }
      cursor = next;
      if (cursor === '0') break;
    }
    // 3. every leaf from its index, whatever the leaves string held before; and the count of indexes.
    let indexes = 0;
    for (let s = 0; s < SEGMENTS; s += REBUILD_BATCH) {
      const segments = Array.from({ length: Math.min(REBUILD_BATCH, SEGMENTS - s) }, (_, i) => s + i);
      indexes += await this.redis.dynamoRecomputeLeaves(segments.length + 1, TREE_LEAVES, ...segments.map(treeIndexKey), ...segments);
    }
    await this.redis.mset(TREE_SEGMENTS, indexes, TREE_BUILT, TREE_VERSION);
    return done;
  }

  async writerId(node: string): Promise<string> {
    try {
      return `${node}.${await this.redis.dynamoEpoch(EPOCH_KEY)}`;
    } catch (e) {
      throw new StorageError(`epoch read failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async acquireLease(name: string, owner: string, ttlMs: number): Promise<boolean> {
    try {
      return (await this.redis.dynamoLease(`m:lease:${name}`, owner, ttlMs)) === 1;
    } catch (e) {
      throw new StorageError(`lease failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async releaseLease(name: string, owner: string): Promise<void> {
    await this.redis.dynamoRelease(`m:lease:${name}`, owner);
  }

  async metaOnce(name: string, value: string): Promise<string> {
    await this.redis.hsetnx(META_KEY, name, value);
    return (await this.redis.hget(META_KEY, name)) ?? value;
  }

  async getMeta(name: string): Promise<string | null> {
    return this.redis.hget(META_KEY, name);
  }

  async setMeta(name: string, value: string | null): Promise<void> {
    if (value === null) await this.redis.hdel(META_KEY, name);
    else await this.redis.hset(META_KEY, name, value);
  }

  private hintKeys(owner: string, bucket: string, key: string): [string, string, string, string, string] {
    return [`h:${owner}:${bucket}:${key}`, `hk:${owner}`, HINT_OWNERS, HINT_BYTES, HINT_COUNT];
  }

  async storeHint(owner: string, bucket: string, key: string, versions: readonly Version[]): Promise<'stored' | 'known' | 'full'> {
    try {
      const r = await this.redis.dynamoStoreHint(
        ...this.hintKeys(owner, bucket, key),
        JSON.stringify(versions),
        `${bucket}:${key}`,
        owner,
        HINT_LIMITS.maxHints,
        HINT_LIMITS.maxBytes,
      );
      return r === 1 ? 'stored' : r === 0 ? 'known' : 'full';
    } catch (e) {
      throw new StorageError(`hint write failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async hintOwners(): Promise<string[]> {
    return this.redis.smembers(HINT_OWNERS);
  }

  async readHints(owner: string, count: number): Promise<{ bucket: string; key: string; raw: string }[]> {
    const members = await this.redis.srandmember(`hk:${owner}`, count);
    if (members.length === 0) return [];
    const raws = await this.redis.mget(members.map((m) => `h:${owner}:${m}`));
    return members.flatMap((m, i) => {
      const colon = m.indexOf(':');
      const raw = raws[i];
      return raw ? [{ bucket: m.slice(0, colon), key: m.slice(colon + 1), raw }] : [];
    });
  }

  async deleteHint(owner: string, bucket: string, key: string, raw: string): Promise<void> {
    await this.redis.dynamoDeleteHint(...this.hintKeys(owner, bucket, key), raw, `${bucket}:${key}`, owner);
  }

  async hintCount(): Promise<number> {
    return Number((await this.redis.get(HINT_COUNT)) ?? 0);
  }

  async keyCount(): Promise<number> {
    // Everything that is not a data key: bookkeeping, hints and their per-owner indexes.
    const [size, meta, hints, owners] = await Promise.all([
      this.redis.dbsize(),
      this.redis.exists(
        DOT_COUNTER_KEY,
        EPOCH_KEY,
        META_KEY,
        HINT_OWNERS,
        HINT_BYTES,
        HINT_COUNT,
        TREE_LEAVES,
        TREE_BUILT,
        TREE_SEGMENTS,
        TREE_DIRTY,
        LIST_INDEX,
        EXPIRY_INDEX,
        TOMBSTONE_INDEX,
        CHANGE_LOG,
      ),
      this.hintCount(),
      this.redis.scard(HINT_OWNERS),
    ]);
    const segments = Number((await this.redis.get(TREE_SEGMENTS)) ?? 0);
    const leases = await this.redis.exists(...LEASE_NAMES.map((n) => `m:lease:${n}`));
    return size - meta - hints - owners - segments - leases;
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}
