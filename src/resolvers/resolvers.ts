import { lwwWinner, type Version } from '../versioning/index.js';
import { canonicalJson } from './canonical.js';
import { counterValue, EMPTY_COUNTER, incrementCounter, isCounterState, MAX_COUNTER_STEP, mergeCounter, type CounterState } from './counter.js';
import {
  applyOrSetOp,
  clearOrSet,
  EMPTY_ORSET,
  isOrSetState,
  MAX_ORSET_OP_ELEMENTS,
  mergeOrSet,
  orSetElements,
  type OrSetOp,
  type OrSetState,
} from './orset.js';

/** What a get answers: found or not, and the values as JSON texts. */
export interface ReadResult {
  readonly found: boolean;
  readonly values: readonly string[];
}

/** An op carried by a put to a CRDT bucket, already validated. */
export type CrdtOp = { readonly kind: 'orset'; readonly op: OrSetOp } | { readonly kind: 'counter'; readonly incr: number };

/** What a CRDT write needs from the coordinator: fresh unique tags, and its writer name. */
export interface OpContext {
  readonly newTag: () => string;
  readonly writer: string;
}

/**
 * How a bucket turns concurrent versions into an answer. Replicas always keep
 * concurrent versions as siblings (the vector-clock merge); a resolver only decides
 * what a get returns, what a put may carry, and how siblings fold into one.
 */
export interface Resolver {
  readonly name: string;
  /** 'value': puts carry a value. 'crdt': puts carry an op, applied to the merge of the stored states. */
  readonly kind: 'value' | 'crdt';
  /** The answer to a get, from the merged siblings (tombstones included). Throws when an application resolver does. */
  read(siblings: readonly Version[]): ReadResult;
  /** Fold the values of several siblings (JSON texts) into one; undefined when the client must resolve them. */
  readonly fold?: (values: readonly string[]) => string;
  /** Why a put's value (JSON text) or op is unfit for this bucket; null when fine. */
  check(value: unknown, op: unknown): string | null;
  /** CRDT buckets: the state after `op` (or a delete, op null) from the merged stored state. */
  readonly apply?: (state: string | null, op: CrdtOp | null, ctx: OpContext) => string;
  /** CRDT buckets: the op as validated from a request's "op" field. */
  readonly parseOp?: (op: unknown) => CrdtOp;
}

/** The values of the siblings that are not tombstones. */
function live(siblings: readonly Version[]): string[] {
  const out: string[] = [];
  for (const s of siblings) if (s.v !== undefined) out.push(s.v);
  return out;
}
const notFound: ReadResult = { found: false, values: [] };

export const lww: Resolver = {
  name: 'lww',
  kind: 'value',
  read(siblings) {
    const w = lwwWinner(siblings);
    return w === undefined || w.v === undefined ? notFound : { found: true, values: [w.v] };
  },
  check: (_value, op) => (op === undefined ? null : 'lww buckets take a "value", not an "op"'),
};

export const siblingsResolver: Resolver = {
  name: 'siblings',
  kind: 'value',
  read(siblings) {
    const values = live(siblings);
    return values.length === 0 ? notFound : { found: true, values };
  },
  check: (_value, op) => (op === undefined ? null : 'siblings buckets take a "value", not an "op"'),
};

/** The union of JSON arrays, elements compared by their canonical JSON, in canonical order. */
export function unionOf(arrays: readonly unknown[][]): unknown[] {
  const byText = new Map<string, unknown>();
  for (const a of arrays) for (const x of a) byText.set(canonicalJson(x), x);
  return [...byText.keys()].sort().map((k) => byText.get(k));
}

const asArray = (text: string): unknown[] => {
  const v = JSON.parse(text) as unknown;
  return Array.isArray(v) ? v : [v];
};

export const union: Resolver = {
  name: 'union',
  kind: 'value',
  read(siblings) {
    const values = live(siblings);
    if (values.length === 0) return notFound;
    return { found: true, values: [values.length === 1 ? values[0] : JSON.stringify(unionOf(values.map(asArray)))] };
  },
  fold: (values) => JSON.stringify(unionOf(values.map(asArray))),
  check: (value, op) =>
    op !== undefined ? 'union buckets take a "value", not an "op"' : Array.isArray(value) ? null : 'union buckets hold JSON arrays: "value" must be an array',
};

/** The join of the CRDT states stored as JSON texts (text that is not such a state is skipped). */
function joinStates<S>(texts: readonly string[], empty: S, isState: (x: unknown) => x is S, join: (a: S, b: S) => S): S {
  let s = empty;
  for (const t of texts) {
    const v = JSON.parse(t) as unknown;
    if (isState(v)) s = join(s, v);
  }
  return s;
}

