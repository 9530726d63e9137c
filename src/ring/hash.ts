import { hash } from 'node:crypto';

/** Ring positions are the top 48 bits of an MD5 digest: exact in a JS number, and plenty of room for tokens. */
export const RING_BITS = 48;
export const RING_SIZE = 2 ** RING_BITS;

/**
 * The hash space is cut into 2^16 equal segments. Tokens sit at the last position of
 * a segment, so a segment never straddles two arcs: every key in it has the same
 * replicas. Anti-entropy trees use segments as their leaves.
 */
export const SEGMENT_BITS = 16;
export const SEGMENTS = 2 ** SEGMENT_BITS;
const SEGMENT_SIZE = RING_SIZE / SEGMENTS;

export function segmentOf(position: number): number {
  return Math.floor(position / SEGMENT_SIZE);
}

/** The last ring position of a segment: where a token in it is placed. */
export function segmentEnd(segment: number): number {
  return segment * SEGMENT_SIZE + SEGMENT_SIZE - 1;
}

export function ringPosition(text: string): number {
  // One-shot hash: no Hash object per call (every request hashes its key two or three times).
  // Hex text and parseInt, not a Buffer: 1.1 µs a key against 2.2 here, the same 48 bits.
  return Number.parseInt(hash('md5', text, 'hex').slice(0, RING_BITS / 4), 16);
}

/** Where a key lands. The bucket is part of the hashed name, as in Riak, so buckets spread independently. */
export function keyPosition(bucket: string, key: string): number {
  return ringPosition(`${bucket}/${key}`);
}
