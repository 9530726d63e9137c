import type { VClock, Version } from '../versioning/index.js';

/** What the coordinator asks of the local replica when it starts a write. */
export interface CoordinatedWrite {
  readonly bucket: string;
  readonly key: string;
  /** the client's causal context (already pruned) */
  readonly context: VClock;
  /** the coordinating node, which owns the new dot */
  readonly node: string;
  readonly ts: number;
  /** JSON text of the value; undefined writes a tombstone */
  readonly value: string | undefined;
}

/**
 * A node's local replica store. Every write is a merge: concurrent versions are
 * kept as siblings, obsolete ones dropped, and a replayed write is a no-op.
 */
export interface Storage {
  /** The key's siblings, or [] when the key was never written. */
  read(bucket: string, key: string): Promise<Version[]>;
  /** The same, as the stored JSON array text (null when absent), for replies that pass it on unparsed. */
  readRaw(bucket: string, key: string): Promise<string | null>;
  /** Merge a version written elsewhere; resolves true when it changed what is stored. */
  apply(bucket: string, key: string, version: Version): Promise<boolean>;
  /**
   * Create a new version with a fresh dot of `write.node`, merge it locally, and
   * return it (as an object and as the JSON text to send to the other replicas),
   * all in one atomic step so concurrent writes get distinct dots.
   */
  coordinate(write: CoordinatedWrite): Promise<{ version: Version; text: string }>;
  /** Connect and check the store answers; rejects with StorageError. */
  connect(): Promise<void>;
  /** Number of keys held (tombstones included). */
  keyCount(): Promise<number>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Redis key of a data item. Bucket names cannot contain ':', so the split is unambiguous. */
export function dataKey(bucket: string, key: string): string {
  return `v:${bucket}:${key}`;
}
