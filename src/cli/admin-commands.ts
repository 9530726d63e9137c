import { UsageError } from '../errors.js';
import { progressLine } from './progress.js';
import { subjects } from '../protocol/subjects.js';
import { simulatePlacement } from '../ring/simulate.js';
import { TransportError } from '../errors.js';
import { decodeJson } from '../transport/transport.js';
import type { PingReply } from '../../actors/node/admin-server.js';
import { NATS_SECURITY_OPTIONS, requiredIntFlag, type OptionSpecs } from './args.js';
import { withCluster, type Outcome } from './client-commands.js';

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
