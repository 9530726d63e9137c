import { expect } from 'chai';
import { coveragePlan, segmentTable } from '../../src/membership/coverage.js';
import { compareKeys, encodeCursor, mergePages, parseKeysRequest } from '../../src/protocol/keys.js';
import { Ring, SEGMENTS, segmentEnd, segmentOf } from '../../src/ring/index.js';

const limits = { n: 3, maxKeyBytes: 1024, defaultTimeoutMs: 1000, maxTimeoutMs: 60_000 };

/** For each segment, the nodes a plan asks for it. */
function askedPerSegment(nodes: Map<string, [number, number][]>): string[][] {
  const asked: string[][] = Array.from({ length: SEGMENTS }, () => []);
  for (const [node, runs] of nodes) {
    const table = segmentTable(runs);
    for (let s = 0; s < SEGMENTS; s++) if (table[s] === 1) asked[s].push(node);
  }
  return asked;
}

describe('key listing: coverage plan', () => {
  const ring = new Ring(['a', 'b', 'c', 'd', 'e'].map((id) => ({ id, weight: id === 'e' ? 2 : 1 })));
  const natural = (s: number) => ring.walk(segmentEnd(s), 3);

  for (const r of [1, 2, 3]) {
    it(`asks every segment of exactly ${r} of its natural replicas, none of them down (r=${r})`, () => {
      const down = new Set(r === 3 ? [] : ['b']);
      const plan = coveragePlan(ring, 3, r, (id) => down.has(id));
      expect(plan.ok).to.equal(true);
      if (!plan.ok) return;
      const asked = askedPerSegment(plan.nodes);
      // Every segment has r nodes; their replicas are checked at each arc's ends and at a stride between.
      expect(asked.findIndex((nodes) => nodes.length !== r)).to.equal(-1);
      const edges = ring.tokens.flatMap((t) => [segmentOf(t.position), segmentOf(t.position) + 1]).filter((s) => s < SEGMENTS);
      for (const s of new Set([...edges, ...Array.from({ length: SEGMENTS / 61 }, (_, i) => i * 61)])) {
        expect(asked[s], `segment ${s}`).to.have.length(r);
        for (const node of asked[s]) {
          expect(natural(s)).to.include(node);
          expect(down.has(node)).to.equal(false);
        }
      }
    });
  }

  it('spreads the work over the replicas', () => {
    const plan = coveragePlan(ring, 3, 1, () => false);
    expect(plan.ok && [...plan.nodes.keys()].sort()).to.deep.equal(['a', 'b', 'c', 'd', 'e']);
  });

  it('fails, naming a segment, when a part of the ring has too few live replicas', () => {
    const plan = coveragePlan(ring, 3, 2, (id) => id === 'a' || id === 'b');
    expect(plan.ok).to.equal(false);
    if (plan.ok) return;
    expect(natural(plan.segment).filter((n) => n !== 'a' && n !== 'b')).to.have.length(plan.live);
    expect(plan.live).to.be.below(2);
    expect(coveragePlan(new Ring([]), 3, 1, () => false).ok).to.equal(false);
  });
});

describe('key listing: pages', () => {
  it('orders keys by their UTF-8 bytes, as Redis does', () => {
    // JavaScript puts U+FF21 after the surrogate pair of U+1F600; UTF-8 puts it before.
    expect(['\u{1F600}', '\uFF21', 'b', 'a'].sort(compareKeys)).to.deep.equal(['a', 'b', '\uFF21', '\u{1F600}']);
  });

  it('keeps only keys up to where every node looked, without duplicates', () => {
    const merged = mergePages(
      [
        { keys: ['a', 'c', 'e'], next: 'e' },
        { keys: ['b', 'c', 'f', 'g'], next: null },
      ],
      10,
    );
    expect(merged).to.deep.equal({ keys: ['a', 'b', 'c', 'e'], last: 'e', done: false });
    expect(mergePages([{ keys: ['a', 'b'], next: null }], 10)).to.deep.equal({ keys: ['a', 'b'], last: null, done: true });
    expect(mergePages([{ keys: ['a', 'b', 'c'], next: null }], 2)).to.deep.equal({ keys: ['a', 'b'], last: 'b', done: false });
    // A node that looked at keys but took none of them still moves the listing on.
    expect(mergePages([{ keys: [], next: 'm' }], 2)).to.deep.equal({ keys: [], last: 'm', done: false });
  });

  it('validates a listing, and its cursor belongs to its bucket and prefix', () => {
    const ok = parseKeysRequest({ prefix: 'u', cursor: encodeCursor('default', 'u', 'u9'), limit: 10 }, () => limits);
    expect(ok).to.deep.equal({ bucket: 'default', prefix: 'u', after: 'u9', limit: 10, r: 1, timeoutMs: 1000 });
    const other = parseKeysRequest({ prefix: 'v', cursor: encodeCursor('default', 'u', 'u9') }, () => limits);
    expect(other).to.deep.include({ ok: false });
    expect(parseKeysRequest({ prefix: 'x'.repeat(1025) }, () => limits)).to.deep.include({ ok: false });
    expect(parseKeysRequest([], () => limits)).to.deep.include({ ok: false });
  });
});
