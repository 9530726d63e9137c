import { NODE_ID } from '../config.js';

/**
 * Faults injected into node-to-node traffic, for tests and demos (nodes run with
 * --allow-faults). Pure: whether a message from one node to another is dropped, and
 * how long it is held.
 */
export interface FaultRules {
  /** groups that can only talk within themselves; nodes in no group talk to everyone */
  readonly partition: readonly (readonly string[])[];
  /** share of node-to-node requests dropped at random, 0..1 */
  readonly drop: number;
  /** ms added to every node-to-node request */
  readonly delayMs: number;
}

export const NO_FAULTS: FaultRules = { partition: [], drop: 0, delayMs: 0 };

/** Longest delay a fault may add. */
export const MAX_FAULT_DELAY_MS = 60_000;

export function partitioned(rules: FaultRules, from: string, to: string): boolean {
  if (from === to || rules.partition.length === 0) return false;
  const groupOf = (id: string) => rules.partition.findIndex((g) => g.includes(id));
  const a = groupOf(from);
  const b = groupOf(to);
  return a !== -1 && b !== -1 && a !== b;
}

/** Parse a faults command: {"partition":[["n1","n2"],["n3"]]}, {"drop":0.1}, {"delayMs":50}, {"heal":true}. */
export function parseFaults(body: unknown, current: FaultRules): FaultRules | string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'expected a JSON object';
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) if (!['partition', 'drop', 'delayMs', 'heal'].includes(k)) return `unknown field "${k}"`;
  if (b['heal'] === true) return NO_FAULTS;
  if (b['heal'] !== undefined) return '"heal" must be true';
  let next = current;
  if (b['partition'] !== undefined) {
    const p = b['partition'];
    if (!Array.isArray(p) || !p.every((g) => Array.isArray(g) && g.every((id) => typeof id === 'string' && NODE_ID.test(id))))
      return '"partition" must be a list of groups of node ids';
    const all = p.flat() as string[];
    if (new Set(all).size !== all.length) return 'a node may be in only one partition group';
    next = { ...next, partition: p as string[][] };
  }
  if (b['drop'] !== undefined) {
    if (typeof b['drop'] !== 'number' || !(b['drop'] >= 0 && b['drop'] <= 1)) return '"drop" must be a number from 0 to 1';
    next = { ...next, drop: b['drop'] };
  }
  if (b['delayMs'] !== undefined) {
    if (!Number.isInteger(b['delayMs']) || (b['delayMs'] as number) < 0 || (b['delayMs'] as number) > MAX_FAULT_DELAY_MS)
      return `"delayMs" must be an integer from 0 to ${MAX_FAULT_DELAY_MS}`;
    next = { ...next, delayMs: b['delayMs'] as number };
  }
  return next;
}
