import { NODE_ID } from '../config.js';
import { TREE_SHAPE } from '../merkle/index.js';
import { SEGMENTS } from '../ring/index.js';

/**
 * Anti-entropy messages, on `<p>.node.<id>.ae`, from the node running an exchange
 * (the initiator) to the peer replica it compares with. An exchange is a session on
 * the peer, opened by the first `tree` request (level 0, the root), so every later
 * answer comes from one snapshot of the peer's tree.
 *
 *   tree  {"op":"tree","x":id,"from":node,"ring":fp,"level":0}        -> {"ok":true,"h":base64}  the root; opens the session
 *   tree  {"op":"tree","x":id,"level":L,"parents":[i...]}             -> {"ok":true,"h":base64}  the children at level L of
 *                                                                      those nodes of level L-1, 16 bytes each, in order
 *   keys  {"op":"keys","x":id,"segments":[s...]}  -> {"ok":true,"keys":[[[field,hex]...]...]}  (maybe fewer segments than asked)
 *   fetch {"op":"fetch","x":id,"keys":[field...]} -> {"ok":true,"found":[<siblings>|null...]} (maybe fewer keys than asked)
 *   end   {"op":"end","x":id}                     -> {"ok":true}
 *
 * Replies are bounded in bytes by the peer (--anti-entropy-max-message-bytes); the
 * initiator asks again for what was left out. Versions go back to the peer with the
 * ordinary replica.put. Refusals carry error.reason: "busy", "ring" (the two rings
 * differ, try later) or "session" (unknown or expired exchange).
 */
export type AeRequest =
  | { readonly op: 'tree'; readonly x: string; readonly from: string; readonly ring: string; readonly level: 0 }
  | { readonly op: 'tree'; readonly x: string; readonly level: number; readonly parents: readonly number[] }
  | { readonly op: 'keys'; readonly x: string; readonly segments: readonly number[] }
  | { readonly op: 'fetch'; readonly x: string; readonly keys: readonly string[] }
  | { readonly op: 'end'; readonly x: string };

/** Items of one request, at most: tree parents, leaves whose keys are listed, keys fetched. */
export const MAX_AE_PARENTS = 1024;
export const MAX_AE_SEGMENTS = 256;
export const MAX_AE_KEYS = 256;

const EXCHANGE_ID = /^[A-Za-z0-9_.-]{1,100}$/;
const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const intList = (x: unknown, below: number, max: number): x is number[] =>
  Array.isArray(x) && x.length > 0 && x.length <= max && x.every((i) => Number.isInteger(i) && i >= 0 && i < below);

/** Parse an anti-entropy request; an error sentence for anything malformed. */
export function parseAeRequest(body: unknown, maxKeyBytes: number): AeRequest | string {
  if (!isObj(body)) return 'expected a JSON object';
  const x = body['x'];
  if (typeof x !== 'string' || !EXCHANGE_ID.test(x)) return '"x" must be an exchange id';
  switch (body['op']) {
    case 'tree': {
      const { from, ring, level, parents } = body;
      if (!Number.isInteger(level) || (level as number) < 0 || (level as number) > TREE_SHAPE.depth) return `"level" must be 0 to ${TREE_SHAPE.depth}`;
      if (level === 0) {
        if (typeof from !== 'string' || !NODE_ID.test(from)) return '"from" must be a node id';
        if (typeof ring !== 'string' || ring.length > 64) return '"ring" must be a ring fingerprint';
        return { op: 'tree', x, from, ring, level: 0 };
      }
      if (!intList(parents, TREE_SHAPE.fanout ** ((level as number) - 1), MAX_AE_PARENTS))
        return `"parents" must list 1 to ${MAX_AE_PARENTS} node indexes of the level above`;
      return { op: 'tree', x, level: level as number, parents };
    }
    case 'keys':
      if (!intList(body['segments'], SEGMENTS, MAX_AE_SEGMENTS)) return `"segments" must list 1 to ${MAX_AE_SEGMENTS} segments below ${SEGMENTS}`;
      return { op: 'keys', x, segments: body['segments'] };
    case 'fetch': {
      const keys = body['keys'];
      const ok =
        Array.isArray(keys) &&
        keys.length > 0 &&
        keys.length <= MAX_AE_KEYS &&
        keys.every((k) => typeof k === 'string' && /^[A-Za-z0-9_.-]{1,64}:./s.test(k) && Buffer.byteLength(k) <= maxKeyBytes + 65);
      if (!ok) return `"keys" must list 1 to ${MAX_AE_KEYS} "bucket:key" names`;
      return { op: 'fetch', x, keys: keys as string[] };
    }
    case 'end':
      return { op: 'end', x };
    default:
      return '"op" must be tree, keys, fetch or end';
  }
}
