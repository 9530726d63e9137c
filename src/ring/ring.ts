import { RING_SIZE, ringPosition, segmentEnd, segmentOf } from './hash.js';

/** Tokens a node receives per unit of weight. 256 keeps the most loaded of 10 equal nodes within ~1.2x of the mean. */
export const TOKENS_PER_WEIGHT = 256;
/** A weight beyond this would put millions of tokens on the ring: refuse it. */
export const MAX_WEIGHT = 64;
/** Sum of the members' weights a ring may hold (256 tokens each): bounds a ring at 262,144 tokens. */
export const MAX_TOTAL_WEIGHT = 1024;

export function totalWeight(members: readonly RingMember[]): number {
  return members.reduce((a, m) => a + m.weight, 0);
}

export interface RingMember {
  readonly id: string;
  readonly weight: number;
}

/** Token positions of one node, memoized: gossip rebuilds rings often and MD5 is the cost. */
const tokenCache = new Map<string, Float64Array>();
const TOKEN_CACHE_LIMIT = 4096;

function tokenPositions(id: string, count: number): Float64Array {
  const key = `${count}\u0000${id}`;
  let positions = tokenCache.get(key);
  if (positions === undefined) {
    // Hashing `id#i` scatters a node's tokens around the ring instead of placing them in sequence.
    // Each token is moved to the end of its segment (see SEGMENTS).
    positions = Float64Array.from({ length: count }, (_, i) => segmentEnd(segmentOf(ringPosition(`${id}#${i}`))));
    if (tokenCache.size >= TOKEN_CACHE_LIMIT) tokenCache.clear();
    tokenCache.set(key, positions);
  }
  return positions;
}

export interface Token {
  readonly position: number;
  readonly node: string;
}

/**
 * Consistent-hashing ring with weighted virtual nodes. Immutable and free of I/O:
 * membership changes build a new Ring.
 */
export class Ring {
  readonly tokens: readonly Token[];
  readonly members: readonly RingMember[];
  private readonly positions: Float64Array;

  constructor(members: readonly RingMember[], tokensPerWeight = TOKENS_PER_WEIGHT) {
    const seen = new Set<string>();
    for (const m of members) {
      if (seen.has(m.id)) throw new Error(`duplicate ring member ${m.id}`);
      seen.add(m.id);
      if (!(m.weight > 0 && m.weight <= MAX_WEIGHT)) throw new RangeError(`weight of ${m.id} must be in (0, ${MAX_WEIGHT}], got ${m.weight}`);
    }
    this.members = [...members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const tokens: Token[] = [];
    for (const m of this.members) {
      const count = Math.max(1, Math.round(m.weight * tokensPerWeight));
      for (const position of tokenPositions(m.id, count)) tokens.push({ position, node: m.id });
    }
    tokens.sort((a, b) => a.position - b.position || (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
    this.tokens = tokens;
    this.positions = Float64Array.from(tokens, (t) => t.position);
  }

  get size(): number {
    return this.members.length;
  }

  /** Index of the first token at or clockwise after `position`. */
  private successorIndex(position: number): number {
    const p = this.positions;
    let lo = 0;
    let hi = p.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (p[mid] < position) lo = mid + 1;
      else hi = mid;
    }
    return lo === p.length ? 0 : lo;
  }

  /**
   * Distinct physical nodes clockwise from `position`: the first N are the key's
   * preference list, the rest are its fallbacks in order. `limit` stops the walk early.
   */
  walk(position: number, limit = this.members.length): string[] {
    const out: string[] = [];
    for (const node of this.nodesFrom(position)) {
      if (out.length >= limit) break;
      out.push(node);
    }
    return out;
  }

  /** Distinct physical nodes clockwise from `position`, lazily: callers stop when they have enough. */
  *nodesFrom(position: number): Generator<string, void, undefined> {
    if (this.tokens.length === 0) return;
    const seen = new Set<string>();
    const start = this.successorIndex(position);
    for (let i = 0; i < this.tokens.length && seen.size < this.members.length; i++) {
      const node = this.tokens[(start + i) % this.tokens.length].node;
      if (!seen.has(node)) {
        seen.add(node);
        yield node;
      }
    }
  }

  /** The node that owns `position` as the first replica. */
  primary(position: number): string | undefined {
    return this.tokens.length === 0 ? undefined : this.tokens[this.successorIndex(position)].node;
  }

  /** Fraction of the hash space each node owns as primary (sums to 1). */
  ownership(): Map<string, number> {
    const share = new Map<string, number>(this.members.map((m) => [m.id, 0]));
    const t = this.tokens;
    for (let i = 0; i < t.length; i++) {
      const prev = i === 0 ? t[t.length - 1].position - RING_SIZE : t[i - 1].position;
      share.set(t[i].node, (share.get(t[i].node) ?? 0) + (t[i].position - prev) / RING_SIZE);
    }
    return share;
  }
}
