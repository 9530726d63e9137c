import { hash } from 'node:crypto';
import type { Version } from '../versioning/index.js';

/** Bytes of every hash in an anti-entropy tree: a key's, a leaf's, an inner node's. */
export const HASH_BYTES = 16;

/**
 * The name of a key in the tree's per-segment index: `bucket:key` (bucket names
 * cannot hold ':', so the first ':' splits it).
 */
export function treeField(bucket: string, key: string): string {
  return `${bucket}:${key}`;
}

export function parseTreeField(field: string): { bucket: string; key: string } {
  const colon = field.indexOf(':');
  return { bucket: field.slice(0, colon), key: field.slice(colon + 1) };
}

/**
 * What a replica holds for a key, as 16 bytes: the XOR over its siblings of
 * SHA-1(`field\n node:counter`), truncated. A dot names one write, so two replicas
 * hash a key alike exactly when they hold the same versions, in whatever order
 * they stored them. XOR keeps it order-free and lets a leaf be updated in place.
 * The Redis scripts compute the same bytes (redis-scripts.ts).
 */
export function keyHash(field: string, siblings: readonly Version[]): Buffer {
  const out = Buffer.alloc(HASH_BYTES);
  for (const s of siblings) {
    const h = hash('sha1', `${field}\n${s.d[0]}:${s.d[1]}`, 'buffer');
    for (let i = 0; i < HASH_BYTES; i++) out[i] ^= h[i];
  }
  return out;
}

/** XOR `hash` into `target` at byte `offset`. */
export function xorInto(target: Uint8Array, offset: number, hash: Uint8Array): void {
  for (let i = 0; i < HASH_BYTES; i++) target[offset + i] ^= hash[i];
}
