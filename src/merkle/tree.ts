import { HASH_BYTES } from './key-hash.js';

/** A tree's fixed shape: `fanout ** depth` leaves under one root. */
export interface TreeShape {
  readonly fanout: number;
  readonly depth: number;
}

/** 16^4 = 65,536 leaves, one per ring segment; a compare takes five round trips at most. */
export const TREE_SHAPE: TreeShape = { fanout: 16, depth: 4 };

export function leafCount(shape: TreeShape): number {
  return shape.fanout ** shape.depth;
}

const WORDS = HASH_BYTES / 4;

/**
 * A Merkle tree over the leaf hashes of one replica, restricted to the segments of a
 * range (other leaves count as empty). Leaves are XORs of key hashes, and so is every
 * inner node of its children: the tree is built from the leaves in one pass.
 * Level 0 is the root; level `depth` holds the leaves.
 */
export class MerkleTree {
  private readonly levels: Uint32Array[];

  private constructor(
    readonly shape: TreeShape,
    levels: Uint32Array[],
  ) {
    this.levels = levels;
  }

  /** `leaves`: leafCount × 16 bytes (shorter counts as zero-padded); `mask`: 1 where a leaf belongs to the range. */
  static fromLeaves(leaves: Uint8Array, mask: Uint8Array | null, shape: TreeShape = TREE_SHAPE): MerkleTree {
    const count = leafCount(shape);
    if (mask !== null && mask.length !== count) throw new RangeError(`mask has ${mask.length} entries, the tree ${count} leaves`);
    const bottom = new Uint32Array(count * WORDS);
    // Copy into aligned words; a masked-out leaf stays zero.
    const bytes = new Uint8Array(bottom.buffer);
    const usable = Math.min(leaves.length, count * HASH_BYTES);
    if (mask === null) bytes.set(leaves.subarray(0, usable));
    else
      for (let leaf = 0; leaf < count && leaf * HASH_BYTES < usable; leaf++)
        if (mask[leaf]) bytes.set(leaves.subarray(leaf * HASH_BYTES, (leaf + 1) * HASH_BYTES), leaf * HASH_BYTES);
    const levels: Uint32Array[] = [bottom];
    for (let d = shape.depth - 1; d >= 0; d--) {
      const below = levels[0];
      const level = new Uint32Array(shape.fanout ** d * WORDS);
      for (let child = 0; child < below.length / WORDS; child++) {
        const parent = Math.floor(child / shape.fanout) * WORDS;
        for (let w = 0; w < WORDS; w++) level[parent + w] ^= below[child * WORDS + w];
      }
      levels.unshift(level);
    }
    return new MerkleTree(shape, levels);
  }

  /** The hash of node `index` of `level`, as 32 hex characters. */
  hash(level: number, index: number): string {
    const words = this.levels[level];
    if (words === undefined || index < 0 || index * WORDS >= words.length) throw new RangeError(`no node ${index} at level ${level}`);
    return Buffer.from(words.buffer, index * HASH_BYTES, HASH_BYTES).toString('hex');
  }

  /** The children of `parent` (a node of `level - 1`), their hashes back to back. */
  childBytes(level: number, parent: number): Uint8Array {
    const words = this.levels[level];
    const { fanout } = this.shape;
    if (words === undefined || level === 0 || parent < 0 || (parent + 1) * fanout * WORDS > words.length)
      throw new RangeError(`no children of ${parent} at level ${level}`);
    return new Uint8Array(words.buffer, parent * fanout * HASH_BYTES, fanout * HASH_BYTES);
  }

  get root(): string {
    return this.hash(0, 0);
  }
}

/** Fetches the hashes of nodes of one level of the other replica's tree, in order. */
export type RemoteHashes = (level: number, indices: readonly number[]) => Promise<readonly string[]>;

export interface TreeDiff {
  /** leaves whose hashes differ, ascending */
  readonly leaves: number[];
  /** remote tree nodes compared (the cost of the exchange) */
  readonly visited: number;
  /** requests made to the other replica */
  readonly rounds: number;
}

/**
 * Compare a local tree with a remote one from the root down, asking the remote side
 * only for the children of nodes that differ: equal subtrees are never visited.
 * With d differing leaves it visits at most 1 + fanout · depth · d nodes.
 */
export async function compareTrees(local: MerkleTree, remote: RemoteHashes): Promise<TreeDiff> {
  const { fanout, depth } = local.shape;
  let differing = [0];
  let visited = 0;
  let rounds = 0;
  for (let level = 0; level <= depth && differing.length > 0; level++) {
    const asked = level === 0 ? [0] : differing.flatMap((parent) => Array.from({ length: fanout }, (_, i) => parent * fanout + i));
    const theirs = await remote(level, asked);
    rounds++;
    if (theirs.length !== asked.length) throw new Error(`asked for ${asked.length} tree nodes, got ${theirs.length}`);
    visited += asked.length;
    differing = asked.filter((index, i) => theirs[i] !== local.hash(level, index));
  }
  return { leaves: differing, visited, rounds };
}

export interface KeyDiff {
  /** keys only the local replica holds, or holds in another version */
  readonly push: string[];
  /** keys only the remote replica holds, or holds in another version */
  readonly pull: string[];
}

/** The keys two replicas hold differently, from their per-key hashes of the same leaves. */
export function diffKeys(mine: ReadonlyMap<string, string>, theirs: ReadonlyMap<string, string>): KeyDiff {
  const push: string[] = [];
  const pull: string[] = [];
  for (const [field, hash] of mine) {
    const other = theirs.get(field);
    if (other !== hash) push.push(field);
    if (other !== undefined && other !== hash) pull.push(field);
  }
  for (const field of theirs.keys()) if (!mine.has(field)) pull.push(field);
  return { push, pull };
}
