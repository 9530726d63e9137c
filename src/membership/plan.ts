import { Ring, type RingMember, SEGMENTS, segmentEnd, segmentOf } from '../ring/index.js';

/** What a ring change moves, for one node: the share of the ring it starts or stops replicating. */
export interface PlanRow {
  readonly node: string;
  /** fraction of the ring this node becomes a replica of */
  readonly gains: number;
  /** fraction of the ring this node stops being a replica of */
  readonly loses: number;
  /** distinct keys it would receive and hand over, estimated from `keys` spread evenly over the ring */
  readonly keysIn: number;
  readonly keysOut: number;
}

/**
 * A preview of a ring change, as riak-admin's cluster plan gives one: for every node,
 * the share of the ring whose replica set it joins or leaves going from `current` to
 * `future`, and keys estimated from `keys` (the cluster's distinct keys, spread evenly).
 * Pure: the elementary arcs are those between the tokens of both rings, where both
 * rings' preference lists are constant.
 */
export function planChange(current: readonly RingMember[], future: readonly RingMember[], n: number, keys: number): PlanRow[] {
  const now = new Ring(current);
  const then = new Ring(future);
  const bounds = [...new Set([...now.tokens, ...then.tokens].map((t) => segmentOf(t.position)))].sort((a, b) => a - b);
  const gains = new Map<string, number>();
  const loses = new Map<string, number>();
  const nodes = new Set([...current, ...future].map((m) => m.id));
  for (const id of nodes) {
    gains.set(id, 0);
    loses.set(id, 0);
  }
  bounds.forEach((seg, i) => {
    const prev = i === 0 ? (bounds[bounds.length - 1] ?? 0) - SEGMENTS : (bounds[i - 1] ?? 0);
    const share = (seg - prev) / SEGMENTS;
    const before = now.walk(segmentEnd(seg), n);
    const after = then.walk(segmentEnd(seg), n);
    for (const id of after) if (!before.includes(id)) gains.set(id, (gains.get(id) ?? 0) + share);
    for (const id of before) if (!after.includes(id)) loses.set(id, (loses.get(id) ?? 0) + share);
  });
  return [...nodes].sort().map((node) => {
    const g = gains.get(node) ?? 0;
    const l = loses.get(node) ?? 0;
    return { node, gains: g, loses: l, keysIn: Math.round(g * keys), keysOut: Math.round(l * keys) };
  });
}
