import { errorReply, type ErrorReply } from '../errors.js';
import type { CrdtOp, Resolver } from '../resolvers/index.js';
import { ContextError, decodeContext, type VClock } from '../versioning/index.js';
import { present } from '../invariant.js';

export type Op = 'get' | 'put' | 'delete';

export interface Limits {
  /** replicas per key for this request's bucket (already capped by cluster size) */
  readonly n: number;
  readonly defaultR: number;
  readonly defaultW: number;
  readonly defaultTimeoutMs: number;
  readonly maxTimeoutMs: number;
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  /** the bucket's time to live for a put that gives none (ms; undefined: none) */
  readonly ttlMs?: number;
  /** the bucket's resolver: what a put may carry and what a get answers */
  readonly resolver: Resolver;
}

/** A write's condition: the context must cover what is stored (ifMatch), or nothing may be stored (ifNoneMatch). */
export type Condition = 'match' | 'none-match';

export interface GetRequest {
  readonly op: 'get';
  readonly bucket: string;
  readonly key: string;
  readonly r: number;
  readonly timeoutMs: number;
  readonly resolver: Resolver;
}

export interface PutRequest {
  readonly op: 'put';
  readonly bucket: string;
  readonly key: string;
  /** the value as JSON text, exactly as it will be stored (absent for a CRDT op) */
  readonly value: string | undefined;
  /** the op of a put to a CRDT bucket (orset, counter) */
  readonly crdt: CrdtOp | undefined;
  readonly context: VClock;
  readonly w: number;
  readonly timeoutMs: number;
  readonly condition: Condition | undefined;
  readonly resolver: Resolver;
  /** the value's time to live (ms): the put's own, else its bucket's; undefined: none */
  readonly ttlMs: number | undefined;
}

export interface DeleteRequest {
  readonly op: 'delete';
  readonly bucket: string;
  readonly key: string;
  readonly context: VClock;
  readonly w: number;
  readonly timeoutMs: number;
  readonly condition: Condition | undefined;
  readonly resolver: Resolver;
}

export type ClientRequest = GetRequest | PutRequest | DeleteRequest;

export const DEFAULT_BUCKET = 'default';
/** The longest time to live a put or a bucket may give: 365 days. */
export const MAX_TTL_MS = 365 * 24 * 3600 * 1000;
export const BUCKET_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

const ALLOWED_FIELDS: Record<Op, ReadonlySet<string>> = {
  get: new Set(['key', 'bucket', 'r', 'timeoutMs']),
  put: new Set(['key', 'bucket', 'value', 'op', 'context', 'w', 'timeoutMs', 'ifMatch', 'ifNoneMatch', 'ttlMs']),
  delete: new Set(['key', 'bucket', 'context', 'w', 'timeoutMs', 'ifMatch']),
};

const bad = (message: string, details: Record<string, unknown> = {}): ErrorReply => errorReply('BAD_REQUEST', message, details);

function quorumField(body: Record<string, unknown>, name: 'r' | 'w', fallback: number, n: number): number | ErrorReply {
  const v = body[name];
  if (v === undefined) return fallback;
  if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > n) {
    return bad(`"${name}" must be an integer from 1 to ${n} (the bucket's n)`, { field: name });
  }
  return v as number;
}

function contextField(body: Record<string, unknown>, field: 'context' | 'ifMatch'): VClock | ErrorReply {
  const c = body[field];
  if (c === undefined || c === null) return {};
  if (typeof c !== 'string') return bad(`"${field}" must be the opaque context string returned by a get`, { field });
  try {
    return decodeContext(c);
  } catch (e) {
    return bad(`"${field}" is not a valid context: ${(e as ContextError).message}`, { field });
  }
}

/** The context and condition of a write: "context", or "ifMatch" (a context that must cover what is stored), or "ifNoneMatch". */
function writeTerms(b: Record<string, unknown>, op: 'put' | 'delete'): { context: VClock; condition: Condition | undefined } | ErrorReply {
  const given = ['context', 'ifMatch', 'ifNoneMatch'].filter((f) => b[f] !== undefined && b[f] !== null);
  if (given.length > 1) return bad(`give one of "context", "ifMatch" and "ifNoneMatch", not ${given.map((g) => `"${g}"`).join(' and ')}`, { field: given[1] });
  if (b['ifNoneMatch'] !== undefined) {
    if (b['ifNoneMatch'] !== true) return bad('"ifNoneMatch" must be true (create only if the key does not exist)', { field: 'ifNoneMatch' });
    return { context: {}, condition: 'none-match' };
  }
  if (b['ifMatch'] !== undefined && b['ifMatch'] !== null) {
    const context = contextField(b, 'ifMatch');
    return isErrorReply(context) ? context : { context, condition: 'match' };
  }
  const context = contextField(b, 'context');
  void op;
  return isErrorReply(context) ? context : { context, condition: undefined };
}

/**
 * Validate a client request body. Returns the typed request or the error reply to
 * send; never throws, whatever the bytes.
 */
export function parseRequest(op: Op, data: Uint8Array, limitsOf: (bucket: string) => Limits): ClientRequest | ErrorReply {
  const body = jsonBody(data);
  return body === NOT_JSON ? bad('request body is not valid JSON') : parseRequestBody(op, body, limitsOf);
}

const NOT_JSON: unique symbol = Symbol('not JSON');

function jsonBody(data: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch {
    return NOT_JSON;
  }
}

