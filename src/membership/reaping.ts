import type { MemberView } from './membership.js';

/**
 * The rules of tombstone reaping, free of I/O (actors/node/tombstones.ts does the I/O).
 *
 * A key that holds only tombstones may be forgotten once nothing anywhere can bring an
 * older version of it back. That is when:
 * - its tombstones are older than the bucket's grace (tombstoneGraceMs);
 * - every other natural replica of the key was compared in sync with this one, by an
 *   anti-entropy exchange that this node started after the key last changed here, on
 *   the ring as it is now: so each holds the tombstones, or something newer;
 * - every member of the ring is up, and every member this node hears from (in the ring
 *   or not: a node that left may keep old copies) drops its own copy and its hints of
 *   the key once they hold nothing the tombstones do not cover.
 * Only the key's first natural replica reaps it, so the work is done once.
 *
 * A member that is down or silent holds reaping up rather than missing it, however long it
 * is away. Only a node out of the ring can miss a reap: one that left, or that an operator
 * removed; started again with its old store, it starts empty (DynamoNode). A member away
 * longer than the grace (Cassandra's gc_grace rule) serves no reads until anti-entropy has
 * compared its ranges with every live peer (awayRepairPending): its stale versions cannot
 * come back, but reads through it would be stale for longer than the grace.
 */

/** The record an anti-entropy exchange leaves when it finished with the trees brought in sync. */
export interface SyncRecord {
  /** the store's clock when this node read its tree for the exchange */
  readonly at: number;
  /** the ring (and n) the exchange compared ranges on: ringFingerprint */
  readonly ring: string;
}

/** Where a node keeps its record of the last in-sync exchange with `peer` (node-local meta). */
export const syncedMetaName = (peer: string): string => `ae-synced:${peer}`;

export function syncedText(r: SyncRecord): string {
  return JSON.stringify(r);
}

export function parseSynced(text: string | null): SyncRecord | null {
  if (text === null) return null;
  try {
    const r = JSON.parse(text) as Record<string, unknown>;
    return Number.isSafeInteger(r['at']) && typeof r['ring'] === 'string' ? { at: r['at'] as number, ring: r['ring'] as string } : null;
  } catch {
    return null;
  }
}

/** Why the cluster cannot reap anything now (a member down, the ring changing), or null. */
export function clusterBlocker(ringMembers: readonly string[], isDown: (id: string) => boolean, ringChanging: boolean): string | null {
  if (ringChanging) return 'the ring is changing (a join, leave or weight change is under way)';
  const down = ringMembers.filter(isDown);
  if (down.length > 0) return `${down.join(', ')} ${down.length === 1 ? 'is' : 'are'} down: tombstones wait for every member (remove a node dead for good)`;
  return null;
}

/**
 * Why this node may not reap a key now, or null when it may: `replicas` are the key's
 * natural replicas on the current ring (`ring` its fingerprint), `changedAt` when the key
 * last changed here, `graceMs` its bucket's grace, `now` the store's clock.
 */
export function keyBlocker(
  self: string,
  replicas: readonly string[],
  changedAt: number,
  graceMs: number,
  now: number,
  ring: string,
  synced: (peer: string) => SyncRecord | null,
): 'not first replica' | 'in grace' | `not yet in sync with ${string}` | null {
  if (replicas[0] !== self) return 'not first replica';
  if (graceMs <= 0 || now - changedAt < graceMs) return 'in grace';
  for (const peer of replicas.slice(1)) {
    const s = synced(peer);
    if (s === null || s.ring !== ring || s.at <= changedAt) return `not yet in sync with ${peer}`;
  }
  return null;
}

/** The members a reap is asked of: every one this node hears from but itself (left members included). */
export function reapAudience(self: string, members: readonly MemberView[]): string[] {
  return members.filter((m) => m.id !== self && m.liveness !== 'down').map((m) => m.id);
}

/** What a member did with its copy and hints of a key a reap asked about. */
export type ReapOutcome = 'dropped' | 'absent' | 'kept';

/** The shortest grace in force (ms; 0 when nothing is ever reaped): the node's, and any bucket's own. */
export function shortestGrace(nodeGraceMs: number, bucketGraces: readonly (number | undefined)[]): number {
  const all = [nodeGraceMs, ...bucketGraces.filter((g): g is number => g !== undefined)].filter((g) => g > 0);
  return all.length === 0 ? 0 : Math.min(...all);
}

/** Where a node records when its store was last alive (the reaper's pass writes it every second). */
export const ALIVE_META = 'alive-at';
/** Where a node away longer than the grace records since when (store clock) it repairs before serving reads. */
export const AWAY_REPAIR_META = 'away-repair-since';

/** A store last alive at `aliveAt` (null: never recorded) was away longer than the shortest grace. */
export function awayLongerThanGrace(aliveAt: number | null, now: number, graceMs: number): boolean {
  return aliveAt !== null && graceMs > 0 && now - aliveAt > graceMs;
}

/**
 * The live peers a node back from a long absence (repairing since `since`) has yet to
 * finish an in-sync (or fully repaired) anti-entropy exchange with, after `since`: the
 * node serves reads again once none is left.
 */
export function awayRepairPending(peers: readonly string[], since: number, synced: (peer: string) => SyncRecord | null): string[] {
  return peers.filter((p) => (synced(p)?.at ?? -1) < since);
}
