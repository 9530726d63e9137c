import { errorReply, type ErrorReply } from '../errors.js';
import type { Op } from './requests.js';

/**
 * Client requests in batches: what the client library sends when its callers make
 * several requests in one event-loop turn, and what a node sends when it forwards
 * requests to another. Each item is a request exactly as its own subject takes it,
 * with its operation in front; each result is exactly the reply it would get alone.
 * The items are not atomic together: each succeeds or fails on its own.
 *
 *   <p>.kv.batch, <p>.node.<id>.kv.batch, <p>.node.<id>.coord.batch
 *   {"items":[["put",{"key":"a","value":1}],["get",{"key":"b"}]]}
 *   -> {"ok":true,"results":[{"ok":true,"context":"..."},{"ok":true,"found":false,"values":[],"context":null}]}
 */
export const MAX_CLIENT_BATCH = 256;

const OPS: ReadonlySet<string> = new Set(['get', 'put', 'delete']);

export interface BatchItem {
  readonly op: Op;
  /** the request body, parsed; parseRequestBody validates it */
  readonly body: unknown;
}

/** The items of a batch body, or the error reply for the whole batch. */
export function parseBatch(body: unknown): BatchItem[] | ErrorReply {
  if (body === undefined) return errorReply('BAD_REQUEST', 'request body is not valid JSON');
  if (typeof body !== 'object' || body === null || Array.isArray(body) || !Array.isArray((body as { items?: unknown }).items)) {
    return errorReply('BAD_REQUEST', 'a batch is {"items":[["get"|"put"|"delete", {request}], ...]}');
  }
  if (Object.keys(body).length !== 1) return errorReply('BAD_REQUEST', 'a batch has one field, "items"');
  const items = (body as { items: unknown[] }).items;
  if (items.length === 0 || items.length > MAX_CLIENT_BATCH)
    return errorReply('BAD_REQUEST', `a batch holds 1 to ${MAX_CLIENT_BATCH} items`, { limit: MAX_CLIENT_BATCH });
  const out: BatchItem[] = [];
  for (let i = 0; i < items.length; i++) {
    const it = items[i];
    if (!Array.isArray(it) || it.length !== 2 || typeof it[0] !== 'string' || !OPS.has(it[0])) {
      return errorReply('BAD_REQUEST', `batch item ${i} must be ["get"|"put"|"delete", {request}]`, { item: i });
    }
    out.push({ op: it[0] as Op, body: it[1] });
  }
  return out;
}

/** A batch item from a request's JSON text, which is spliced in as it is. */
export function batchItemText(op: Op, bodyText: string): string {
  return `["${op}",${bodyText}]`;
}

/** The reply to a batch from its items' reply texts, spliced in as they are. */
export function batchReplyText(results: readonly string[]): string {
  return `{"ok":true,"results":[${results.join(',')}]}`;
}

/** Keys of an mget, items of an mput, at most. */
export const MAX_MULTI = 1024;

const MGET_FIELDS: ReadonlySet<string> = new Set(['bucket', 'keys', 'r', 'timeoutMs']);
const MPUT_FIELDS: ReadonlySet<string> = new Set(['bucket', 'items', 'w', 'timeoutMs']);
/** What an mput item may hold: the rest (bucket, w, timeoutMs) is said once for the whole mput. */
const MPUT_ITEM_FIELDS: ReadonlySet<string> = new Set(['key', 'value', 'op', 'context', 'ifMatch', 'ifNoneMatch', 'ttlMs']);

/** An item of an mget or mput: a request, or the refusal that is its result. */
export interface MultiItem extends BatchItem {
  readonly refused?: ErrorReply;
}

function shared(b: Record<string, unknown>, names: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const n of names) if (b[n] !== undefined) out[n] = b[n];
  return out;
}

