import { errorReply, type ErrorReply } from '../errors.js';
import { BUCKET_NAME } from './requests.js';

/**
 * Change events: every write a node coordinates and acknowledges is appended to that
 * node's change log (a Redis stream) and published on `<p>.watch.<bucket>`, batched
 * per bucket per turn as `{"node", "events": [...]}`. Each event names its log entry
 * (`id`) and the one before it on the same node (`prev`), so a watcher can tell it
 * missed some and fetch them from the log (`<p>.node.<id>.watch.since`).
 */
export interface ChangeEvent {
  readonly op: 'put' | 'delete';
  readonly bucket: string;
  readonly key: string;
  /** the value the write stored (a put; for CRDT buckets, the new state), or [] for a delete */
  readonly values: unknown[];
  /** the write's context, as the put's reply carries it */
  readonly context: string;
  /** the coordinator's timestamp of the write (ms) */
  readonly ts: number;
  /** when the value expires (ms), if it does */
  readonly expiresAt?: number;
  /** the node that coordinated it, its log entry, and the entry before it there (null: none) */
  readonly node: string;
  readonly id: string;
  readonly prev: string | null;
}

/** A log entry id, as Redis streams make them. */
export const CHANGE_ID = /^\d{1,20}-\d{1,20}$/;

/** Order of two log ids (`ms-seq`). */
export function compareChangeIds(a: string, b: string): number {
  const [am, as] = a.split('-');
  const [bm, bs] = b.split('-');
  const byMs = BigInt(am ?? '0') - BigInt(bm ?? '0');
  if (byMs !== 0n) return byMs < 0n ? -1 : 1;
  const bySeq = BigInt(as ?? '0') - BigInt(bs ?? '0');
  return bySeq === 0n ? 0 : bySeq < 0n ? -1 : 1;
}

/** An event as the log stores it: everything but its id, prev and node (JSON text; `valueText` is the stored value's JSON). */
export function changeText(
  op: 'put' | 'delete',
  bucket: string,
  key: string,
  valueText: string | undefined,
  context: string,
  ts: number,
  expiresAt?: number,
): string {
  const values = valueText === undefined ? '[]' : `[${valueText}]`;
  const expiry = expiresAt === undefined ? '' : `,"expiresAt":${expiresAt}`;
  return `{"op":"${op}","bucket":${JSON.stringify(bucket)},"key":${JSON.stringify(key)},"values":${values},"context":${JSON.stringify(context)},"ts":${ts}${expiry}}`;
}

/** A logged event with its node, id and prev added, as it goes out. */
export function publishedText(node: string, id: string, prev: string | null, text: string): string {
  return `{"node":${JSON.stringify(node)},"id":"${id}","prev":${prev === null ? 'null' : `"${prev}"`},${text.slice(1)}`;
}

/** Changes read per `watch.since` request, at most (and the default). */
export const MAX_CHANGES_PAGE = 1000;

export interface WatchSinceRequest {
  /** the last id the watcher has; null asks only for the log's head */
  readonly after: string | null;
  readonly bucket: string | undefined;
  readonly prefix: string;
  readonly limit: number;
}

const bad = (message: string, field: string): ErrorReply => errorReply('BAD_REQUEST', message, { field });

/** Validate a `<p>.node.<id>.watch.since` body. Never throws. */
export function parseWatchSince(body: unknown): WatchSinceRequest | ErrorReply {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return bad('request body must be a JSON object', 'body');
  const b = body as Record<string, unknown>;
  for (const f of Object.keys(b)) if (!['after', 'bucket', 'prefix', 'limit'].includes(f)) return bad(`unknown field "${f}" in a watch.since request`, f);
  const after = b['after'] ?? null;
  if (after !== null && (typeof after !== 'string' || !CHANGE_ID.test(after))) return bad('"after" must be a change id ("<ms>-<seq>") or null', 'after');
  const bucket = b['bucket'];
  if (bucket !== undefined && (typeof bucket !== 'string' || !BUCKET_NAME.test(bucket))) return bad('"bucket" must be a bucket name', 'bucket');
  const prefix = b['prefix'] ?? '';
  if (typeof prefix !== 'string') return bad('"prefix" must be a string', 'prefix');
  const limit = b['limit'] ?? MAX_CHANGES_PAGE;
  if (!Number.isInteger(limit) || (limit as number) < 1 || (limit as number) > MAX_CHANGES_PAGE)
    return bad(`"limit" must be an integer from 1 to ${MAX_CHANGES_PAGE}`, 'limit');
  return { after, bucket, prefix, limit: limit as number };
}
