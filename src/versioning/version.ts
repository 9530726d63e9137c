import { counterOf, merge, type ClockEntry, type VClock } from './vclock.js';

/**
 * The event that created a version: the coordinating node and its counter for
 * this key. Dots are unique per key, so a replica can tell a concurrent write
 * from a copy of one it already holds.
 */
export type Dot = readonly [node: string, counter: number];

/**
 * One stored version of a key (a sibling). Field names are short because this is
 * the wire and storage format, and the Redis merge script reads the same fields.
 *
 * This is a dotted version vector: `c` is the causal context the writer had seen
 * (the context of its read), `d` is the new event. Deciding obsolescence on the
 * context rather than on the full clock is what keeps two writes without a context
 * coordinated by the same node as siblings instead of one silently beating the other.
 */
export interface Version {
  /** the write's own dot */
  readonly d: Dot;
  /** causal context: what the writer had seen */
  readonly c: VClock;
  /** coordinator wall-clock time (ms), for last-write-wins */
  readonly t: number;
  /** the value as JSON text; absent for a tombstone */
  readonly v?: string;
  /**
   * when the value expires (ms, coordinator wall clock; absent: never). Part of the
   * version, so every replica decides alike: from then on it reads as a tombstone of
   * the same dot, and the reaper may drop the value and keep the tombstone.
   */
  readonly x?: number;
}

export function isTombstone(v: Version): boolean {
  return v.v === undefined;
}

/** True when `v` holds a value at `now`: not a tombstone, not expired. */
export function isLive(v: Version, now: number): boolean {
  return v.v !== undefined && (v.x === undefined || v.x > now);
}

/** The siblings as they read at `now`: an expired version is a tombstone of its dot (the same array when none is). */
export function expired(siblings: readonly Version[], now: number): readonly Version[] {
  if (!siblings.some((s) => s.x !== undefined && s.x <= now && s.v !== undefined)) return siblings;
  return siblings.map((s) => (s.x !== undefined && s.x <= now && s.v !== undefined ? { d: s.d, c: s.c, t: s.t, x: s.x } : s));
}

export function sameDot(a: Dot, b: Dot): boolean {
  return a[0] === b[0] && a[1] === b[1];
}

function covers(clock: VClock, dot: Dot): boolean {
  return counterOf(clock, dot[0]) >= dot[1];
}

/** `a` supersedes `b`: `b`'s write is in what `a`'s writer had seen. */
export function obsoletes(a: Version, b: Version): boolean {
  return !sameDot(a.d, b.d) && covers(a.c, b.d);
}

/** The version's whole history as a vector clock: its context plus its own dot. */
export function fullClock(v: Version): VClock {
  const [node, counter] = v.d;
  if (counterOf(v.c, node) >= counter) return v.c;
  const entry: ClockEntry = [counter, v.t];
  return { ...v.c, [node]: entry };
}

export interface MergeResult {
  readonly siblings: Version[];
  /** false when `incoming` was already held or is obsolete */
  readonly changed: boolean;
}

/**
 * Add one version to a replica's siblings: drop it if it is known or obsolete,
 * otherwise drop what it obsoletes and keep it. Never drops a concurrent version.
 * The Redis storage runs the same rule in Lua; the tests hold the two to it.
 */
export function mergeVersion(siblings: readonly Version[], incoming: Version): MergeResult {
  for (const s of siblings) {
    if (sameDot(s.d, incoming.d) || covers(s.c, incoming.d)) return { siblings: [...siblings], changed: false };
  }
  const kept = siblings.filter((s) => !covers(incoming.c, s.d));
  kept.push(incoming);
  return { siblings: kept, changed: true };
}

/** Merge two sibling sets (for example two replicas' answers to a read). */
export function mergeSiblings(a: readonly Version[], b: readonly Version[]): Version[] {
  let out = [...a];
  for (const v of b) out = mergeVersion(out, v).siblings;
  return out;
}

/** The context a client gets back from a read: the join of every sibling's history. */
export function contextOf(siblings: readonly Version[]): VClock {
  let clock: VClock = {};
  for (const s of siblings) clock = merge(clock, fullClock(s));
  return clock;
}

/** True when `held` already includes (or supersedes) every version in `wanted`. */
export function includesAll(held: readonly Version[], wanted: readonly Version[]): boolean {
  return wanted.every((w) => held.some((h) => sameDot(h.d, w.d) || obsoletes(h, w)));
}