const orsetStates = (texts: readonly string[]): OrSetState => joinStates(texts, EMPTY_ORSET, isOrSetState, mergeOrSet);

export const orset: Resolver = {
  name: 'orset',
  kind: 'crdt',
  read(siblings) {
    const values = live(siblings);
    return values.length === 0 ? notFound : { found: true, values: [JSON.stringify(orSetElements(orsetStates(values)))] };
  },
  fold: (values) => JSON.stringify(orsetStates(values)),
  check(value, op) {
    if (value !== undefined) return 'orset buckets take an "op": {"add": [...], "remove": [...]}, not a "value"';
    if (typeof op !== 'object' || op === null || Array.isArray(op)) return '"op" must be {"add": [...], "remove": [...]}';
    const o = op as Record<string, unknown>;
    if (Object.keys(o).some((k) => k !== 'add' && k !== 'remove')) return '"op" of an orset takes only "add" and "remove"';
    const add = o['add'] ?? [];
    const remove = o['remove'] ?? [];
    if (!Array.isArray(add) || !Array.isArray(remove)) return '"add" and "remove" must be arrays';
    if (add.length + remove.length === 0) return 'an orset op must add or remove something';
    if (add.length + remove.length > MAX_ORSET_OP_ELEMENTS) return `an orset op takes at most ${MAX_ORSET_OP_ELEMENTS} elements`;
    return null;
  },
  parseOp: (op) => {
    const o = op as { add?: unknown[]; remove?: unknown[] };
    return { kind: 'orset', op: { add: o.add ?? [], remove: o.remove ?? [] } };
  },
  apply(state, op, ctx) {
    const current = state === null ? EMPTY_ORSET : orsetStates([state]);
    const next = op === null ? clearOrSet(current) : op.kind === 'orset' ? applyOrSetOp(current, op.op, ctx.newTag) : current;
    return JSON.stringify(next);
  },
};

const counterStates = (texts: readonly string[]): CounterState => joinStates(texts, EMPTY_COUNTER, isCounterState, mergeCounter);

export const counter: Resolver = {
  name: 'counter',
  kind: 'crdt',
  read(siblings) {
    const values = live(siblings);
    return values.length === 0 ? notFound : { found: true, values: [String(counterValue(counterStates(values)))] };
  },
  fold: (values) => JSON.stringify(counterStates(values)),
  check(value, op) {
    if (value !== undefined) return 'counter buckets take an "op": {"incr": n}, not a "value"';
    if (typeof op !== 'object' || op === null || Array.isArray(op) || Object.keys(op).length !== 1) return '"op" must be {"incr": n}';
    const by = (op as Record<string, unknown>)['incr'];
    if (!Number.isSafeInteger(by) || Math.abs(by as number) > MAX_COUNTER_STEP)
      return `"incr" must be an integer from -${MAX_COUNTER_STEP} to ${MAX_COUNTER_STEP}`;
    return null;
  },
  parseOp: (op) => ({ kind: 'counter', incr: (op as { incr: number }).incr }),
  apply(state, op, ctx) {
    const current = state === null ? EMPTY_COUNTER : counterStates([state]);
    // A delete takes the counter back to zero; increments it had not seen still count.
    const by = op === null ? -counterValue(current) : op.kind === 'counter' ? op.incr : 0;
    return JSON.stringify(incrementCounter(current, ctx.writer, by));
  },
};

/**
 * An application resolver: a module's `merge(values)` settles concurrent values into
 * one. It may throw; the request then fails with INTERNAL and the node goes on.
 */
export function appResolver(name: string, merge: (values: unknown[]) => unknown): Resolver {
  const fold = (values: readonly string[]): string => {
    const out = JSON.stringify(merge(values.map((v) => JSON.parse(v) as unknown)));
    if (out === undefined) throw new Error(`resolver "${name}" returned undefined`);
    return out;
  };
  return {
    name,
    kind: 'value',
    read(siblings) {
      const values = live(siblings);
      if (values.length === 0) return notFound;
      return { found: true, values: [values.length === 1 ? values[0] : fold(values)] };
    },
    fold,
    check: (_value, op) => (op === undefined ? null : `"${name}" buckets take a "value", not an "op"`),
  };
}

/** Stands in for a resolver a bucket names but this node was not started with: every request fails clearly. */
export function missingResolver(name: string): Resolver {
  const why = `resolver "${name}" is not loaded on this node (start it with --resolver ${name}=FILE)`;
  return {
    name,
    kind: 'value',
    read() {
      throw new Error(why);
    },
    check: () => why,
  };
}

export const BUILTIN_RESOLVERS: ReadonlyMap<string, Resolver> = new Map([lww, siblingsResolver, union, orset, counter].map((r) => [r.name, r]));

/** Application resolver names: like bucket names, and not a built-in's. */
export const RESOLVER_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
