import type { Version } from './version.js';

/**
 * Last write wins: the sibling with the latest coordinator timestamp, ties broken
 * by dot so that every node picks the same one.
 */
export function lwwWinner(siblings: readonly Version[]): Version | undefined {
  let best: Version | undefined;
  for (const s of siblings) {
    if (best === undefined || s.t > best.t || (s.t === best.t && (s.d[0] > best.d[0] || (s.d[0] === best.d[0] && s.d[1] > best.d[1])))) {
      best = s;
    }
  }
  return best;
}
