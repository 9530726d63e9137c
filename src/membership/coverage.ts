import { type Ring, SEGMENTS, segmentEnd, segmentOf } from '../ring/index.js';

/** Inclusive runs of segments, [first, last], in ascending order. */
export type SegmentRuns = [number, number][];

/** Which nodes to ask, and for which segments, so that every part of the ring is asked of `r` of its live replicas. */
export type CoveragePlan = { ok: true; nodes: Map<string, SegmentRuns> } | { ok: false; segment: number; live: number };

/**
 * A coverage plan, as Riak's coverage queries make one: for each arc of the ring
 * (the segments up to a token, whose keys share one preference list), `r` of the
 * live nodes among its first `n`. Fallbacks hold hints, not data, so they are never
 * asked. The choice rotates with the arc, so that the work spreads over the
 * replicas. Fails, naming a segment, when an arc has fewer than `r` live replicas.
 */
export function coveragePlan(ring: Ring, n: number, r: number, isDown: (id: string) => boolean): CoveragePlan {
  const nodes = new Map<string, SegmentRuns>();
  const tokens = ring.tokens;
  if (tokens.length === 0) return { ok: false, segment: 0, live: 0 };
  const add = (node: string, first: number, last: number) => {
    let runs = nodes.get(node);
    if (runs === undefined) {
      runs = [];
      nodes.set(node, runs);
    }
    const tail = runs[runs.length - 1];
    if (tail !== undefined && tail[1] + 1 === first) tail[1] = last;
    else runs.push([first, last]);
  };
  // Arc i holds the segments after token i-1's, up to and including token i's. The segments past
  // the last token wrap round to the first token, so they join the first arc.
  const arcs: { runs: SegmentRuns; live: string[] }[] = [];
  let prev = -1;
  for (const t of tokens) {
    const seg = segmentOf(t.position);
    if (seg === prev) continue; // tokens in one segment: the first of them owns it
    const natural: string[] = [];
    for (const node of ring.nodesFrom(segmentEnd(seg))) {
      if (natural.length === n) break;
      natural.push(node);
    }
    const live = natural.filter((node) => !isDown(node));
    if (live.length < r) return { ok: false, segment: seg, live: live.length };
    arcs.push({ runs: [[prev + 1, seg]], live });
    prev = seg;
  }
  if (prev < SEGMENTS - 1) arcs[0].runs.push([prev + 1, SEGMENTS - 1]);
  arcs.forEach((arc, i) => {
    for (let k = 0; k < r; k++) {
      const node = arc.live[(i + k) % arc.live.length];
      for (const [first, last] of arc.runs) add(node, first, last);
    }
  });
  for (const runs of nodes.values()) runs.sort((a, b) => a[0] - b[0]);
  return { ok: true, nodes };
}

/** The segments of `runs` as a lookup table (one byte per segment). */
export function segmentTable(runs: SegmentRuns): Uint8Array {
  const table = new Uint8Array(SEGMENTS);
  for (const [first, last] of runs) table.fill(1, first, last + 1);
  return table;
}
