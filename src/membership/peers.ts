/** Pick up to `count` distinct peers at random (`random` in [0,1)), never `self`. */
export function choosePeers(candidates: readonly string[], self: string, count: number, random: () => number): string[] {
  const pool = candidates.filter((c) => c !== self);
  const out: string[] = [];
  while (out.length < count && pool.length > 0) {
    const i = Math.floor(random() * pool.length);
    out.push(pool[i]!);
    pool.splice(i, 1);
  }
  return out;
}
