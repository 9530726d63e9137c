import type { Ring } from '../ring/index.js';
import { present } from '../invariant.js';

const NO_HINTS: ReadonlyMap<string, string> = new Map();

/**
 * A key's replicas: the first `n` nodes clockwise from it that are not down. A down
 * node's place goes to the next node on the ring (its fallback), as in Dynamo.
 */
export function preferenceList(ring: Ring, position: number, n: number, isDown: (id: string) => boolean): string[] {
  return sloppyPreferenceList(ring, position, n, isDown).replicas;
}

/**
 * The sloppy quorum: the key's replicas as in `preferenceList`, plus, for each
 * fallback standing in for a down node of the natural top `n`, the node it stands in
 * for. The fallback keeps that write as a hint and hands it over when the node is back.
 */
export function sloppyPreferenceList(
  ring: Ring,
  position: number,
  n: number,
  isDown: (id: string) => boolean,
): { replicas: string[]; hintFor: ReadonlyMap<string, string> } {
  const natural: string[] = [];
  const missing: string[] = [];
  const replicas: string[] = [];
  // One lazy walk: it stops as soon as n live nodes are found (past the natural n when some are down).
  for (const node of ring.nodesFrom(position)) {
    if (replicas.length === n) break;
    const down = isDown(node);
    if (natural.length < n) {
      natural.push(node);
      if (down) missing.push(node);
    }
    if (!down) replicas.push(node);
  }
  if (missing.length === 0) return { replicas, hintFor: NO_HINTS };
  const fallbacks = replicas.filter((r) => !natural.includes(r));
  return { replicas, hintFor: new Map(fallbacks.map((f, i) => [f, present(missing[i], 'a fallback stands in for a missing replica')])) };
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

/** Replicas a key has on this ring: the bucket's n, capped by the ring's size (at least one). */
export function replicaCount(n: number, ring: Ring): number {
  return Math.max(1, Math.min(n, ring.size));
}
