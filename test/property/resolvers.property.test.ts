import { expect } from 'chai';
import fc from 'fast-check';
import {
  applyOrSetOp,
  canonicalJson,
  counterValue,
  EMPTY_COUNTER,
  EMPTY_ORSET,
  incrementCounter,
  lww,
  mergeCounter,
  mergeOrSet,
  orSetElements,
  unionOf,
  type CounterState,
  type OrSetState,
} from '../../src/resolvers/index.js';
import type { Version } from '../../src/versioning/index.js';

const element = fc.oneof(fc.constantFrom('milk', 'eggs', 'bread', 'jam'), fc.integer({ min: 0, max: 5 }), fc.record({ sku: fc.constantFrom('a', 'b') }));

/** Random OR-Set states grown by random ops from a shared start, as replicas grow them. */
const orsetState: fc.Arbitrary<OrSetState> = fc
  .tuple(
    fc.array(fc.record({ add: fc.array(element, { maxLength: 3 }), remove: fc.array(element, { maxLength: 2 }) }), { maxLength: 6 }),
    fc.stringMatching(/^[a-z]{8}$/),
  )
  .map(([ops, prefix]) => {
    let tag = 0;
    return ops.reduce((s, op) => applyOrSetOp(s, op, () => `${prefix}-${tag++}`), EMPTY_ORSET);
  });

const counterState: fc.Arbitrary<CounterState> = fc
  .array(fc.tuple(fc.constantFrom('n1.a', 'n2.b', 'n3.c'), fc.integer({ min: -50, max: 50 })), { maxLength: 8 })
  .map((steps) => steps.reduce((s, [w, by]) => incrementCounter(s, w, by), EMPTY_COUNTER));

const same = (a: unknown, b: unknown) => expect(canonicalJson(a)).to.equal(canonicalJson(b));

describe('resolvers (property)', () => {
  it('OR-Set merge is commutative, associative and idempotent', () => {
    fc.assert(
      fc.property(orsetState, orsetState, orsetState, (a, b, c) => {
        same(mergeOrSet(a, b), mergeOrSet(b, a));
        same(mergeOrSet(mergeOrSet(a, b), c), mergeOrSet(a, mergeOrSet(b, c)));
        same(mergeOrSet(a, a), mergeOrSet(a, EMPTY_ORSET));
      }),
    );
  });

  it('OR-Set: an observed remove never comes back through a merge, and a concurrent add wins', () => {
    fc.assert(
      fc.property(orsetState, fc.array(element, { minLength: 1, maxLength: 3 }), fc.array(element, { maxLength: 3 }), (start, removed, readdedConcurrently) => {
        let n = 0;
        const tag = () => `t${n++}`;
        // Two replicas diverge from the same state: one removes what it observed, the other adds.
        const removing = applyOrSetOp(start, { add: [], remove: removed }, tag);
        const adding = applyOrSetOp(start, { add: readdedConcurrently, remove: [] }, tag);
        const merged = orSetElements(mergeOrSet(removing, adding)).map(canonicalJson);
        for (const r of removed.map(canonicalJson)) {
          const readded = readdedConcurrently.map(canonicalJson).includes(r);
          expect(merged.includes(r), `${r} ${readded ? 'was re-added concurrently and must stay' : 'was removed and must stay removed'}`).to.equal(readded);
        }
        // Merging the stale start back in changes nothing.
        same(mergeOrSet(mergeOrSet(removing, adding), start), mergeOrSet(removing, adding));
      }),
    );
  });

  it('counter merge is commutative, associative and idempotent, and loses no increment', () => {
    fc.assert(
      fc.property(counterState, counterState, counterState, (a, b, c) => {
        same(mergeCounter(a, b), mergeCounter(b, a));
        same(mergeCounter(mergeCounter(a, b), c), mergeCounter(a, mergeCounter(b, c)));
        same(mergeCounter(a, a), mergeCounter(a, EMPTY_COUNTER));
      }),
    );
    fc.assert(
      fc.property(
        counterState,
        fc.array(fc.integer({ min: -9, max: 9 }), { maxLength: 5 }),
        fc.array(fc.integer({ min: -9, max: 9 }), { maxLength: 5 }),
        (start, left, right) => {
          // Two writers increment concurrently from the same state: the merge counts both.
          const l = left.reduce((s, by) => incrementCounter(s, 'left.x', by), start);
          const r = right.reduce((s, by) => incrementCounter(s, 'right.y', by), start);
          const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
          expect(counterValue(mergeCounter(l, r))).to.equal(counterValue(start) + sum(left) + sum(right));
        },
      ),
    );
  });

  it('union is commutative, associative and idempotent', () => {
    const arr = fc.array(element, { maxLength: 5 });
    fc.assert(
      fc.property(arr, arr, arr, (a, b, c) => {
        same(unionOf([a, b]), unionOf([b, a]));
        same(unionOf([unionOf([a, b]), c]), unionOf([a, unionOf([b, c])]));
        same(unionOf([a, a]), unionOf([a]));
      }),
    );
  });

  it('lww picks the same winner in any order and from any grouping', () => {
    const version = fc.record({
      d: fc.tuple(fc.constantFrom('n1.a', 'n2.b'), fc.integer({ min: 1, max: 9 })),
      c: fc.constant({}),
      t: fc.integer({ min: 0, max: 5 }),
      v: fc.option(fc.constantFrom('1', '2'), { nil: undefined }),
    }) as fc.Arbitrary<Version>;
    fc.assert(
      // A dot names one write: siblings never share one.
      fc.property(fc.uniqueArray(version, { minLength: 1, maxLength: 6, selector: (v) => v.d.join(':') }), (vs) => {
        const forward = lww.read(vs);
        const backward = lww.read([...vs].reverse());
        expect(backward).to.deep.equal(forward);
        const half = Math.floor(vs.length / 2);
        const winnersOfHalves = [vs.slice(0, half), vs.slice(half)]
          .filter((h) => h.length > 0)
          .map((h) =>
            h.reduce((best, v) => (v.t > best.t || (v.t === best.t && (v.d[0] > best.d[0] || (v.d[0] === best.d[0] && v.d[1] > best.d[1]))) ? v : best)),
          );
        expect(lww.read(winnersOfHalves)).to.deep.equal(forward);
      }),
    );
  });
});
