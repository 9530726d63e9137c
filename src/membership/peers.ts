function pick(pool: string[], count: number, random: () => number): string[] {
  const out: string[] = [];
  while (out.length < count && pool.length > 0) {
    const i = Math.floor(random() * pool.length);
    out.push(pool[i]);
    pool.splice(i, 1);
  }
  return out;
}

/**
 * A node's pass over the live members, after SWIM's round-robin choice of whom to probe: the
 * pass's order (a random permutation of the members live when it began) and how far the
 * rounds have got into it.
 */
export interface PeerCycle {
  readonly order: readonly string[];
  readonly at: number;
}

export const NEW_PEER_CYCLE: PeerCycle = { order: [], at: 0 };

/**
 * Gossip partners for a round: the next `fanout` members of the pass that are still live,
 * never `self`, a new pass in a new random order beginning when one ends. Every live member
 * is picked once a pass, so with L live peers and a fanout of 1 none goes more than 2L - 2
 * rounds in a row unpicked. Picked at random instead, a node whose one other reachable peer
 * shares the rounds with an unreachable one went several rounds in a row without it (a
 * quarter of the rounds with three nodes, both sides picking the unreachable one), and took it
 * for down. And, with probability down / (live + 1) as in Cassandra, one member held down,
 * so it is found again as soon as it is back without slowing every round.
 */
export function choosePeers(
  cycle: PeerCycle,
  live: readonly string[],
  down: readonly string[],
  self: string,
  fanout: number,
  random: () => number,
): { peers: string[]; cycle: PeerCycle } {
  const candidates = new Set(live);
  candidates.delete(self);
  const peers: string[] = [];
  let { order, at } = cycle;
  let renewed = false;
  while (peers.length < Math.min(fanout, candidates.size)) {
    if (at >= order.length) {
      // One new pass a round at most: it holds every candidate, so the round fills from it.
      if (renewed) break;
      // Drawn without replacement, every candidate: a random order.
      order = pick([...candidates], candidates.size, random);
      at = 0;
      renewed = true;
    }
    const id = order[at++];
    if (id !== undefined && candidates.has(id) && !peers.includes(id)) peers.push(id);
  }
  const others = down.filter((c) => c !== self);
  if (others.length > 0 && random() < others.length / (peers.length + 1)) peers.push(...pick([...others], 1, random));
  return { peers, cycle: { order, at } };
}
