import type { Ring } from '../ring/index.js';
import type { Liveness } from './failure-detector.js';
import type { MemberStatus } from './member.js';

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
  members(): MemberView[];
}
