import { errorReply, type ErrorReply } from '../errors.js';
import type { Version } from '../versioning/index.js';
import { isVersion, MAX_SIBLINGS_PER_ITEM } from './replica.js';
import { BUCKET_NAME } from './requests.js';

/**
 * Backups are NDJSON, one stored key of one replica a line: `{"b": bucket, "k": key,
 * "x": [versions]}`, every sibling with its dot, context, timestamp and expiry, tombstones
 * included. A key appears once per replica that held it; restoring merges them by their
 * clocks, so a line restored twice (or a key from two replicas) changes nothing more.
 */
export interface BackupItem {
  readonly b: string;
  readonly k: string;
  readonly x: Version[];
}

/** Keys a backup page or a restore request holds, at most. */
export const MAX_BACKUP_PAGE = 1000;

/** `<p>.node.<id>.admin.backup`: one page of a full scan of the node's keys, or the named keys alone. */
export type BackupRequest = { readonly cursor: string; readonly count: number } | { readonly keys: { b: string; k: string }[] };

const bad = (message: string): ErrorReply => errorReply('BAD_REQUEST', message);

export function parseBackupRequest(body: unknown): BackupRequest | ErrorReply {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return bad('expected {"cursor": "0", "count"?: 200} or {"keys": [{"b", "k"}]}');
  const b = body as Record<string, unknown>;
  if (b['keys'] !== undefined) {
    const keys = b['keys'];
    if (!Array.isArray(keys) || keys.length === 0 || keys.length > MAX_BACKUP_PAGE) return bad(`"keys" must hold 1 to ${MAX_BACKUP_PAGE} {"b", "k"}`);
    for (const k of keys) {
      if (k === null || typeof k !== 'object' || typeof k.b !== 'string' || !BUCKET_NAME.test(k.b) || typeof k.k !== 'string' || k.k.length === 0)
        return bad('each of "keys" must be {"b": bucket, "k": key}');
    }
    return { keys: keys as { b: string; k: string }[] };
  }
  const cursor = b['cursor'];
  if (typeof cursor !== 'string' || !/^\d{1,20}$/.test(cursor)) return bad('"cursor" must be the cursor of the last page ("0" to start)');
  const count = b['count'] ?? 200;
  if (!Number.isInteger(count) || (count as number) < 1 || (count as number) > MAX_BACKUP_PAGE)
    return bad(`"count" must be an integer from 1 to ${MAX_BACKUP_PAGE}`);
  return { cursor, count: count as number };
}

/** One backup line, from the stored JSON of the key's versions (passed on as it is). */
export function backupLine(bucket: string, key: string, raw: string): string {
  return `{"b":${JSON.stringify(bucket)},"k":${JSON.stringify(key)},"x":${raw}}`;
}

/** A backup line or a restore item, checked field by field; the error sentence for anything off. */
export function parseBackupItem(x: unknown, maxKeyBytes: number): BackupItem | string {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) return 'an item must be {"b": bucket, "k": key, "x": [versions]}';
  const o = x as Record<string, unknown>;
  if (Object.keys(o).some((f) => f !== 'b' && f !== 'k' && f !== 'x')) return 'an item holds only "b", "k" and "x"';
  if (typeof o['b'] !== 'string' || !BUCKET_NAME.test(o['b'])) return '"b" must be a bucket name';
  if (typeof o['k'] !== 'string' || o['k'].length === 0 || Buffer.byteLength(o['k'], 'utf8') > maxKeyBytes)
    return `"k" must be a key of 1 to ${maxKeyBytes} bytes`;
  const v = o['x'];
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_SIBLINGS_PER_ITEM || !v.every(isVersion))
    return `"x" must hold 1 to ${MAX_SIBLINGS_PER_ITEM} stored versions`;
  return { b: o['b'], k: o['k'], x: v };
}

/** `<p>.admin.restore {"items": [...]}`: up to MAX_BACKUP_PAGE items. */
export function parseRestore(body: unknown, maxKeyBytes: number): BackupItem[] | ErrorReply {
  const items = (body as { items?: unknown } | null)?.items;
  if (!Array.isArray(items) || items.length === 0 || items.length > MAX_BACKUP_PAGE) return bad(`expected {"items": [...]} with 1 to ${MAX_BACKUP_PAGE} items`);
  const out: BackupItem[] = [];
  for (let i = 0; i < items.length; i++) {
    const item = parseBackupItem(items[i], maxKeyBytes);
    if (typeof item === 'string') return errorReply('BAD_REQUEST', `item ${i}: ${item}`, { item: i });
    out.push(item);
  }
  return out;
}
