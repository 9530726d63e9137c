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
