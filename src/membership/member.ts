import { NODE_ID } from '../config.js';
import { MAX_WEIGHT, type RingMember } from '../ring/index.js';

/**
 * One member's entry in the gossiped table. Only the member itself changes its
 * entry, and every change bumps its heartbeat, so (generation, heartbeat) orders
 * every version of an entry. Tokens are not carried: they are MD5(`id#i`) for
 * i < 256 x weight, so every node derives the same ring from ids and weights.
 */
export interface Member {
  readonly id: string;
  /** new on every start of the member's process (its start time in ms) */
  readonly generation: number;
  /** advanced by the member every gossip round and on every change */
  readonly heartbeat: number;
  /** the weight the member wants; 0 once it leaves */
  readonly weight: number;
  /** the weight it holds in the ring now; 0 until its join has streamed its ranges */
  readonly ringWeight: number;
}

export type MemberTable = Readonly<Record<string, Member>>;

/** What a member is doing, from its own entry. Liveness (down, suspect) is each observer's own judgement. */
export type MemberStatus = 'joining' | 'up' | 'rebalancing' | 'leaving' | 'left';

export function statusOf(m: Member): MemberStatus {
  if (m.ringWeight === 0) return m.weight === 0 ? 'left' : 'joining';
  if (m.weight === 0) return 'leaving';
  return m.weight === m.ringWeight ? 'up' : 'rebalancing';
}

/** True when `a` is a later version of the same member's entry than `b`. */
export function isNewer(a: Member, b: Member): boolean {
  return a.generation > b.generation || (a.generation === b.generation && a.heartbeat > b.heartbeat);
}

export interface Reconciled {
  readonly table: MemberTable;
  /** ids whose entry advanced (heartbeat or generation moved) */
  readonly advanced: readonly string[];
}

/**
 * Merge a peer's table into ours: per member, the newer entry wins. Our own entry
 * is never taken from a peer: only we change it.
 */
export function reconcile(local: MemberTable, remote: readonly Member[], self: string): Reconciled {
  let table: Record<string, Member> | undefined;
  const advanced: string[] = [];
  for (const r of remote) {
    if (r.id === self) continue;
    const l = local[r.id];
    if (l !== undefined && !isNewer(r, l)) continue;
    table ??= { ...local };
    table[r.id] = r;
    advanced.push(r.id);
  }
  return { table: table ?? local, advanced };
}

/** Members in the ring now: those holding a weight. */
export function currentRingMembers(table: MemberTable): RingMember[] {
  return Object.values(table)
    .filter((m) => m.ringWeight > 0)
    .map((m) => ({ id: m.id, weight: m.ringWeight }));
}

/** Members of the ring once every join, leave and weight change in progress completes. */
export function futureRingMembers(table: MemberTable): RingMember[] {
  return Object.values(table)
    .filter((m) => m.weight > 0)
    .map((m) => ({ id: m.id, weight: m.weight }));
}

export function inTransition(table: MemberTable): boolean {
  return Object.values(table).some((m) => m.weight !== m.ringWeight);
}

/** Largest table a gossip message may carry. */
export const MAX_MEMBERS = 1024;

const isCount = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
const isWeight = (x: unknown): x is number => typeof x === 'number' && x >= 0 && x <= MAX_WEIGHT;

export function isMember(x: unknown): x is Member {
  if (typeof x !== 'object' || x === null) return false;
  const m = x as Record<string, unknown>;
  return (
    typeof m['id'] === 'string' &&
    NODE_ID.test(m['id']) &&
    isCount(m['generation']) &&
    isCount(m['heartbeat']) &&
    isWeight(m['weight']) &&
    isWeight(m['ringWeight'])
  );
}
