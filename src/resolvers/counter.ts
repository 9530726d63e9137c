/**
 * A PN-counter: per writer, the total of its increments and of its decrements. Each
 * writer only ever raises its own two entries, so the join (entry-wise maximum) loses
 * no update. Writers are `node.epoch` (see ACTOR_ID): a node whose store lost its data
 * counts under a new name rather than restart an old entry from zero.
 *
 * State as stored (JSON): {"p": {"writer": n}, "n": {"writer": n}}
 */
export interface CounterState {
  readonly p: Readonly<Record<string, number>>;
  readonly n: Readonly<Record<string, number>>;
}

export const EMPTY_COUNTER: CounterState = { p: {}, n: {} };

/** The largest step one op may take (keeps totals exact in a double). */
export const MAX_COUNTER_STEP = 2 ** 40;

const isTotals = (x: unknown): x is Record<string, number> =>
  typeof x === 'object' && x !== null && !Array.isArray(x) && Object.values(x).every((v) => Number.isSafeInteger(v) && (v as number) >= 0);

export function isCounterState(x: unknown): x is CounterState {
  return (
    typeof x === 'object' && x !== null && !Array.isArray(x) && isTotals((x as Record<string, unknown>)['p']) && isTotals((x as Record<string, unknown>)['n'])
  );
}

function maxEntries(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) out[k] = Math.max(a[k] ?? 0, b[k] ?? 0);
  return out;
}

/** Join: commutative, associative, idempotent. */
export function mergeCounter(a: CounterState, b: CounterState): CounterState {
  return { p: maxEntries(a.p, b.p), n: maxEntries(a.n, b.n) };
}

export function counterValue(s: CounterState): number {
  let v = 0;
  for (const x of Object.values(s.p)) v += x;
  for (const x of Object.values(s.n)) v -= x;
  return v;
}

/** Add `by` (negative to subtract) as `writer`. */
export function incrementCounter(s: CounterState, writer: string, by: number): CounterState {
  if (by >= 0) return { p: { ...s.p, [writer]: (s.p[writer] ?? 0) + by }, n: s.n };
  return { p: s.p, n: { ...s.n, [writer]: (s.n[writer] ?? 0) - by } };
}
