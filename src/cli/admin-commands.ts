import { UsageError } from '../errors.js';
import { progressLine } from './progress.js';
import { subjects, type Subjects } from '../protocol/subjects.js';
import type { Transport } from '../transport/transport.js';
import { simulatePlacement } from '../ring/simulate.js';
import { TransportError } from '../errors.js';
import { decodeJson } from '../transport/transport.js';
import type { MemberStatus, PingReply } from '../../actors/node/admin-server.js';
import { intFlag, NATS_SECURITY_OPTIONS, requiredIntFlag, type OptionSpecs } from './args.js';
import { table, withCluster, type Outcome } from './client-commands.js';
import { planChange } from '../membership/plan.js';
import { MAX_WEIGHT, type RingMember } from '../ring/index.js';

export const LEAVE_OPTIONS: OptionSpecs = {
  nats: { type: 'string', help: 'NATS URL of the cluster' },
  ...NATS_SECURITY_OPTIONS,
  prefix: { type: 'string', help: 'subject prefix (default: dynamo)' },
};

export const FAULTS_OPTIONS: OptionSpecs = LEAVE_OPTIONS;

export const RING_OPTIONS: OptionSpecs = {
  nodes: { type: 'string', help: 'nodes in the simulation', default: '10' },
  keys: { type: 'string', help: 'keys in the simulation', default: '100000' },
  vnodes: { type: 'string', help: 'virtual nodes per node for the ring with virtual nodes', default: '128' },
  json: { type: 'boolean', help: 'print JSON instead of a table' },
};

const POLL_MS = 250;

