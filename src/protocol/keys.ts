import { errorReply, type ErrorReply } from '../errors.js';
import type { SegmentRuns } from '../membership/coverage.js';
import { SEGMENTS } from '../ring/index.js';
import { BUCKET_NAME, DEFAULT_BUCKET } from './requests.js';

/** Keys in one page of a listing, at most (and the default). */
export const MAX_KEYS_LIMIT = 1000;
export const DEFAULT_KEYS_LIMIT = 100;
/** Stored keys one node examines for one page, at most: the bound on a listing's work per request. */
export const MAX_KEYS_SCAN = 10_000;

/** `<p>.kv.keys`: one page of a bucket's keys, in UTF-8 byte order. */
export interface KeysRequest {
  readonly bucket: string;
  readonly prefix: string;
  /** list keys after this one (from the cursor), or from the start */
  readonly after: string | null;
  readonly limit: number;
  /** live replicas asked per range of the ring */
  readonly r: number;
  readonly timeoutMs: number;
}

/** `<p>.node.<id>.keys`: one node's part of a page, the keys it holds in the segments asked. */
export interface KeysPageRequest {
  readonly bucket: string;
  readonly prefix: string;
  readonly after: string | null;
  readonly limit: number;
  readonly segments: SegmentRuns;
}

/** One node's answer: its keys in order, and how far it looked (null: to the end of the prefix). */
export interface KeysPage {
  readonly keys: string[];
  readonly next: string | null;
}

export interface KeysLimits {
  readonly n: number;
  readonly maxKeyBytes: number;
  readonly defaultTimeoutMs: number;
  readonly maxTimeoutMs: number;
}

const bad = (message: string, field: string): ErrorReply => errorReply('BAD_REQUEST', message, { field });
const KEYS_FIELDS = new Set(['bucket', 'prefix', 'cursor', 'limit', 'r', 'timeoutMs']);

/** A cursor is the page's bucket, prefix and last key, so that it cannot be replayed against another listing. */
export function encodeCursor(bucket: string, prefix: string, after: string): string {
  return Buffer.from(JSON.stringify([bucket, prefix, after]), 'utf8').toString('base64url');
}

function decodeCursor(text: string): [string, string, string] | null {
  try {
    const v: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'string')) return v as [string, string, string];
  } catch {}
  return null;
}

function optionalInteger(b: Record<string, unknown>, field: string, fallback: number, min: number, max: number): number | ErrorReply {
  const v = b[field];
  if (v === undefined || v === null) return fallback;
  if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) return bad(`"${field}" must be an integer from ${min} to ${max}`, field);
  return v as number;
}

/** Validate a `<p>.kv.keys` body; `limitsOf` gives the bucket's n and the node's bounds. Never throws. */
export function parseKeysRequest(body: unknown, limitsOf: (bucket: string) => KeysLimits): KeysRequest | ErrorReply {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return bad('request body must be a JSON object', 'body');
  const b = body as Record<string, unknown>;
  for (const field of Object.keys(b)) if (!KEYS_FIELDS.has(field)) return bad(`unknown field "${field}" in a keys request`, field);
  const bucket = b['bucket'] ?? DEFAULT_BUCKET;
  if (typeof bucket !== 'string' || !BUCKET_NAME.test(bucket)) return bad('"bucket" must be 1-64 characters of letters, digits, "_", "." or "-"', 'bucket');
  const limits = limitsOf(bucket);
  const prefix = b['prefix'] ?? '';
  if (typeof prefix !== 'string') return bad('"prefix" must be a string', 'prefix');
  if (Buffer.byteLength(prefix, 'utf8') > limits.maxKeyBytes) return bad(`"prefix" is longer than ${limits.maxKeyBytes} bytes`, 'prefix');
  let after: string | null = null;
  const cursor = b['cursor'];
  if (cursor !== undefined && cursor !== null) {
    const decoded = typeof cursor === 'string' ? decodeCursor(cursor) : null;
    if (decoded === null) return bad('"cursor" must be the cursor a keys reply returned', 'cursor');
    if (decoded[0] !== bucket || decoded[1] !== prefix) return bad('"cursor" belongs to a listing of another bucket or prefix', 'cursor');
    after = decoded[2];
  }
  const limit = optionalInteger(b, 'limit', DEFAULT_KEYS_LIMIT, 1, MAX_KEYS_LIMIT);
  if (typeof limit !== 'number') return limit;
  const r = optionalInteger(b, 'r', 1, 1, limits.n);
  if (typeof r !== 'number') return r;
  const timeoutMs = optionalInteger(b, 'timeoutMs', limits.defaultTimeoutMs, 1, limits.maxTimeoutMs);
  if (typeof timeoutMs !== 'number') return timeoutMs;
  return { bucket, prefix, after, limit, r, timeoutMs };
}

/** Validate a node's part of a listing (another node sent it, but no input is trusted). */
export function parseKeysPageRequest(body: unknown): KeysPageRequest | ErrorReply {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return bad('request body must be a JSON object', 'body');
  const b = body as Record<string, unknown>;
  const { bucket, prefix, after, limit, segments } = b;
  if (typeof bucket !== 'string' || !BUCKET_NAME.test(bucket)) return bad('"bucket" must be a bucket name', 'bucket');
  if (typeof prefix !== 'string') return bad('"prefix" must be a string', 'prefix');
  if (after !== null && typeof after !== 'string') return bad('"after" must be a key or null', 'after');
  if (!Number.isInteger(limit) || (limit as number) < 1 || (limit as number) > MAX_KEYS_LIMIT)
    return bad(`"limit" must be an integer from 1 to ${MAX_KEYS_LIMIT}`, 'limit');
  if (!Array.isArray(segments) || segments.length > SEGMENTS) return bad('"segments" must be a list of [first, last] segment runs', 'segments');
  for (const run of segments) {
    if (!Array.isArray(run) || run.length !== 2 || !run.every((s) => Number.isInteger(s) && s >= 0 && s < SEGMENTS) || run[0] > run[1])
      return bad(`"segments" holds a run that is not [first, last] with 0 <= first <= last < ${SEGMENTS}`, 'segments');
  }
  return { bucket, prefix, after: after as string | null, limit: limit as number, segments: segments as SegmentRuns };
}

/** Order of keys as Redis sorts them (bytes of UTF-8), which JavaScript's own string order is not for every character. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * One page from the nodes' parts: every key up to the nearest point where some node
 * stopped looking (beyond it a key might be missing), without duplicates, at most
 * `limit`; and the cursor to go on from, or null when the listing is complete.
 */
export function mergePages(pages: readonly KeysPage[], limit: number): { keys: string[]; last: string | null; done: boolean } {
  let frontier: string | null = null;
  for (const p of pages) if (p.next !== null && (frontier === null || compareKeys(p.next, frontier) < 0)) frontier = p.next;
  const all = new Set<string>();
  for (const p of pages) for (const k of p.keys) if (frontier === null || compareKeys(k, frontier) <= 0) all.add(k);
  const keys = [...all].sort(compareKeys).slice(0, limit);
  if (keys.length === limit) return { keys, last: keys[keys.length - 1], done: false };
  return { keys, last: frontier, done: frontier === null };
}
