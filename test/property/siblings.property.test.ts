import { expect } from 'chai';
import fc from 'fast-check';
import { contextOf, mergeSiblings, mergeVersion, obsoletes, type Version, type VClock } from '../../src/versioning/index.js';

/**
 * Histories of writes as a cluster makes them: each write is coordinated by some
 * node with the context of a read of some replica (or none), and reaches a random
 * subset of the replicas. Sending only the new version instead of the coordinator's
 * whole sibling set fails the second property: a read of a replica that lacks an
 * earlier concurrent dot of the same node would supersede it unseen.
 */
interface Write {
  coordinator: number;
  readFrom: number | null;
  reaches: boolean[];
}
const REPLICAS = 3;
const writeArb: fc.Arbitrary<Write> = fc.record({
  coordinator: fc.integer({ min: 0, max: REPLICAS - 1 }),
  readFrom: fc.option(fc.integer({ min: 0, max: REPLICAS - 1 })),
  reaches: fc.array(fc.boolean(), { minLength: REPLICAS, maxLength: REPLICAS }),
});

function play(writes: Write[]): { replicas: Version[][]; all: Version[] } {
  const replicas: Version[][] = Array.from({ length: REPLICAS }, () => []);
  const counters = [0, 0, 0];
  const all: Version[] = [];
  writes.forEach((w, i) => {
    const context: VClock = w.readFrom === null ? {} : contextOf(replicas[w.readFrom]!);
    const version: Version = { d: [`n${w.coordinator}`, ++counters[w.coordinator]!], c: context, t: i, v: String(i) };
    all.push(version);
    // The coordinator stores the write, then sends its whole sibling set to the replicas it reaches.
    const home = w.coordinator;
    replicas[home] = mergeVersion(replicas[home]!, version).siblings;
    w.reaches.forEach((hit, r) => {
      if (hit && r !== home) replicas[r] = mergeSiblings(replicas[r]!, replicas[home]!);
    });
  });
  return { replicas, all };
}

const dots = (vs: readonly Version[]) => vs.map((v) => v.d.join(':')).sort();

describe('siblings (property)', () => {
  const histories = fc.array(writeArb, { minLength: 1, maxLength: 25 });

  it('merging replica states is commutative, associative and idempotent', () => {
    fc.assert(
      fc.property(histories, (writes) => {
        const [a, b, c] = play(writes).replicas as [Version[], Version[], Version[]];
        expect(dots(mergeSiblings(a, b))).to.deep.equal(dots(mergeSiblings(b, a)));
        expect(dots(mergeSiblings(mergeSiblings(a, b), c))).to.deep.equal(dots(mergeSiblings(a, mergeSiblings(b, c))));
        expect(dots(mergeSiblings(a, a))).to.deep.equal(dots(a));
      }),
    );
  });

  it('never drops a version unless a kept version supersedes it', () => {
    fc.assert(
      fc.property(histories, (writes) => {
        const { replicas, all } = play(writes);
        const merged = replicas.reduce((acc, r) => mergeSiblings(acc, r), [] as Version[]);
        for (const v of all) {
          const kept = merged.some((m) => m.d[0] === v.d[0] && m.d[1] === v.d[1]);
          const superseded = merged.some((m) => obsoletes(m, v));
          expect(kept || superseded, `version ${v.d.join(':')} vanished`).to.equal(true);
        }
        // Siblings are mutually concurrent.
        for (const x of merged) for (const y of merged) expect(obsoletes(x, y)).to.equal(false);
      }),
    );
  });

  it('keeps two writes without context as siblings, even from one coordinator', () => {
    const a: Version = { d: ['n1', 1], c: {}, t: 1, v: '"a"' };
    const b: Version = { d: ['n1', 2], c: {}, t: 2, v: '"b"' };
    expect(dots(mergeSiblings([a], [b]))).to.deep.equal(['n1:1', 'n1:2']);
    // A write with the context of both supersedes both.
    const c: Version = { d: ['n2', 1], c: contextOf([a, b]), t: 3, v: '"c"' };
    expect(dots(mergeSiblings([a, b], [c]))).to.deep.equal(['n2:1']);
    // And a replayed old write changes nothing.
    expect(mergeVersion([c], a).changed).to.equal(false);
  });
});
