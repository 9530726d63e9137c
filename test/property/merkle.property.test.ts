import { expect } from 'chai';
import fc from 'fast-check';
import {
  compareTrees,
  diffKeys,
  HASH_BYTES,
  LeafIndex,
  leafCount,
  MerkleTree,
  sharedSegments,
  treeField,
  TREE_SHAPE,
  type RemoteHashes,
} from '../../src/merkle/index.js';
import { keyPosition, Ring, segmentOf, SEGMENTS } from '../../src/ring/index.js';
import type { Version } from '../../src/versioning/index.js';

const version = (actor: string, counter: number): Version => ({ d: [actor, counter], c: {}, t: counter, v: String(counter) });

/** A replica holding `keys`, each at version `counter`. */
function replica(keys: readonly string[], counter = 1): LeafIndex {
  const index = new LeafIndex();
  for (const key of keys) index.update(segmentOf(keyPosition('b', key)), treeField('b', key), [version('n1.a', counter)]);
  return index;
}

/** The other side of a compare, answered from a tree in memory, counting what it was asked. */
function remoteOf(tree: MerkleTree): RemoteHashes {
  return async (level, indices) => indices.map((i) => tree.hash(level, i));
}

describe('Merkle trees (property)', function () {
  this.timeout(120_000);

  it('has one leaf per ring segment', () => {
    expect(leafCount(TREE_SHAPE)).to.equal(SEGMENTS);
  });

  it('finds exactly the leaves of the d changed keys, visiting at most 1 + fanout·depth·d nodes', async () => {
    const bound = (d: number) => 1 + TREE_SHAPE.fanout * TREE_SHAPE.depth * d;
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 1500 }),
        fc.array(fc.tuple(fc.nat(), fc.constantFrom('change', 'drop', 'add')), { minLength: 0, maxLength: 40 }),
        async (keys, edits) => {
          const mine = replica(keys);
          const theirs = replica(keys);
          const changed = new Set<number>();
          const touched = new Set<string>();
          for (const [pick, kind] of edits) {
            const key = kind === 'add' ? `added-${pick}` : keys[pick % keys.length]!;
            if (touched.has(key) || (kind === 'add' && keys.includes(key))) continue;
            touched.add(key);
            const segment = segmentOf(keyPosition('b', key));
            theirs.update(segment, treeField('b', key), kind === 'drop' ? [] : [version('n2.b', 7)]);
            changed.add(segment);
          }
          const local = MerkleTree.fromLeaves(mine.leaves, null);
          const diff = await compareTrees(local, remoteOf(MerkleTree.fromLeaves(theirs.leaves, null)));
          expect(diff.leaves).to.deep.equal([...changed].sort((a, b) => a - b));
          expect(diff.visited).to.be.at.most(bound(touched.size));
          // Equal replicas: the roots alone.
          if (touched.size === 0) expect(diff.visited).to.equal(1);
          expect(diff.rounds).to.be.at.most(TREE_SHAPE.depth + 1);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('ignores differences outside the compared range', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 300 }), async (keys) => {
        const mine = replica(keys);
        const theirs = replica(keys, 2);
        const segments = new Set(keys.map((k) => segmentOf(keyPosition('b', k))));
        // A range holding half of the differing segments.
        const inRange = [...segments].filter((_, i) => i % 2 === 0);
        const mask = new Uint8Array(SEGMENTS);
        for (const s of inRange) mask[s] = 1;
        const diff = await compareTrees(MerkleTree.fromLeaves(mine.leaves, mask), remoteOf(MerkleTree.fromLeaves(theirs.leaves, mask)));
        expect(diff.leaves).to.deep.equal(inRange.sort((a, b) => a - b));
      }),
      { numRuns: 30 },
    );
  });

  it('hashes a key alike whatever order its siblings were stored in', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(fc.constantFrom('n1.a', 'n2.b', 'n3.c'), fc.integer({ min: 1, max: 1e6 })), {
          minLength: 1,
          maxLength: 8,
          selector: ([a, c]) => `${a}:${c}`,
        }),
        (dots) => {
          const forward = new LeafIndex();
          const backward = new LeafIndex();
          const siblings = dots.map(([a, c]) => version(a, c));
          forward.update(5, 'b:k', siblings);
          backward.update(5, 'b:k', [...siblings].reverse());
          expect(Buffer.from(forward.leaves).equals(Buffer.from(backward.leaves))).to.equal(true);
          expect(forward.keys(5).get('b:k')).to.equal(backward.keys(5).get('b:k'));
        },
      ),
    );
  });

  it('returns a leaf to empty when its only key goes', () => {
    const index = replica(['solo']);
    const s = segmentOf(keyPosition('b', 'solo'));
    expect(Buffer.from(index.leaves.subarray(s * HASH_BYTES, (s + 1) * HASH_BYTES)).equals(Buffer.alloc(HASH_BYTES))).to.equal(false);
    index.update(s, treeField('b', 'solo'), []);
    expect(index.leaves.every((b) => b === 0)).to.equal(true);
    expect(index.keys(s).size).to.equal(0);
  });

  it('lists the keys to push and to pull between two leaves', () => {
    const d = diffKeys(
      new Map([
        ['b:same', 'aa'],
        ['b:mine', 'bb'],
        ['b:both', 'cc'],
      ]),
      new Map([
        ['b:same', 'aa'],
        ['b:theirs', 'dd'],
        ['b:both', 'ee'],
      ]),
    );
    expect(d.push.sort()).to.deep.equal(['b:both', 'b:mine']);
    expect(d.pull.sort()).to.deep.equal(['b:both', 'b:theirs']);
  });

  it('marks as shared exactly the segments whose keys both nodes replicate', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/), { minLength: 2, maxLength: 7 }),
        fc.integer({ min: 1, max: 3 }),
        fc.array(fc.string({ maxLength: 10 }), { minLength: 200, maxLength: 200 }),
        (ids, n, keys) => {
          const ring = new Ring(ids.map((id, i) => ({ id, weight: 1 + (i % 2) })));
          const [a, b] = ids as [string, string];
          const mask = sharedSegments(ring, a, b, n);
          for (const key of keys) {
            const p = keyPosition('b', key);
            const replicas = ring.walk(p, n);
            expect(mask[segmentOf(p)], key).to.equal(replicas.includes(a) && replicas.includes(b) ? 1 : 0);
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
