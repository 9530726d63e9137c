import { encodeContext } from '../versioning/context.js';
import { lwwWinner } from '../versioning/resolve.js';
import { contextOf, includesAll, isTombstone, mergeSiblings, type Version } from '../versioning/version.js';

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
 * The client's reply to a get, resolved last-write-wins. Built as text so the stored
 * value's JSON goes out without being parsed and re-encoded.
 */
export function getReplyText(merged: readonly Version[]): string {
  const winner = lwwWinner(merged);
  if (winner === undefined || isTombstone(winner)) return '{"ok":true,"found":false,"values":[],"context":null}';
  return `{"ok":true,"found":true,"values":[${winner.v}],"context":${JSON.stringify(encodeContext(contextOf(merged)))}}`;
}
