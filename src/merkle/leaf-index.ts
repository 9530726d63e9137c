import { SEGMENTS } from '../ring/index.js';
import type { Version } from '../versioning/index.js';
import { HASH_BYTES, keyHash, xorInto } from './key-hash.js';

/**
 * The tree state of one replica, kept in memory: each segment's leaf hash and the
 * per-key hashes under it. The Redis store keeps the same two things in Redis
 * (redis-scripts.ts); this one serves MemoryStorage and the tests that hold the two
 * to the same bytes.
 */
export class LeafIndex {
  readonly leaves = new Uint8Array(SEGMENTS * HASH_BYTES);
  private readonly segments = new Map<number, Map<string, string>>();

  /** Record what a key holds now (no siblings: the key is gone). */
  update(segment: number, field: string, siblings: readonly Version[]): void {
    const keys = this.segments.get(segment) ?? new Map<string, string>();
    const old = keys.get(field);
    const now = siblings.length === 0 ? undefined : keyHash(field, siblings).toString('hex');
    if (old === now) return;
    if (old !== undefined) xorInto(this.leaves, segment * HASH_BYTES, Buffer.from(old, 'hex'));
    if (now !== undefined) {
      xorInto(this.leaves, segment * HASH_BYTES, Buffer.from(now, 'hex'));
      keys.set(field, now);
      this.segments.set(segment, keys);
    } else {
      keys.delete(field);
      if (keys.size === 0) this.segments.delete(segment);
    }
  }

  keys(segment: number): Map<string, string> {
    return new Map(this.segments.get(segment) ?? []);
  }
}
