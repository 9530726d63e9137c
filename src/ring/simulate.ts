import { ringPosition } from './hash.js';
import { Ring } from './ring.js';
import { present } from '../invariant.js';

/** One placement strategy's numbers, as in the lecture's comparison. */
export interface PlacementStats {
  readonly strategy: string;
  /** most loaded node's keys over the mean */
  readonly maxOverMean: number;
  /** standard deviation of keys per node over the mean */
  readonly stddevOverMean: number;
  /** share of keys that change owner when one node is added */
  readonly movedOnAdd: number;
  /** share of keys that change owner when one node is removed */
  readonly movedOnRemove: number;
}

interface Strategy {
  readonly name: string;
  /** owner of each key position among `nodes` */
  owners(nodes: readonly string[], positions: readonly number[], keyHashes: readonly bigint[]): string[];
}

function spread(owners: readonly string[], nodes: readonly string[]): { maxOverMean: number; stddevOverMean: number } {
  const counts = new Map<string, number>(nodes.map((n) => [n, 0]));
  for (const o of owners) counts.set(o, (counts.get(o) ?? 0) + 1);
  const values = [...counts.values()];
  const mean = owners.length / nodes.length;
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length;
  return { maxOverMean: Math.max(...values) / mean, stddevOverMean: Math.sqrt(variance) / mean };
}

function movedShare(a: readonly string[], b: readonly string[]): number {
  let moved = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) moved++;
  return moved / a.length;
}

const modN: Strategy = {
  name: 'MD5 mod N',
  owners: (nodes, _p, hashes) => hashes.map((h) => nodes[Number(h % BigInt(nodes.length))]),
};

const ringWith = (tokens: number): Strategy => ({
  name: tokens === 1 ? 'ring, 1 token per node' : `ring, ${tokens} virtual nodes per node`,
  owners: (nodes, positions) => {
    const ring = new Ring(
      nodes.map((id) => ({ id, weight: 1 })),
      tokens,
    );
    return positions.map((p) => present(ring.primary(p), 'a ring with nodes has a primary for every position'));
  },
});

/**
 * Compare key placement strategies on `keyCount` keys over `nodeCount` nodes: load
 * spread, and the keys that move when a node joins or leaves. Pure computation.
 */
export function simulatePlacement(nodeCount: number, keyCount: number, vnodes: number): PlacementStats[] {
  const names = (count: number) => Array.from({ length: count }, (_, i) => `node-${i + 1}`);
  const keys = Array.from({ length: keyCount }, (_, i) => `key-${i}`);
  const positions = keys.map((k) => ringPosition(k));
  const hashes = keys.map((k) => BigInt(`0x${ringPosition(k).toString(16)}`));
  return [modN, ringWith(1), ringWith(vnodes)].map((s) => {
    const base = s.owners(names(nodeCount), positions, hashes);
    const added = s.owners(names(nodeCount + 1), positions, hashes);
    const removed = s.owners(names(nodeCount - 1), positions, hashes);
    return { strategy: s.name, ...spread(base, names(nodeCount)), movedOnAdd: movedShare(base, added), movedOnRemove: movedShare(base, removed) };
  });
}
