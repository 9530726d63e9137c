/**
 * Vector clocks: one entry per coordinating node, each a counter and the wall-clock
 * time (ms) it was last advanced. The time is used only to prune the oldest entries
 * when a clock grows past MAX_CLOCK_ENTRIES, as Riak does.
 */
/**
 * Who advances a clock entry: a node id, then `.` and the epoch of that node's store.
 * A store that lost its data (a wiped Redis, an AOF cut short) starts a new epoch, so
 * it can never hand out a dot it issued before the loss (the old one may live on in
 * other replicas, where the new write would pass for an old copy and vanish).
 */
export const ACTOR_ID = /^[A-Za-z0-9_-]{1,64}(\.[0-9a-z]{1,16})?$/;

export type ClockEntry = readonly [counter: number, ts: number];
export type VClock = Readonly<Record<string, ClockEntry>>;
export type Ordering = 'before' | 'after' | 'equal' | 'concurrent';

/** Entries kept per clock. Pruning can only add siblings (never drop a version), so a small bound is safe. */
export const MAX_CLOCK_ENTRIES = 10;

export const EMPTY_CLOCK: VClock = Object.freeze({});

export function counterOf(clock: VClock, node: string): number {
  const e = clock[node];
  return e === undefined ? 0 : e[0];
}

/** How `a` relates to `b` in the happened-before partial order. */
export function compare(a: VClock, b: VClock): Ordering {
  let aBigger = false;
  let bBigger = false;
  for (const node in a) {
    const d = a[node][0] - counterOf(b, node);
    if (d > 0) aBigger = true;
    else if (d < 0) bBigger = true;
  }
  for (const node in b) {
    if (!(node in a) && b[node][0] > 0) bBigger = true;
  }
  if (aBigger && bBigger) return 'concurrent';
  if (aBigger) return 'after';
  if (bBigger) return 'before';
  return 'equal';
}

/** True when `a` has seen everything `b` has. */
export function descends(a: VClock, b: VClock): boolean {
  const o = compare(a, b);
  return o === 'after' || o === 'equal';
}

/** Least upper bound: the entry-wise maximum. */
export function merge(a: VClock, b: VClock): VClock {
  const out: Record<string, ClockEntry> = { ...a };
  for (const node in b) {
    const mine = out[node];
    const theirs = b[node];
    if (mine === undefined || theirs[0] > mine[0] || (theirs[0] === mine[0] && theirs[1] > mine[1])) out[node] = theirs;
  }
  return out;
}

export function increment(clock: VClock, node: string, ts: number): VClock {
  return { ...clock, [node]: [counterOf(clock, node) + 1, ts] };
}

/** Keep the `limit` most recently advanced entries (ties broken by node id, so every replica prunes alike). */
export function prune(clock: VClock, limit = MAX_CLOCK_ENTRIES): VClock {
  const nodes = Object.keys(clock);
  if (nodes.length <= limit) return clock;
  nodes.sort((x, y) => clock[y][1] - clock[x][1] || (x < y ? -1 : x > y ? 1 : 0));
  const out: Record<string, ClockEntry> = {};
  for (const node of nodes.slice(0, limit)) out[node] = clock[node];
  return out;
}
