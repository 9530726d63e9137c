import type { Ring } from '../ring/index.js';

/**
 * A key's replicas: the first `n` nodes clockwise from it that are not down. A down
 * node's place goes to the next node on the ring (its fallback), as in Dynamo.
 */
export function preferenceList(ring: Ring, position: number, n: number, isDown: (id: string) => boolean): string[] {
  const out: string[] = [];
  for (const node of ring.walk(position)) {
    if (out.length === n) break;
    if (!isDown(node)) out.push(node);
  }
  return out;
}

/**
 * Nodes that will be replicas of the key once the transitions in progress complete
 * but are not replicas now: writes go to them too (without counting towards W), so
 * nothing written during a join or leave is missing when the ring switches.
 */
export function pendingReplicas(future: Ring | null, position: number, n: number, current: readonly string[], isDown: (id: string) => boolean): string[] {
  if (future === null) return [];
  return preferenceList(future, position, n, isDown).filter((id) => !current.includes(id));
}