/**
 * A request that came on a bucket's own subject (`<p>.kv.<bucket>.<op>`): its body
 * with that bucket filled in, so that it reads the same when forwarded. A body that
 * names another bucket is refused: a NATS permission scoped to one bucket's subjects
 * must not reach another bucket's data.
 */
export function parseBucketRequest(
  op: Op,
  data: Uint8Array,
  subjectBucket: string,
  limitsOf: (bucket: string) => Limits,
): { req: ClientRequest | ErrorReply; body: unknown } {
  const parsed = jsonBody(data);
  if (parsed === NOT_JSON) return { req: bad('request body is not valid JSON'), body: undefined };
  const body = onSubjectBucket(parsed, subjectBucket);
  if (isErrorReply(body)) return { req: body, body: parsed };
  return { req: parseRequestBody(op, body, limitsOf), body };
}

/**
 * A body that came on a bucket's own subject, with that bucket filled in; BAD_REQUEST when
 * it names another (a permission scoped to one bucket's subjects must not reach another's).
 * Anything but an object is left as it is, for the request's own check to refuse.
 */
export function onSubjectBucket(body: unknown, subjectBucket: string): unknown {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return body;
  const named = (body as Record<string, unknown>)['bucket'];
  if (named !== undefined && named !== subjectBucket)
    return bad(`"bucket" is "${String(named)}" but the request came on bucket "${subjectBucket}"'s subject`, { field: 'bucket' });
  return { ...body, bucket: subjectBucket };
}

/** Validate a request body already parsed from JSON (a request alone, or an item of a batch). */
export function parseRequestBody(op: Op, body: unknown, limitsOf: (bucket: string) => Limits): ClientRequest | ErrorReply {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return bad('request body must be a JSON object');
  const b = body as Record<string, unknown>;
  for (const field of Object.keys(b)) {
    if (!ALLOWED_FIELDS[op].has(field)) return bad(`unknown field "${field}" in a ${op} request`, { field });
  }

  const key = b['key'];
  if (typeof key !== 'string' || key.length === 0) return bad('"key" must be a non-empty string', { field: 'key' });
  const bucket = b['bucket'] ?? DEFAULT_BUCKET;
  if (typeof bucket !== 'string' || !BUCKET_NAME.test(bucket)) {
    return bad('"bucket" must be 1-64 characters of letters, digits, "_", "." or "-"', { field: 'bucket' });
  }
  const limits = limitsOf(bucket);
  const { resolver } = limits;
  if (Buffer.byteLength(key, 'utf8') > limits.maxKeyBytes) {
    return bad(`"key" is longer than ${limits.maxKeyBytes} bytes`, { field: 'key', limit: limits.maxKeyBytes });
  }
  const t = b['timeoutMs'];
  let timeoutMs = limits.defaultTimeoutMs;
  if (t !== undefined) {
    if (!Number.isInteger(t) || (t as number) < 1 || (t as number) > limits.maxTimeoutMs) {
      return bad(`"timeoutMs" must be an integer from 1 to ${limits.maxTimeoutMs}`, { field: 'timeoutMs' });
    }
    timeoutMs = t as number;
  }

  if (op === 'get') {
    const r = quorumField(b, 'r', limits.defaultR, limits.n);
    if (typeof r !== 'number') return r;
    return { op, bucket, key, r, timeoutMs, resolver };
  }

  const w = quorumField(b, 'w', limits.defaultW, limits.n);
  if (typeof w !== 'number') return w;
  const terms = writeTerms(b, op);
  if (isErrorReply(terms)) return terms;
  const { context, condition } = terms;

  if (op === 'delete') return { op, bucket, key, context, w, timeoutMs, condition, resolver };

  const ttl = b['ttlMs'];
  if (ttl !== undefined && ttl !== null && (!Number.isInteger(ttl) || (ttl as number) < 1 || (ttl as number) > MAX_TTL_MS))
    return bad(`"ttlMs" must be an integer from 1 to ${MAX_TTL_MS} (365 days)`, { field: 'ttlMs' });
  const ttlMs = (ttl as number | undefined | null) ?? limits.ttlMs;

  const problem = resolver.check(b['value'], b['op']);
  if (problem !== null) return bad(`bucket "${bucket}" (${resolver.name}): ${problem}`, { field: resolver.kind === 'crdt' ? 'op' : 'value' });
  if (resolver.kind === 'crdt') {
    const size = Buffer.byteLength(JSON.stringify(b['op']), 'utf8');
    if (size > limits.maxValueBytes)
      return errorReply('TOO_LARGE', `op is ${size} bytes; the limit is ${limits.maxValueBytes}`, { size, limit: limits.maxValueBytes });
    return {
      op,
      bucket,
      key,
      value: undefined,
      crdt: present(resolver.parseOp, 'a CRDT resolver parses ops')(b['op']),
      context,
      w,
      timeoutMs,
      condition,
      resolver,
      ttlMs,
    };
  }
  if (!('value' in b) || b['value'] === undefined) return bad('a put needs a "value" (any JSON; null is a value)', { field: 'value' });
  const value = JSON.stringify(b['value']);
  const size = Buffer.byteLength(value, 'utf8');
  if (size > limits.maxValueBytes) {
    return errorReply('TOO_LARGE', `value is ${size} bytes; the limit is ${limits.maxValueBytes}`, { size, limit: limits.maxValueBytes });
  }
  return { op, bucket, key, value, crdt: undefined, context, w, timeoutMs, condition, resolver, ttlMs };
}

export function isErrorReply(x: unknown): x is ErrorReply {
  return typeof x === 'object' && x !== null && (x as { ok?: unknown }).ok === false;
}
