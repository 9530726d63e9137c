import assert from 'node:assert/strict';

/**
 * A value the code's own logic guarantees is there (a machine state that is only
 * entered once its context holds it, a child spawned with piped stdio). If the
 * guarantee breaks, this throws with `what` instead of failing further on.
 */
export function present<T>(value: T | null | undefined, what: string): T {
  assert(value !== null && value !== undefined, `invariant broken: ${what}`);
  return value;
}
