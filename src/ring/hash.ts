import { createHash } from 'node:crypto';

/** Ring positions are the top 48 bits of an MD5 digest: exact in a JS number, and plenty of room for tokens. */
export const RING_BITS = 48;
export const RING_SIZE = 2 ** RING_BITS;

export function ringPosition(text: string): number {
  const digest = createHash('md5').update(text).digest();
  return digest.readUIntBE(0, 6);
}

/** Where a key lands. The bucket is part of the hashed name, as in Riak, so buckets spread independently. */
export function keyPosition(bucket: string, key: string): number {
  return ringPosition(`${bucket}/${key}`);
}