/**
 * `<p>.kv.mget {"bucket"?, "keys": [...], "r"?, "timeoutMs"?}` and `<p>.kv.mput {"bucket"?,
 * "items": [{"key", "value", "context"?}...], "w"?, "timeoutMs"?}` as the gets and puts of a
 * batch: one result per key, in order, not atomic. Each item is then validated as a request
 * of its own, so one bad key fails that key only.
 */
export function parseMulti(kind: 'mget' | 'mput', body: unknown): MultiItem[] | ErrorReply {
  if (body === undefined) return errorReply('BAD_REQUEST', 'request body is not valid JSON');
  const list = kind === 'mget' ? 'keys' : 'items';
  const shape = kind === 'mget' ? '{"keys":["a","b"], "bucket"?, "r"?, "timeoutMs"?}' : '{"items":[{"key":"a","value":1}], "bucket"?, "w"?, "timeoutMs"?}';
  if (typeof body !== 'object' || body === null || Array.isArray(body) || !Array.isArray((body as Record<string, unknown>)[list])) {
    return errorReply('BAD_REQUEST', `an ${kind} is ${shape}`);
  }
  const b = body as Record<string, unknown>;
  const allowed = kind === 'mget' ? MGET_FIELDS : MPUT_FIELDS;
  for (const f of Object.keys(b)) if (!allowed.has(f)) return errorReply('BAD_REQUEST', `unknown field "${f}" in an ${kind}`, { field: f });
  const entries = b[list] as unknown[];
  if (entries.length === 0 || entries.length > MAX_MULTI) {
    return errorReply('BAD_REQUEST', `an ${kind} holds 1 to ${MAX_MULTI} ${list}`, { field: list, limit: MAX_MULTI });
  }
  if (kind === 'mget') {
    const common = shared(b, ['bucket', 'r', 'timeoutMs']);
    return entries.map((key) => ({ op: 'get', body: { ...common, key } }));
  }
  const common = shared(b, ['bucket', 'w', 'timeoutMs']);
  return entries.map((item, i) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      return { op: 'put', body: item, refused: errorReply('BAD_REQUEST', `mput item ${i} must be {"key", "value", "context"?}`, { item: i }) };
    }
    const other = Object.keys(item).find((f) => !MPUT_ITEM_FIELDS.has(f));
    if (other !== undefined) {
      return {
        op: 'put',
        body: item,
        refused: errorReply('BAD_REQUEST', `mput item ${i}: "${other}" is not an item field (bucket, w and timeoutMs go once, beside "items")`, {
          item: i,
          field: other,
        }),
      };
    }
    return { op: 'put', body: { ...common, ...item } };
  });
}

const TOO_LARGE_IN_BATCH =
  '{"ok":false,"error":{"code":"TOO_LARGE","message":"this result does not fit in the reply with the others: ask for this key alone"}}';

/**
 * The reply to a batch, within `maxBytes`: when the results together are too large for
 * one message, the largest are replaced by a TOO_LARGE result (asked alone, each fits)
 * until the rest do. A reply over the NATS limit would not be sent at all.
 */
export function fittedBatchReply(results: readonly string[], maxBytes: number): string {
  // A UTF-16 unit is at most 3 bytes of UTF-8: most replies are far below the limit and need no counting of bytes.
  let units = 0;
  for (const r of results) units += r.length;
  if (24 + results.length + 3 * units <= maxBytes) return batchReplyText(results);
  const sizes = results.map((r) => Buffer.byteLength(r));
  // The envelope, the commas, and a result's own bytes.
  let total = 24 + results.length + sizes.reduce((a, s) => a + s, 0);
  if (total <= maxBytes) return batchReplyText(results);
  const out = [...results];
  const order = sizes.map((s, i) => [s, i] as const).sort((a, b) => b[0] - a[0]);
  for (const [size, i] of order) {
    if (total <= maxBytes || size <= TOO_LARGE_IN_BATCH.length) break;
    out[i] = TOO_LARGE_IN_BATCH;
    total += TOO_LARGE_IN_BATCH.length - size;
  }
  return batchReplyText(out);
}
