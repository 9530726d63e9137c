import { canonicalJson } from './canonical.js';

/**
 * An observed-remove set (OR-Set), the CRDT for a shopping cart. Every add of an
 * element gets a fresh unique tag; a remove retires the tags it has observed. An
 * element is present while it has a tag not retired. Merging is the union of both
 * parts, so a remove that saw a tag can never be undone by a merge, while an add
 * the remover had not seen (a new tag) survives it: concurrent add wins.
 *
 * State as stored (JSON): {"e": {"<element as canonical JSON>": ["tag", ...]}, "x": ["retired tag", ...]}
 */
export interface OrSetState {
  readonly e: Readonly<Record<string, readonly string[]>>;
  readonly x: readonly string[];
}

export interface OrSetOp {
  readonly add: readonly unknown[];
  readonly remove: readonly unknown[];
}

export const EMPTY_ORSET: OrSetState = { e: {}, x: [] };

/** Tags of one op, at most: bounds what one request can grow a state by. */
export const MAX_ORSET_OP_ELEMENTS = 1000;

export function isOrSetState(x: unknown): x is OrSetState {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
  const s = x as Record<string, unknown>;
  const e = s['e'];
  const r = s['x'];
  if (typeof e !== 'object' || e === null || Array.isArray(e) || !Array.isArray(r) || !r.every((t) => typeof t === 'string')) return false;
  return Object.values(e).every((tags) => Array.isArray(tags) && tags.every((t) => typeof t === 'string'));
}

/** Join of two states: commutative, associative, idempotent. Output is sorted, so equal states print alike. */
export function mergeOrSet(a: OrSetState, b: OrSetState): OrSetState {
  const retired = new Set([...a.x, ...b.x]);
  const e: Record<string, string[]> = {};
  for (const s of [a, b]) {
    for (const [elem, tags] of Object.entries(s.e)) {
      const live = tags.filter((t) => !retired.has(t));
      if (live.length === 0) continue;
      e[elem] = [...new Set([...(e[elem] ?? []), ...live])].sort();
    }
  }
  const sorted: Record<string, string[]> = {};
  for (const k of Object.keys(e).sort()) sorted[k] = e[k];
  return { e: sorted, x: [...retired].sort() };
}

/**
 * Apply an op to a state: removes retire every observed tag of their element, then
 * each add gets a tag from `newTag` (unique across the cluster). An element both
 * added and removed in one op ends present.
 */
export function applyOrSetOp(state: OrSetState, op: OrSetOp, newTag: () => string): OrSetState {
  const e: Record<string, string[]> = Object.fromEntries(Object.entries(state.e).map(([k, v]) => [k, [...v]]));
  const x = new Set(state.x);
  for (const elem of op.remove) {
    const k = canonicalJson(elem);
    for (const t of e[k] ?? []) x.add(t);
    delete e[k];
  }
  for (const elem of op.add) {
    const k = canonicalJson(elem);
    e[k] = [...(e[k] ?? []), newTag()];
  }
  return mergeOrSet({ e, x: [...x] }, EMPTY_ORSET);
}

/** Remove every element (what a delete of the key means for an OR-Set). */
export function clearOrSet(state: OrSetState): OrSetState {
  return applyOrSetOp(state, { add: [], remove: Object.keys(state.e).map((k) => JSON.parse(k) as unknown) }, () => '');
}

/** The elements present, in a stable order. */
export function orSetElements(state: OrSetState): unknown[] {
  return Object.keys(state.e)
    .sort()
    .map((k) => JSON.parse(k) as unknown);
}

/**
 * The state without its retired tags. Safe only once no version concurrent with this
 * one exists anywhere or can still be made from an older state (see
 * actors/node/retired-tags.ts): a retired tag's only job is to beat such a version's copy of it.
 */
export function compactOrSet(state: OrSetState): OrSetState {
  return { e: state.e, x: [] };
}

/** An OR-Set value's text without its retired tags, or null when it has none (or is not an OR-Set state). */
export function compactedText(valueText: string): string | null {
  let state: unknown;
  try {
    state = JSON.parse(valueText);
  } catch {
    return null;
  }
  return isOrSetState(state) && state.x.length > 0 ? JSON.stringify(compactOrSet(state)) : null;
}
