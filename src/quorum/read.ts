import { lww, type Resolver } from '../resolvers/index.js';
import { encodeContext } from '../versioning/context.js';
import { contextOf, expired, includesAll, mergeSiblings, type Version } from '../versioning/version.js';

/** The siblings a read settles on: the merge of every replica answer. */
export function reconcileReplies(replies: ReadonlyMap<string, readonly Version[]>): Version[] {
  let merged: Version[] = [];
  for (const versions of replies.values()) merged = mergeSiblings(merged, versions);
  return merged;
}

/** Which versions each answering replica lacks (read repair). */
export function planReadRepair(replies: ReadonlyMap<string, readonly Version[]>, merged: readonly Version[]): Map<string, Version[]> {
  const plan = new Map<string, Version[]>();
  for (const [node, held] of replies) {
    if (includesAll(held, merged)) continue;
    plan.set(
      node,
      merged.filter((m) => !includesAll(held, [m])),
    );
  }
  return plan;
}

/**
 * The client's reply to a get, as the bucket's resolver settles the siblings. Built
 * as text so the stored values' JSON goes out without being parsed and re-encoded.
 * The context covers every sibling, so a put with it supersedes them all. Throws
 * when an application resolver throws. A version expired at `now` reads as a tombstone.
 */
export function getReplyText(merged: readonly Version[], resolver: Resolver = lww, now = Date.now()): string {
  // Expired versions read as tombstones of their dots: gone, whatever the resolver.
  const r = resolver.read(expired(merged, now));
  if (!r.found) return '{"ok":true,"found":false,"values":[],"context":null}';
  return `{"ok":true,"found":true,"values":[${r.values.join(',')}],"context":${JSON.stringify(encodeContext(contextOf(merged)))}}`;
}
