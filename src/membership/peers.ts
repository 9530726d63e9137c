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
 * Gossip partners for a round: up to `fanout` distinct live members at random, never
 * `self`; and, with probability down / (live + 1) as in Cassandra, one member held
 * down, so it is found again as soon as it is back without slowing every round.
 */
export function choosePeers(live: readonly string[], down: readonly string[], self: string, fanout: number, random: () => number): string[] {
  const peers = pick(
    live.filter((c) => c !== self),
    fanout,
    random,
  );
  const others = down.filter((c) => c !== self);
  if (others.length > 0 && random() < others.length / (peers.length + 1)) peers.push(...pick([...others], 1, random));
  return peers;
}
