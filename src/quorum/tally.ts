/**
 * A quorum tally: how many of `total` replicas answered, and whether `needed`
 * successes have been reached or can no longer be. Pure and immutable, so the
 * coordinator machine keeps it in its context.
 */
export interface Tally {
  readonly needed: number;
  readonly total: number;
  readonly acks: number;
  readonly failures: number;
  /** replica ids that answered successfully, in order */
  readonly ackedBy: readonly string[];
  readonly failedBy: readonly string[];
}

export type TallyStatus = 'pending' | 'met' | 'failed';

export function createTally(needed: number, total: number): Tally {
  if (!Number.isInteger(needed) || !Number.isInteger(total) || needed < 1 || total < needed) {
    throw new RangeError(`a quorum of ${needed} out of ${total} replicas is impossible`);
  }
  return { needed, total, acks: 0, failures: 0, ackedBy: [], failedBy: [] };
}

function answered(t: Tally, replica: string): boolean {
  return t.ackedBy.includes(replica) || t.failedBy.includes(replica);
}

/** Count a success; a second answer from the same replica is ignored. */
export function addAck(t: Tally, replica: string): Tally {
  if (answered(t, replica) || t.acks + t.failures >= t.total) return t;
  return { ...t, acks: t.acks + 1, ackedBy: [...t.ackedBy, replica] };
}

export function addFailure(t: Tally, replica: string): Tally {
  if (answered(t, replica) || t.acks + t.failures >= t.total) return t;
  return { ...t, failures: t.failures + 1, failedBy: [...t.failedBy, replica] };
}

/** `failed` as soon as the outstanding replicas could no longer make up the quorum. */
export function status(t: Tally): TallyStatus {
  if (t.acks >= t.needed) return 'met';
  if (t.acks + (t.total - t.acks - t.failures) < t.needed) return 'failed';
  return 'pending';
}

export function allAnswered(t: Tally): boolean {
  return t.acks + t.failures >= t.total;
}
