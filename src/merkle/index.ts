export { HASH_BYTES, keyHash, xorInto, treeField, parseTreeField } from './key-hash.js';
export { MerkleTree, TREE_SHAPE, leafCount, compareTrees, diffKeys, type TreeShape, type RemoteHashes, type TreeDiff, type KeyDiff } from './tree.js';
export { sharedSegments, sharedSegmentsOf, maskShare, ringFingerprint } from './ranges.js';
export { LeafIndex } from './leaf-index.js';
