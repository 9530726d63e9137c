import { expect } from 'chai';
import fc from 'fast-check';
import { compare, descends, increment, merge, prune, type VClock } from '../../src/versioning/index.js';

const node = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l');
const clockArb: fc.Arbitrary<VClock> = fc.dictionary(node, fc.tuple(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 1000 })), { maxKeys: 12 });

const opposite = { before: 'after', after: 'before', equal: 'equal', concurrent: 'concurrent' } as const;

describe('vector clocks (property)', () => {
  it('compare is reflexive and antisymmetric', () => {
    fc.assert(
      fc.property(clockArb, clockArb, (a, b) => {
        expect(compare(a, a)).to.equal('equal');
        expect(compare(b, a)).to.equal(opposite[compare(a, b)]);
      }),
    );
  });

  it('descends is transitive', () => {
    fc.assert(
      fc.property(clockArb, clockArb, clockArb, (a, b, c) => {
        const ab = merge(a, b);
        const abc = merge(ab, c);
        // abc ≥ ab ≥ a, so abc ≥ a
        expect(descends(abc, ab) && descends(ab, a)).to.equal(true);
        expect(descends(abc, a)).to.equal(true);
      }),
    );
  });

  it('merge is the least upper bound: commutative, associative, idempotent', () => {
    fc.assert(
      fc.property(clockArb, clockArb, clockArb, (a, b, c) => {
        expect(compare(merge(a, b), merge(b, a))).to.equal('equal');
        expect(compare(merge(merge(a, b), c), merge(a, merge(b, c)))).to.equal('equal');
        expect(compare(merge(a, a), a)).to.equal('equal');
        expect(descends(merge(a, b), a)).to.equal(true);
        expect(descends(merge(a, b), b)).to.equal(true);
      }),
    );
  });

  it('increment moves a clock strictly after itself', () => {
    fc.assert(
      fc.property(clockArb, node, (a, n) => {
        expect(compare(increment(a, n, 5), a)).to.equal('after');
      }),
    );
  });

  it('concurrent increments of a common ancestor are concurrent', () => {
    fc.assert(
      fc.property(clockArb, (a) => {
        expect(compare(increment(a, 'x', 1), increment(a, 'y', 1))).to.equal('concurrent');
      }),
    );
  });

  it('prune keeps at most the limit, the newest entries, and is descended by the original', () => {
    fc.assert(
      fc.property(clockArb, fc.integer({ min: 1, max: 10 }), (a, limit) => {
        const p = prune(a, limit);
        expect(Object.keys(p).length).to.be.at.most(limit);
        expect(descends(a, p)).to.equal(true);
        const kept = Object.values(p).map((e) => e[1]);
        const dropped = Object.keys(a)
          .filter((k) => !(k in p))
          .map((k) => a[k]![1]);
        if (kept.length && dropped.length) expect(Math.min(...kept)).to.be.at.least(Math.max(...dropped));
      }),
    );
  });
});
