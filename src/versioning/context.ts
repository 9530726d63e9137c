import { ACTOR_ID, type VClock } from './vclock.js';

/** A context longer than this is not one we issued. */
export const MAX_CONTEXT_BYTES = 4096;
/** Entries accepted in a client context (pruned to MAX_CLOCK_ENTRIES when written). */
export const MAX_CONTEXT_ENTRIES = 64;

/** The opaque causal context handed to clients: base64url of the clock's JSON. */
export function encodeContext(clock: VClock): string {
  return Buffer.from(JSON.stringify(clock)).toString('base64url');
}

export class ContextError extends Error {
  override readonly name = 'ContextError';
}

/** Decode and validate a client context; throws ContextError for anything we did not issue. */
export function decodeContext(text: string): VClock {
  if (text.length > MAX_CONTEXT_BYTES) throw new ContextError(`context is longer than ${MAX_CONTEXT_BYTES} characters`);
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new ContextError('context is not base64url text');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw new ContextError('context does not decode');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ContextError('context does not decode to a clock');
  const entries = Object.entries(parsed as Record<string, unknown>);
  if (entries.length > MAX_CONTEXT_ENTRIES) throw new ContextError(`context has more than ${MAX_CONTEXT_ENTRIES} entries`);
  for (const [node, entry] of entries) {
    if (!ACTOR_ID.test(node)) throw new ContextError('context names an invalid node');
    if (!Array.isArray(entry) || entry.length !== 2 || !Number.isSafeInteger(entry[0]) || entry[0] < 1 || !Number.isSafeInteger(entry[1]) || entry[1] < 0) {
      throw new ContextError('context has a malformed clock entry');
    }
  }
  return parsed as VClock;
}
