import type { Ring } from '../ring/index.js';
import type { Liveness } from './failure-detector.js';
import type { Member, MemberStatus } from './member.js';

/** One member as this node sees it: what it says it is doing, and whether we hear from it. */
export interface MemberView {
  readonly id: string;
  readonly status: MemberStatus;
  readonly liveness: Liveness;
  readonly weight: number;
  readonly ringWeight: number;
  readonly generation: number;
  readonly heartbeat: number;
  /** ms since its heartbeat last advanced in our view (0 for ourselves) */
  readonly heartbeatAgeMs: number;
}

/**
 * A member's state in one word, as status and metrics report it: what it says it is
 * doing (joining, up, leaving, ...) while this node hears from it or once it has left,
 * else this node's judgement of it (suspect, down).
 */
export function memberState(m: Pick<MemberView, 'status' | 'liveness'>): string {
  return m.liveness === 'alive' || m.status === 'left' ? m.status : m.liveness;
}

/**
 * Who is in the cluster and what the ring looks like, as the gossiper sees it now.
 * Reads are synchronous and cheap: the request path calls them on every request.
 */
export interface Membership {
  readonly self: string;
  /** the ring now: members holding a weight */
  ring(): Ring;
  /** the ring once joins, leaves and weight changes in progress complete; null when none are */
  futureRing(): Ring | null;
  isDown(id: string): boolean;
  /** ms since this node last heard from `id` (0 for itself, Infinity for a member never heard from) */
  silentForMs(id: string): number;
  members(): MemberView[];
}

/**
 * What the node's own actors need of membership beyond the request path: the raw
 * table, and changing this node's entry. The gossiper provides it in its process;
 * a process of the same node without the gossiper follows it over NATS.
 */
export interface NodeMembership extends Membership {
  table(): Member[];
  entry(id: string): Member | undefined;
  /** gossip counters (rounds, exchanges, drops), as the gossiper counts them */
  readonly metrics: object;
  /** change this node's wanted and ring weights (joins, leaves, weight changes) */
  setWeights(weight: number, ringWeight: number): Promise<void>;
  /** an operator's removal of a member down for good (src/membership/removal.ts), spread at once */
  removeMember(id: string): Promise<void>;
  /** push the table to every live member now; resolves to how many did not answer */
  announceToAll(): Promise<number>;
}
