import { errorReply, type ErrorReply } from '../errors.js';
import { ContextError, decodeContext, type VClock } from '../versioning/index.js';

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
}

export interface GetRequest {
  readonly op: 'get';
  readonly bucket: string;
  readonly key: string;
  readonly r: number;
  readonly timeoutMs: number;
}

export interface PutRequest {
  readonly op: 'put';
  readonly bucket: string;
  readonly key: string;
  /** the value as JSON text, exactly as it will be stored */
  readonly value: string;
  readonly context: VClock;
  readonly w: number;
  readonly timeoutMs: number;
  /** fail with CONFLICT if the coordinator holds a version the context did not see */
  readonly ifNotModified: boolean;
}

export interface DeleteRequest {
  readonly op: 'delete';
  readonly bucket: string;
  readonly key: string;
  readonly context: VClock;
  readonly w: number;
  readonly timeoutMs: number;
  readonly ifNotModified: boolean;
}

export type ClientRequest = GetRequest | PutRequest | DeleteRequest;

export const DEFAULT_BUCKET = 'default';
export const BUCKET_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

const ALLOWED_FIELDS: Record<Op, ReadonlySet<string>> = {
  get: new Set(['key', 'bucket', 'r', 'timeoutMs']),
  put: new Set(['key', 'bucket', 'value', 'context', 'w', 'timeoutMs', 'ifNotModified']),
  delete: new Set(['key', 'bucket', 'context', 'w', 'timeoutMs', 'ifNotModified']),
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

function contextField(body: Record<string, unknown>): VClock | ErrorReply {
  const c = body['context'];
  if (c === undefined || c === null) return {};
  if (typeof c !== 'string') return bad('"context" must be the opaque string returned by a get', { field: 'context' });
  try {
    return decodeContext(c);
  } catch (e) {
    return bad(`"context" is not valid: ${(e as ContextError).message}`, { field: 'context' });
  }
}

/**
 * Validate a client request body. Returns the typed request or the error reply to
 * send; never throws, whatever the bytes.
 */
export function parseRequest(op: Op, data: Uint8Array, limits: Limits): ClientRequest | ErrorReply {
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch {
    return bad('request body is not valid JSON');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return bad('request body must be a JSON object');
  const b = body as Record<string, unknown>;
  for (const field of Object.keys(b)) {
    if (!ALLOWED_FIELDS[op].has(field)) return bad(`unknown field "${field}" in a ${op} request`, { field });
  }

  const key = b['key'];
  if (typeof key !== 'string' || key.length === 0) return bad('"key" must be a non-empty string', { field: 'key' });
  if (Buffer.byteLength(key, 'utf8') > limits.maxKeyBytes) {
    return bad(`"key" is longer than ${limits.maxKeyBytes} bytes`, { field: 'key', limit: limits.maxKeyBytes });
  }
  const bucket = b['bucket'] ?? DEFAULT_BUCKET;
  if (typeof bucket !== 'string' || !BUCKET_NAME.test(bucket)) {
    return bad('"bucket" must be 1-64 characters of letters, digits, "_", "." or "-"', { field: 'bucket' });
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
    return { op, bucket, key, r, timeoutMs };
  }

  const w = quorumField(b, 'w', limits.defaultW, limits.n);
  if (typeof w !== 'number') return w;
  const context = contextField(b);
  if (isErrorReply(context)) return context;
  const inm = b['ifNotModified'] ?? false;
  if (typeof inm !== 'boolean') return bad('"ifNotModified" must be true or false', { field: 'ifNotModified' });
  const ifNotModified = inm;

  if (op === 'delete') return { op, bucket, key, context, w, timeoutMs, ifNotModified };

  if (!('value' in b) || b['value'] === undefined) return bad('a put needs a "value" (any JSON; null is a value)', { field: 'value' });
  const value = JSON.stringify(b['value']);
  const size = Buffer.byteLength(value, 'utf8');
  if (size > limits.maxValueBytes) {
    return errorReply('TOO_LARGE', `value is ${size} bytes; the limit is ${limits.maxValueBytes}`, { size, limit: limits.maxValueBytes });
  }
  return { op, bucket, key, value, context, w, timeoutMs, ifNotModified };
}

export function isErrorReply(x: unknown): x is ErrorReply {
  return typeof x === 'object' && x !== null && (x as { ok?: unknown }).ok === false;
}
