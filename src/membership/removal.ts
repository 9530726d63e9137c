import { Ring, SEGMENTS, segmentEnd, segmentOf } from '../ring/index.js';
import { currentRingMembers, type Member, type MemberTable } from './member.js';

/**
 * How far a removal moves a member's heartbeat ahead: far beyond any heartbeat the dead
 * member could still have in flight, so the removal wins over every copy of its old entry.
 */
export const REMOVAL_HEARTBEAT_STEP = 1_000_000_000;

/**
 * A member's entry once an operator removed it for good: out of the ring (weights 0), so
 * it reads as `left`. The one entry a member does not change itself. If the member starts
 * again, its new generation wins and it joins as it would after any restart.
 */
export function removedEntry(m: Member): Member {
  return { ...m, weight: 0, ringWeight: 0, heartbeat: m.heartbeat + REMOVAL_HEARTBEAT_STEP };
}

/**
 * Why `id` may not be removed, or null when it may: it must be a member of the ring that
 * is down (a live member leaves with `dynamo leave`, which hands its ranges over), and
 * every range must keep a live replica that holds its data once it is gone.
 */
export function removalRefusal(table: MemberTable, id: string, n: number, isDown: (id: string) => boolean): string | null {
  const m = table[id];
  if (m === undefined) return `${id} is not a member of this cluster`;
  if (m.ringWeight === 0 && m.weight === 0) return `${id} has already left the ring`;
  if (!isDown(id)) return `${id} is not down: a live node leaves with "dynamo leave ${id}", which hands its ranges over first`;
  const ring = new Ring(currentRingMembers(table));
  // Every arc's data is on its natural replicas: some live one other than `id` must hold it.
  let prev = -1;
  for (const t of ring.tokens) {
    const seg = segmentOf(t.position);
    if (seg === prev) continue;
    prev = seg;
    const holders = ring.walk(segmentEnd(seg), n).filter((node) => node !== id && !isDown(node));
    if (holders.length === 0) return `removing ${id} would leave segment ${seg} of the ring with no live replica holding its data`;
  }
  if (prev < 0 || prev >= SEGMENTS) return `${id} is the ring's only member`;
  return null;
}
