import { ConflictError } from '../errors.js';
import { LeafIndex, treeField } from '../merkle/index.js';
import { keyPosition, segmentOf } from '../ring/index.js';
import { counterOf, expired, fullClock, isLive, merge as mergeClocks, mergeVersion, prune, type VClock, type Version } from '../versioning/index.js';
import {
  dataKey,
  HINT_LIMITS,
  parseDataKey,
  SCAN_START,
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
import { present } from '../invariant.js';
import { compareKeys, type KeysPage } from '../protocol/keys.js';
import { compareChangeIds } from '../protocol/changes.js';

/**
 * In-memory replica store for unit tests and simulation. It applies the same
 * merge rules as the Redis script, through the pure versioning module.
 */
export class MemoryStorage implements Storage {
  /** `now`: ms for lease expiry (a simulation passes its clock). */
  constructor(private readonly now: () => number = Date.now) {}

  private data = new Map<string, Version[]>();
  private dotCounters = new Map<string, number>();
  private readonly meta = new Map<string, string>();
  private tree = new LeafIndex();
  /** Renewed by wipe(), as a wiped Redis renews its epoch. */
  private epoch = 0;

  /** Keys holding only tombstones, by data key: when they last changed (this.now()). */
  private tombs = new Map<string, number>();

  private store(bucket: string, key: string, siblings: Version[]): void {
    const name = dataKey(bucket, key);
    this.data.set(name, siblings);
    this.tree.update(segmentOf(keyPosition(bucket, key)), treeField(bucket, key), siblings);
    // Re-inserted so the map stays in the order keys became tombstones, as z:index sorts them.
    this.tombs.delete(name);
    if (siblings.length > 0 && siblings.every((s) => s.v === undefined)) this.tombs.set(name, this.now());
  }

  /** Test helper: lose every key, as a flushed Redis does. */
  wipe(): void {
    this.data = new Map();
    this.dotCounters = new Map();
    this.tree = new LeafIndex();
    this.tombs = new Map();
    this.hints.clear();
    this.epoch++;
  }

  async wipeData(): Promise<number> {
    const n = this.data.size;
    this.wipe();
    return n;
  }

  async tombstones(before: number, offset: number, max: number): Promise<TombstoneKey[]> {
    const out: TombstoneKey[] = [];
    let skipped = 0;
    for (const [name, at] of this.tombs) {
      if (at > before || out.length >= max) break;
      if (skipped++ < offset) continue;
      out.push({ ...present(parseDataKey(name), 'only data keys are stored'), raw: JSON.stringify(this.data.get(name)), at });
    }
    return out;
  }

  async replaceIfUnchanged(bucket: string, key: string, raw: string, next: string): Promise<boolean> {
    const name = dataKey(bucket, key);
    if (JSON.stringify(this.data.get(name)) !== raw) return false;
    this.store(bucket, key, JSON.parse(next) as Version[]);
    return true;
  }

  async tombstoneCount(): Promise<number> {
    return this.tombs.size;
  }

  async storeClock(): Promise<number> {
    return this.now();
  }

  async readHint(owner: string, bucket: string, key: string): Promise<string | null> {
    const v = this.hints.get(owner)?.get(`${bucket}:${key}`);
    return v === undefined ? null : JSON.stringify(v);
  }

  async read(bucket: string, key: string): Promise<Version[]> {
    return [...(this.data.get(dataKey(bucket, key)) ?? [])];
  }

  async readRaw(bucket: string, key: string): Promise<string | null> {
    const s = this.data.get(dataKey(bucket, key));
    return s === undefined ? null : JSON.stringify(s);
  }

  async apply(bucket: string, key: string, versions: readonly Version[]): Promise<boolean> {
    let siblings = this.data.get(dataKey(bucket, key)) ?? [];
    let changed = false;
    for (const v of versions) {
      const r = mergeVersion(siblings, v);
      siblings = r.siblings;
      changed ||= r.changed;
    }
    if (changed) this.store(bucket, key, siblings);
    return changed;
  }

  async applyMany(items: readonly VersionsOf[]): Promise<boolean[]> {
    return Promise.all(items.map((it) => this.apply(it.bucket, it.key, it.versions)));
  }

  async coordinate(w: CoordinatedWrite): Promise<CoordinatedResult> {
    const current = this.data.get(dataKey(w.bucket, w.key)) ?? [];
    let context: VClock = w.context;
    let ts = w.ts;
    if (w.condition === 'match' && current.some((s) => counterOf(w.context, s.d[0]) < s.d[1])) {
      throw new ConflictError('a version was written since the context was read');
    }
    if (w.condition === 'none-match') {
      if (current.some((s) => isLive(s, w.ts))) throw new ConflictError('the key exists');
      for (const s of current) context = mergeClocks(context, fullClock(s));
    }
    if (w.supersede) {
      for (const s of current) {
        context = mergeClocks(context, fullClock(s));
        ts = Math.max(ts, s.t + 1);
      }
    }
    context = prune(context);
    if (w.maxSiblings) {
      const kept = 1 + current.filter((s) => counterOf(context, s.d[0]) < s.d[1]).length;
      if (kept > w.maxSiblings) throw new SiblingLimitError(`the key would hold ${kept} siblings`);
    }
    const actor = `${w.node}.${this.epoch.toString(36)}`;
    let counter = Math.max((this.dotCounters.get(actor) ?? 0) + 1, counterOf(context, actor) + 1);
    for (const s of current) counter = Math.max(counter, counterOf(fullClock(s), actor) + 1);
    this.dotCounters.set(actor, counter);
    const version: Version =
      w.value === undefined
        ? { d: [actor, counter], c: context, t: ts }
        : w.expiresAt === undefined
          ? { d: [actor, counter], c: context, t: ts, v: w.value }
          : { d: [actor, counter], c: context, t: ts, v: w.value, x: w.expiresAt };
    const siblings = mergeVersion(current, version).siblings;
    this.store(w.bucket, w.key, siblings);
    return { version, siblingsText: JSON.stringify(siblings) };
  }

  async writerId(node: string): Promise<string> {
    return `${node}.${this.epoch.toString(36)}`;
  }

  async scan(cursor: string, count: number): Promise<{ cursor: string; keys: StoredKey[] }> {
    // The cursor is the last data key returned: robust to keys added or removed between pages.
    const keys = [...this.data.keys()]
      .filter((k) => cursor === SCAN_START || k > cursor)
      .sort()
      .slice(0, count);
    const done = keys.length < count;
    return { cursor: done ? SCAN_START : keys[keys.length - 1], keys: keys.map((k) => present(parseDataKey(k), 'only data keys are listed')) };
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
    const live: string[] = [];
    for (const [name, siblings] of this.data) {
      const k = parseDataKey(name);
      if (k === null || k.bucket !== bucket || !k.key.startsWith(prefix) || !siblings.some((s) => isLive(s, now))) continue;
      if (after === null || compareKeys(k.key, after) > 0) live.push(k.key);
    }
    live.sort(compareKeys);
    const keys: string[] = [];
    for (let i = 0; i < live.length; i++) {
      if (i >= maxScan) return { keys, next: live[i - 1] };
      if (accept(live[i])) keys.push(live[i]);
      if (keys.length === limit) return { keys, next: i === live.length - 1 ? null : live[i] };
    }
    return { keys, next: null };
  }

  async liveKeyCount(now: number): Promise<number> {
    let n = 0;
    for (const siblings of this.data.values()) if (siblings.some((s) => isLive(s, now))) n++;
    return n;
  }

  async reapExpired(now: number, max: number): Promise<number> {
    let dropped = 0;
    let keys = 0;
    for (const [name, siblings] of this.data) {
      if (keys >= max) break;
      const after = expired(siblings, now);
      if (after === siblings) continue;
      keys++;
      dropped += siblings.filter((s) => s.v !== undefined).length - after.filter((s) => s.v !== undefined).length;
      const k = present(parseDataKey(name), 'only data keys are stored');
      this.store(k.bucket, k.key, [...after]);
    }
    return dropped;
  }

  private readonly changeLog: { id: string; bucket: string; key: string; event: string }[] = [];
  private changeSeq = 0;
  private changeTrimmed: string | null = null;

  async appendChanges(entries: readonly ChangeEntry[], keep: number): Promise<string[]> {
    const ids = entries.map(({ bucket, key, event }) => {
      const id = `0-${++this.changeSeq}`;
      this.changeLog.push({ id, bucket, key, event });
      return id;
    });
    while (this.changeLog.length > keep) this.changeTrimmed = present(this.changeLog.shift(), 'the log is longer than it keeps').id;
    return ids;
  }

  async readChanges(after: string | null, count: number): Promise<ChangePage> {
    const changes = after === null ? [] : this.changeLog.filter((c) => compareChangeIds(c.id, after) > 0).slice(0, count);
    return {
      changes,
      head: this.changeLog[this.changeLog.length - 1]?.id ?? this.changeTrimmed,
      oldest: this.changeLog[0]?.id ?? null,
      trimmed: this.changeTrimmed !== null,
    };
  }

  async deleteIfUnchanged(bucket: string, key: string, raw: string): Promise<boolean> {
    const siblings = this.data.get(dataKey(bucket, key));
    if (siblings === undefined || JSON.stringify(siblings) !== raw) return false;
    this.data.delete(dataKey(bucket, key));
    this.tombs.delete(dataKey(bucket, key));
    this.tree.update(segmentOf(keyPosition(bucket, key)), treeField(bucket, key), []);
    return true;
  }

  async readRawMany(keys: readonly StoredKey[]): Promise<(string | null)[]> {
    return Promise.all(keys.map((k) => this.readRaw(k.bucket, k.key)));
  }

  private readonly leases = new Map<string, { owner: string; until: number }>();

  async acquireLease(name: string, owner: string, ttlMs: number): Promise<boolean> {
    const held = this.leases.get(name);
    if (held && held.owner !== owner && held.until > this.now()) return false;
    this.leases.set(name, { owner, until: this.now() + ttlMs });
    return true;
  }

  async releaseLease(name: string, owner: string): Promise<void> {
    if (this.leases.get(name)?.owner === owner) this.leases.delete(name);
  }

  async metaOnce(name: string, value: string): Promise<string> {
    const stored = this.meta.get(name);
    if (stored !== undefined) return stored;
    this.meta.set(name, value);
    return value;
  }

  async getMeta(name: string): Promise<string | null> {
    return this.meta.get(name) ?? null;
  }

  async setMeta(name: string, value: string | null): Promise<void> {
    if (value === null) this.meta.delete(name);
    else this.meta.set(name, value);
  }

  private readonly hints = new Map<string, Map<string, Version[]>>();

  async storeHint(owner: string, bucket: string, key: string, versions: readonly Version[]): Promise<'stored' | 'known' | 'full'> {
    const forOwner = this.hints.get(owner) ?? new Map<string, Version[]>();
    const k = `${bucket}:${key}`;
    const current = forOwner.get(k);
    if (current === undefined && (await this.hintCount()) >= HINT_LIMITS.maxHints) return 'full';
    let siblings = current ?? [];
    let changed = false;
    for (const v of versions) {
      const r = mergeVersion(siblings, v);
      siblings = r.siblings;
      changed ||= r.changed;
    }
    if (!changed) return 'known';
    forOwner.set(k, siblings);
    this.hints.set(owner, forOwner);
    return 'stored';
  }

  async hintOwners(): Promise<string[]> {
    return [...this.hints.keys()];
  }

  async readHints(owner: string, count: number): Promise<{ bucket: string; key: string; raw: string }[]> {
    return [...(this.hints.get(owner) ?? new Map<string, Version[]>())].slice(0, count).map(([k, v]) => {
      const colon = k.indexOf(':');
      return { bucket: k.slice(0, colon), key: k.slice(colon + 1), raw: JSON.stringify(v) };
    });
  }

  async deleteHint(owner: string, bucket: string, key: string, raw: string): Promise<void> {
    const forOwner = this.hints.get(owner);
    const k = `${bucket}:${key}`;
    if (forOwner && JSON.stringify(forOwner.get(k)) === raw) forOwner.delete(k);
    if (forOwner?.size === 0) this.hints.delete(owner);
  }

  async hintCount(): Promise<number> {
    let n = 0;
    for (const m of this.hints.values()) n += m.size;
    return n;
  }

  async treeLeaves(): Promise<Uint8Array> {
    return Uint8Array.from(this.tree.leaves);
  }

  async segmentKeys(segments: readonly number[]): Promise<Map<string, string>[]> {
    return segments.map((s) => this.tree.keys(s));
  }

  async treeBuilt(): Promise<boolean> {
    return true;
  }

  async rebuildTree(onProgress: (keys: number) => void = () => {}): Promise<number> {
    this.tree = new LeafIndex();
    for (const [k, siblings] of this.data) {
      const { bucket, key } = present(parseDataKey(k), 'only data keys are listed');
      this.tree.update(segmentOf(keyPosition(bucket, key)), treeField(bucket, key), siblings);
    }
    onProgress(this.data.size);
    return this.data.size;
  }

  async keyCount(): Promise<number> {
    return this.data.size;
  }

  async connect(): Promise<void> {}

  async ping(): Promise<void> {}

  async close(): Promise<void> {}

  /** Test helper: every stored key. */
  keys(): string[] {
    return [...this.data.keys()];
  }
}
