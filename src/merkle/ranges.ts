import { createHash } from 'node:crypto';
import { Ring, segmentEnd, segmentOf, SEGMENTS } from '../ring/index.js';

/**
 * The segments two nodes both replicate (both among a segment's first `n` ring
 * nodes), as a mask of SEGMENTS bytes (1 = shared). Tokens sit at segment ends, so
 * each arc between tokens is a run of whole segments with one preference list:
 * one ring walk per arc, not per segment.
 */
export function sharedSegments(ring: Ring, a: string, b: string, n: number): Uint8Array {
  const mask = new Uint8Array(SEGMENTS);
  const ends = [...new Set(ring.tokens.map((t) => segmentOf(t.position)))];
  for (let i = 0; i < ends.length; i++) {
    const replicas = ring.walk(segmentEnd(ends[i]), n);
    if (!replicas.includes(a) || !replicas.includes(b)) continue;
    const from = (i === 0 ? ends[ends.length - 1] : ends[i - 1]) + 1;
    if (i === 0) {
      // The arc before the first token wraps around the top of the ring.
      mask.fill(1, from, SEGMENTS);
      mask.fill(1, 0, ends[0] + 1);
    } else {
      mask.fill(1, from, ends[i] + 1);
    }
  }
  return mask;
}

const masks = new WeakMap<Ring, Map<string, Uint8Array>>();

/** sharedSegments, remembered per ring (rings are immutable; gossip replaces them). */
export function sharedSegmentsOf(ring: Ring, a: string, b: string, n: number): Uint8Array {
  const key = `${a < b ? a : b}|${a < b ? b : a}|${n}`;
  let forRing = masks.get(ring);
  if (forRing === undefined) {
    forRing = new Map();
    masks.set(ring, forRing);
  }
  let mask = forRing.get(key);
  if (mask === undefined) {
    mask = sharedSegments(ring, a, b, n);
    forRing.set(key, mask);
  }
  return mask;
}

/** Fraction of the ring a mask covers. */
export function maskShare(mask: Uint8Array): number {
  let n = 0;
  for (const b of mask) n += b;
  return n / mask.length;
}

/**
 * A short name for a ring and replica count: two nodes compare trees only when they
 * agree on both, or their ranges (and masks) would differ.
 */
export function ringFingerprint(ring: Ring, n: number): string {
  const text = `${n}|${ring.members.map((m) => `${m.id}:${m.weight}`).join(',')}`;
  return createHash('md5').update(text).digest('hex').slice(0, 16);
}
