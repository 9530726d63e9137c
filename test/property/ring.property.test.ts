import { expect } from 'chai';
import fc from 'fast-check';
import { keyPosition, Ring, type RingMember } from '../../src/ring/index.js';

const KEYS = 100_000;
const keyPositions = Array.from({ length: KEYS }, (_, i) => keyPosition('default', `key-${i}`));

function primaries(ring: Ring): string[] {
  return keyPositions.map((p) => ring.primary(p)!);
}

function counts(owners: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const o of owners) m.set(o, (m.get(o) ?? 0) + 1);
  return m;
}

/** Distinct node ids of the given count. */
const nodeIds = (count: number) => fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9-]{0,11}$/), { minLength: count, maxLength: count });

describe('ring (property)', function () {
  this.timeout(120_000);

  it('spreads 100k keys over 10 equal nodes with the most loaded at most 1.3x the mean', () => {
    fc.assert(
      fc.property(nodeIds(10), (ids) => {
        const ring = new Ring(ids.map((id) => ({ id, weight: 1 })));
        const load = counts(primaries(ring));
        const mean = KEYS / ids.length;
        expect(Math.max(...load.values()) / mean).to.be.at.most(1.3);
      }),
      { numRuns: 8 },
    );
  });

  it('moves between 0.5/11 and 1.5/11 of the keys when an 11th node joins, all of them to the new node', () => {
    fc.assert(
      fc.property(nodeIds(11), (ids) => {
        const members: RingMember[] = ids.map((id) => ({ id, weight: 1 }));
        const before = primaries(new Ring(members.slice(0, 10)));
        const after = primaries(new Ring(members));
        let moved = 0;
        for (let i = 0; i < KEYS; i++) {
          if (before[i] !== after[i]) {
            moved++;
            expect(after[i]).to.equal(ids[10]);
          }
        }
        expect(moved / KEYS).to.be.within(0.5 / 11, 1.5 / 11);
      }),
      { numRuns: 6 },
    );
  });

  it('gives a node of weight 2 about twice the keys of a node of weight 1', () => {
    fc.assert(
      fc.property(nodeIds(6), (ids) => {
        const ring = new Ring(ids.map((id, i) => ({ id, weight: i === 0 ? 2 : 1 })));
        const load = counts(primaries(ring));
        const others = ids.slice(1).map((id) => load.get(id) ?? 0);
        const ratio = (load.get(ids[0]!) ?? 0) / (others.reduce((a, b) => a + b, 0) / others.length);
        expect(ratio).to.be.within(1.6, 2.4);
      }),
      { numRuns: 6 },
    );
  });

  it('returns N distinct nodes, the primary first, and the same list for the same key', () => {
    fc.assert(
      fc.property(nodeIds(5), fc.string(), fc.integer({ min: 1, max: 5 }), (ids, key, n) => {
        const ring = new Ring(ids.map((id) => ({ id, weight: 1 })));
        const pos = keyPosition('b', key);
        const list = ring.walk(pos, n);
        expect(list).to.have.length(n);
        expect(new Set(list).size).to.equal(n);
        expect(list[0]).to.equal(ring.primary(pos));
        expect(new Ring([...ids].reverse().map((id) => ({ id, weight: 1 }))).walk(pos, n)).to.deep.equal(list);
      }),
    );
  });
});
