import { NODE_ID } from '../config.js';
import { ACTOR_ID, type Version } from '../versioning/index.js';
import { BUCKET_NAME } from './requests.js';
import { itemsBody } from './batch-fill.js';

/**
 * Node-to-node replica messages. Each carries a list of items so that messages to
 * the same peer go as one (src/transport/batcher.ts): as many items as one event-loop turn made.
 *
 *   replica.put  {"items":[{"b":bucket,"k":key,"x":[<version>...]}]} -> {"ok":true,"stored":[true|false]}
 *   replica.get  {"items":[{"b":bucket,"k":key}]}               -> {"ok":true,"found":[<siblings>|null]}
 *   replica.reap {"items":[{"b":bucket,"k":key,"x":[<tombstone>...]}]} -> {"ok":true,"reaped":["dropped"|"absent"|"kept"]}
 *     (drop the key's copy and hints where the tombstones cover them; see src/membership/reaping.ts)
 *   replica.compact {"apply":bool,"items":[{"b":bucket,"k":key,"x":[<version>]}]} -> {"ok":true,"compact":["same"|"covered"|"absent"|"kept"|"compacted"]}
 *     (an OR-Set key's single version: is it what this node holds, and with apply, drop its retired tags; see actors/node/retired-tags.ts)
 */
export interface ReplicaPutItem {
  readonly b: string;
  readonly k: string;
  /** versions to merge into the key, atomically */
  readonly x: readonly Version[];
  /** a hinted write: keep it for this node (the key's real replica, now down) and hand it over later */
  readonly h?: string;
}

export interface ReplicaGetItem {
  readonly b: string;
  readonly k: string;
}

/** Largest batch a replica accepts in one message. */
export const MAX_REPLICA_BATCH = 256;

/** One write as a batch item, without re-encoding the sibling-set text the storage returned. */
export function replicaPutItem(bucket: string, key: string, versionsText: string, hintFor?: string): string {
  const hint = hintFor === undefined ? '' : `,"h":${JSON.stringify(hintFor)}`;
  return `{"b":${JSON.stringify(bucket)},"k":${JSON.stringify(key)},"x":${versionsText}${hint}}`;
}

/** A batch of one write. */
export function replicaPutText(bucket: string, key: string, versionsText: string, hintFor?: string): string {
  return itemsBody([replicaPutItem(bucket, key, versionsText, hintFor)]);
}

export function replicaGetItem(bucket: string, key: string): string {
  return `{"b":${JSON.stringify(bucket)},"k":${JSON.stringify(key)}}`;
}

/** Siblings a replica accepts for one key in one message. */
export const MAX_SIBLINGS_PER_ITEM = 1024;

export function replicaGetText(bucket: string, key: string): string {
  return itemsBody([replicaGetItem(bucket, key)]);
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const isCount = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

function isClock(x: unknown): boolean {
  if (!isObj(x)) return false;
  for (const [node, e] of Object.entries(x)) {
    if (!ACTOR_ID.test(node) || !Array.isArray(e) || e.length !== 2 || !isCount(e[0]) || !isCount(e[1])) return false;
  }
  return true;
}

export function isVersion(x: unknown): x is Version {
  if (!isObj(x)) return false;
  const d = x['d'];
  if (!Array.isArray(d) || d.length !== 2 || typeof d[0] !== 'string' || !ACTOR_ID.test(d[0]) || !isCount(d[1]) || d[1] < 1) return false;
  if (!isClock(x['c']) || !isCount(x['t'])) return false;
  if (x['v'] !== undefined && typeof x['v'] !== 'string') return false;
  if (x['x'] !== undefined && !isCount(x['x'])) return false;
  return Object.keys(x).every((k) => k === 'd' || k === 'c' || k === 't' || k === 'v' || k === 'x');
}

function itemBase(x: unknown): x is { b: string; k: string } {
  return isObj(x) && typeof x['b'] === 'string' && BUCKET_NAME.test(x['b']) && typeof x['k'] === 'string' && x['k'].length > 0;
}

/** Parse a replica batch; returns an error sentence for anything malformed. */
export function parseReplicaBatch<T>(body: unknown, isItem: (x: unknown) => x is T): T[] | string {
  if (!isObj(body) || !Array.isArray(body['items'])) return 'expected {"items":[...]}';
  const items = body['items'] as unknown[];
  if (items.length === 0 || items.length > MAX_REPLICA_BATCH) return `a batch holds 1 to ${MAX_REPLICA_BATCH} items`;
  for (const it of items) if (!isItem(it)) return 'malformed replica item';
  return items as T[];
}

export const isPutItem = (x: unknown): x is ReplicaPutItem => {
  if (!itemBase(x)) return false;
  const vs = (x as Record<string, unknown>)['x'];
  const h = (x as Record<string, unknown>)['h'];
  if (h !== undefined && (typeof h !== 'string' || !NODE_ID.test(h))) return false;
  return Array.isArray(vs) && vs.length > 0 && vs.length <= MAX_SIBLINGS_PER_ITEM && vs.every(isVersion);
};
export const isGetItem = (x: unknown): x is ReplicaGetItem => itemBase(x) && Object.keys(x as object).length === 2;

/** A reap item: a put item without a hint whose versions are all tombstones. */
export const isReapItem = (x: unknown): x is ReplicaPutItem =>
  isPutItem(x) && (x as ReplicaPutItem).h === undefined && (x as ReplicaPutItem).x.every((v) => v.v === undefined);

/** A compact item: one version, holding a value, no hint. */
export const isCompactItem = (x: unknown): x is ReplicaPutItem =>
  isPutItem(x) && (x as ReplicaPutItem).h === undefined && (x as ReplicaPutItem).x.length === 1 && (x as ReplicaPutItem).x[0]?.v !== undefined;
