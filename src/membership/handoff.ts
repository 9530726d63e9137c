import type { Ring } from '../ring/index.js';

/**
 * Which keys move when the ring changes. Placement here ignores liveness: it is
 * about who owns a range, not who answers right now.
 */

/** Nodes that become replicas of the key in the future ring. */
export function gainingReplicas(current: Ring, future: Ring, position: number, n: number): string[] {
  const now = current.walk(position, n);
  return future.walk(position, n).filter((id) => !now.includes(id));
}

/**
 * Whether `source` should send the key to `target` during target's join: the target
 * gains the key, and `source` is the first of the key's current replicas among the
 * nodes the target pulls from, so each key is sent once.
 */
export function sendsTo(current: Ring, future: Ring, position: number, n: number, target: string, source: string, sources: readonly string[]): boolean {
  const now = current.walk(position, n);
  if (now.includes(target) || !future.walk(position, n).includes(target)) return false;
  return now.find((id) => sources.includes(id)) === source;
}
