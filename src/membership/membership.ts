import { Ring, type RingMember } from '../ring/index.js';

/**
 * Who is in the cluster and what the ring looks like. The static view here comes
 * from configuration; the gossiper will own a live one behind the same interface.
 */
export interface Membership {
  readonly self: string;
  members(): readonly RingMember[];
  ring(): Ring;
}

export class StaticMembership implements Membership {
  private readonly theRing: Ring;

  constructor(
    readonly self: string,
    members: readonly RingMember[],
  ) {
    if (!members.some((m) => m.id === self)) throw new Error(`member list does not include this node (${self})`);
    this.theRing = new Ring(members);
  }

  members(): readonly RingMember[] {
    return this.theRing.members;
  }

  ring(): Ring {
    return this.theRing;
  }
}