/** `dynamo leave NODE`: ask the node to hand its ranges over and leave, showing the transfer as it runs. */
export async function leaveCommand(positionals: string[], values: Record<string, unknown>): Promise<Outcome> {
  if (positionals.length !== 1) throw new UsageError('usage: dynamo leave NODE');
  const node = positionals[0];
  return withCluster(values, async (t, prefix) => {
    const s = subjects(prefix);
    const reply = decodeJson<{ ok: boolean; keys?: number; error?: { message: string } }>(await t.request(s.leave(node), '', 5000));
    if (!reply.ok) return { out: `dynamo leave: ${reply.error?.message ?? 'refused'}`, code: 1 };
    const progress = progressLine();
    let moved = 0;
    for (;;) {
      let ping: PingReply;
      try {
        ping = decodeJson<PingReply>(await t.request(s.ping(node), '', 2000));
      } catch (e) {
        if (e instanceof TransportError && e.kind === 'no-responders') break;
        throw e;
      }
      if (ping.state === 'stopping' || ping.state === 'stopped') break;
      if (ping.state !== 'leaving') return { out: `dynamo leave: ${node} is ${ping.state} again; the leave failed (see its log)`, code: 1 };
      const p = ping.transfer;
      if (p) {
        moved = p.moved;
        progress.show(p.phase, p.done, p.total);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    progress.end();
    return { out: `${node} left the cluster (${moved} keys handed over)`, code: 0 };
  });
}

/** How long `dynamo remove` follows the re-replication before it says to watch `dynamo status`. */
const REMOVE_WAIT_MS = 10 * 60_000;

/**
 * `dynamo remove NODE`: take a node that is down for good out of the ring, then follow
 * anti-entropy as it streams the node's ranges to the nodes that gain them: done when
 * every range of every live member has been compared in sync since the removal.
 */
export async function removeCommand(positionals: string[], values: Record<string, unknown>): Promise<Outcome> {
  if (positionals.length !== 1) throw new UsageError('usage: dynamo remove NODE');
  return withCluster(values, (t, prefix) => removeAndFollow(t, subjects(prefix), positionals[0] as string));
}

/**
 * `dynamo replace OLD NEW`: NEW (started with `dynamo node --id NEW --seeds ...`) joins and
 * pulls its share of the ring from the live replicas, then OLD, down for good, is removed and
 * its ranges re-replicate. (To keep OLD's exact place in the ring, start the new machine as
 * `--id OLD` with an empty Redis instead: it joins in OLD's tokens.)
 */
export async function replaceCommand(positionals: string[], values: Record<string, unknown>): Promise<Outcome> {
  if (positionals.length !== 2) throw new UsageError('usage: dynamo replace OLD NEW');
  const [old, fresh] = positionals as [string, string];
  if (old === fresh) throw new UsageError('OLD and NEW must differ: to reuse the id, start the new node as --id OLD with an empty Redis');
  return withCluster(values, async (t, prefix) => {
    const s = subjects(prefix);
    const status = decodeJson<{ ok: boolean; members: MemberStatus[] }>(await t.request(s.status, '', 5000));
    const oldMember = status.members.find((m) => m.id === old);
    if (oldMember === undefined) return { out: `dynamo replace: ${old} is not a member of this cluster`, code: 1 };
    if (oldMember.state !== 'down')
      return { out: `dynamo replace: ${old} is ${oldMember.state}, not down: a live node leaves with "dynamo leave ${old}"`, code: 1 };
    if (status.members.find((m) => m.id === fresh) === undefined)
      return { out: `dynamo replace: ${fresh} is not a member yet: start it first (dynamo node --id ${fresh} --seeds ...)`, code: 1 };
    const progress = progressLine();
    const started = Date.now();
    try {
      for (;;) {
        let ping: PingReply | null = null;
        try {
          ping = decodeJson<PingReply>(await t.request(s.ping(fresh), '', 2000));
        } catch {}
        if (ping?.state === 'serving' && (ping.transfer === null || ping.transfer.phase === 'done')) break;
        if (ping?.transfer) progress.show(ping.transfer.phase, ping.transfer.done, ping.transfer.total);
        if (Date.now() - started > REMOVE_WAIT_MS) return { out: `dynamo replace: ${fresh} has not finished joining; ${old} was not removed`, code: 1 };
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    } finally {
      progress.end();
    }
    const removed = await removeAndFollow(t, s, old);
    return removed.code === 0 ? { out: `${fresh} joined and ${old} was removed: ${removed.out}`, code: 0 } : removed;
  });
}

/** Remove `node`, then follow anti-entropy until every live member's ranges were compared in sync since. */
async function removeAndFollow(t: Transport, s: Subjects, node: string): Promise<Outcome> {
  const removedAt = Date.now();
  const reply = decodeJson<{ ok: boolean; members?: string[]; error?: { message: string } }>(await t.request(s.remove, JSON.stringify({ node }), 10_000));
  if (!reply.ok) return { out: `dynamo remove: ${reply.error?.message ?? 'refused'}`, code: 1 };
  process.stderr.write(`${node} is out of the ring (${(reply.members ?? []).join(', ')} hold it now); re-replicating its ranges\n`);
  const progress = progressLine('ranges in sync');
  try {
    for (;;) {
      const status = decodeJson<{ ok: boolean; members: MemberStatus[] }>(await t.request(s.status, '', 5000));
      const ranges = status.members
        .filter((m) => m.id !== node && m.keys !== null)
        .flatMap((m) => (m.antiEntropy?.ranges ?? []).filter((r) => r.peer !== node));
      const done = ranges.filter((r) => r.inSync === true && r.lastExchangeAgeMs !== null && Date.now() - r.lastExchangeAgeMs > removedAt).length;
      progress.show('syncing', done, ranges.length);
      if (ranges.length > 0 && done === ranges.length) break;
      if (Date.now() - removedAt > REMOVE_WAIT_MS)
        return { out: `${node} was removed; its ranges are still being repaired (see "dynamo status", SYNC)`, code: 0 };
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } finally {
    progress.end();
  }
  return { out: `${node} removed; every range is back to its replicas and in sync`, code: 0 };
}

const PLAN_USAGE = 'usage: dynamo plan join NODE [--weight W] | leave NODE | remove NODE | weight NODE W';

export const PLAN_OPTIONS: OptionSpecs = { ...LEAVE_OPTIONS, weight: { type: 'string', help: "plan join: the new node's weight (default 1)" } };

/**
 * `dynamo plan ...`: what a join, leave, removal or weight change would move, before it
 * is made: per node, the share of the ring it would start and stop replicating, and keys
 * estimated from the cluster's key counts. Nothing changes.
 */
export async function planCommand(positionals: string[], values: Record<string, unknown>): Promise<Outcome> {
  const [what, node, weightText, ...rest] = positionals;
  if (node === undefined || rest.length > 0 || !['join', 'leave', 'remove', 'weight'].includes(what ?? '')) throw new UsageError(PLAN_USAGE);
  if ((what === 'weight') !== (weightText !== undefined)) throw new UsageError(PLAN_USAGE);
  const weight = what === 'weight' ? requiredIntFlag({ weight: weightText }, 'weight', 1, MAX_WEIGHT) : (intFlag(values, 'weight', 1, MAX_WEIGHT) ?? 1);
  return withCluster(values, async (t, prefix) => {
    const s = subjects(prefix);
    const ring = decodeJson<{ ok: boolean; n: number; members: RingMember[] }>(await t.request(s.ring, '', 5000));
    const status = decodeJson<{ ok: boolean; members: MemberStatus[] }>(await t.request(s.status, '', 5000));
    const current = ring.members;
    const has = current.some((m) => m.id === node);
    if (what === 'join' && has) return { out: `dynamo plan: ${node} is in the ring already (plan a weight change instead)`, code: 1 };
    if (what !== 'join' && !has) return { out: `dynamo plan: ${node} is not in the ring`, code: 1 };
    const future =
      what === 'join'
        ? [...current, { id: node, weight }]
        : what === 'weight'
          ? current.map((m) => (m.id === node ? { id: m.id, weight } : m))
          : current.filter((m) => m.id !== node);
    if (future.length === 0) return { out: `dynamo plan: ${node} is the ring's only member`, code: 1 };
    const n = Math.max(1, ring.n);
    // Each distinct key is held by n replicas: the keys stored on the members that answer, over how many of them hold each.
    const answering = status.members.filter((m) => m.keys !== null);
    const stored = answering.reduce((a, m) => a + (m.keys ?? 0) + (m.tombstones ?? 0), 0);
    const keys = Math.round(stored / Math.max(1, Math.min(n, answering.length)));
    const rows = planChange(current, future, n, keys);
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    const lines = [['NODE', 'GAINS', 'KEYS IN', 'LOSES', 'KEYS OUT']];
    for (const r of rows) lines.push([r.node, pct(r.gains), `~${r.keysIn}`, pct(r.loses), `~${r.keysOut}`]);
    const moved = rows.reduce((a, r) => a + r.keysIn, 0);
    const how =
      what === 'remove'
        ? `${node}'s copies are not moved: the nodes that gain its ranges get them from the other replicas (anti-entropy)`
        : 'keys move from the replicas that hold them to the ones that gain them';
    return {
      out: `plan: ${what} ${node}${what === 'join' || what === 'weight' ? ` (weight ${weight})` : ''}, N=${n}, about ${keys} keys in the cluster\n${table(lines)}\nabout ${moved} key copies to stream; ${how}`,
      code: 0,
    };
  });
}

/** `dynamo ring simulate`: the lecture's comparison of placement strategies, computed. */
export async function ringCommand(positionals: string[], values: Record<string, unknown>): Promise<Outcome> {
  if (positionals[0] !== 'simulate' || positionals.length !== 1)
    throw new UsageError('usage: dynamo ring simulate [--nodes 10] [--keys 100000] [--vnodes 128] [--json]');
  const nodes = requiredIntFlag(values, 'nodes', 2, 1000);
  const keys = requiredIntFlag(values, 'keys', 1, 10_000_000);
  const vnodes = requiredIntFlag(values, 'vnodes', 1, 4096);
  const stats = simulatePlacement(nodes, keys, vnodes);
  if (values['json']) return { out: JSON.stringify({ nodes, keys, vnodes, strategies: stats }), code: 0 };
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const rows = [
    ['STRATEGY', 'MAX/MEAN', 'STDDEV/MEAN', 'MOVED ON ADD', 'MOVED ON REMOVE'],
    ...stats.map((s) => [s.strategy, s.maxOverMean.toFixed(2), s.stddevOverMean.toFixed(3), pct(s.movedOnAdd), pct(s.movedOnRemove)]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const table = rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
  const theory = `theory: mod N moves about ${pct(nodes / (nodes + 1))} on add and ${pct((nodes - 1) / nodes)} on remove; a ring about ${pct(1 / (nodes + 1))} and ${pct(1 / nodes)}`;
  return { out: `${keys} keys over ${nodes} nodes\n${table}\n${theory}`, code: 0 };
}

/** The faults command body for `dynamo faults ...`. */
export function faultsBody(positionals: readonly string[]): Record<string, unknown> {
  const [what, ...rest] = positionals;
  const usage = 'usage: dynamo faults partition n1,n2 n3 | drop 0.1 | delay 50 | heal';
  if (what === 'heal' && rest.length === 0) return { heal: true };
  if (what === 'partition' && rest.length >= 2) return { partition: rest.map((g) => g.split(',').filter(Boolean)) };
  if (what === 'drop' && rest.length === 1) return { drop: Number(rest[0]) };
  if (what === 'delay' && rest.length === 1) return { delayMs: Number(rest[0]) };
  throw new UsageError(usage);
}

/** `dynamo faults ...`: set faults on every member (nodes must run with --allow-faults). */
export async function faultsCommand(positionals: string[], values: Record<string, unknown>): Promise<Outcome> {
  const body = JSON.stringify(faultsBody(positionals));
  return withCluster(values, async (t, prefix) => {
    const s = subjects(prefix);
    const status = decodeJson<{ members: { id: string; state: string }[] }>(await t.request(s.status, '', 5000));
    const lines: string[] = [];
    let failed = 0;
    for (const m of status.members.filter((x) => x.state !== 'left')) {
      try {
        const r = decodeJson<{ ok: boolean; faults?: unknown; error?: { message: string } }>(await t.request(s.nodeFaults(m.id), body, 2000));
        if (!r.ok) failed++;
        lines.push(`${m.id}: ${r.ok ? JSON.stringify(r.faults) : r.error?.message}`);
      } catch (e) {
        failed++;
        lines.push(`${m.id}: no answer (${(e as Error).message})`);
      }
    }
    return { out: lines.join('\n'), code: failed ? 1 : 0 };
  });
}

/** `dynamo ping [NODE]` (NODE defaults to DYNAMO_NODE_ID): exit 0 when the node answers and serves; for health checks. */
export async function pingCommand(positionals: string[], values: Record<string, unknown>): Promise<Outcome> {
  const node = positionals[0] ?? process.env['DYNAMO_NODE_ID'];
  if (positionals.length > 1 || !node) throw new UsageError('usage: dynamo ping NODE (or set DYNAMO_NODE_ID)');
  return withCluster(values, async (t, prefix) => {
    let ping: PingReply;
    try {
      ping = decodeJson<PingReply>(await t.request(subjects(prefix).ping(node), '', 2000));
    } catch (e) {
      return { out: `${node}: no answer (${(e as Error).message})`, code: 1 };
    }
    return { out: `${node}: ${ping.state}`, code: ping.state === 'serving' ? 0 : 1 };
  });
}
