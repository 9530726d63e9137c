/**
 * What inspection costs the request path: the same closed-loop load on a 3-node
 * cluster with inspection off, with `--inspect` as `npm start` runs it (transitions
 * and up to 20 coordinator runs a second per node traced, everything sent to a
 * Stately inspector relay), and with every coordinator run traced. The off row runs
 * twice, first and last, so the table shows how much the machine itself wanders.
 * Prints a table; not a test.
 *
 *   npm run bench:inspect [-- --seconds 10 --concurrency 32]
 */
import { parseArgs } from 'node:util';
import { subjects } from '../src/protocol/subjects.js';
import type { NatsTransport } from '../src/transport/nats-transport.js';
import { decodeJson } from '../src/transport/transport.js';
import type { MemberStatus } from '../actors/node/admin-server.js';
import { run, withCluster, type Row } from './load.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, concurrency: { type: 'string', default: '32' } } });
const SECONDS = Number(values.seconds);
const CONCURRENCY = Number(values.concurrency);

interface Measured {
  row: Row;
  /** trace messages the nodes published during the measured run */
  traces: number;
}

async function traced(nats: NatsTransport): Promise<number> {
  const members = decodeJson<{ members: MemberStatus[] }>(await nats.request(subjects('dynamo').status, '', 5000)).members;
  return members.reduce((sum, m) => sum + (m.trace?.published ?? 0), 0);
}

async function measure(mode: string, args: string[], env: Record<string, string> = {}): Promise<Measured> {
  return withCluster(3, ['--no-console', ...args], env, async (client, nats) => {
    await run(client, 'warm-up', CONCURRENCY, 2);
    const before = await traced(nats);
    const row = await run(client, mode, CONCURRENCY, SECONDS);
    return { row, traces: (await traced(nats)) - before };
  });
}

async function main(): Promise<void> {
  const rows: Measured[] = [];
  rows.push(await measure('off', []));
  rows.push(await measure('--inspect', ['--inspect']));
  rows.push(await measure('--inspect, all runs', ['--inspect'], { DYNAMO_INSPECT_RUNS_PER_SECOND: '10000' }));
  rows.push(await measure('off, again', []));
  const base = (rows[0]!.row.ops + rows[3]!.row.ops) / 2;
  const baseP999 = (rows[0]!.row.p999 + rows[3]!.row.p999) / 2;
  const head = ['MODE', 'OPS/S', 'P50 MS', 'P99 MS', 'P99.9 MS', 'ERRORS', 'TRACES/S', 'OPS VS OFF', 'P99.9 VS OFF'];
  const body = rows.map(({ row, traces }) => [
    row.mode,
    row.ops.toFixed(0),
    row.p50.toFixed(2),
    row.p99.toFixed(2),
    row.p999.toFixed(2),
    String(row.errors),
    (traces / SECONDS).toFixed(0),
    (row.ops / base).toFixed(2),
    (row.p999 / baseP999).toFixed(2),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  console.log(
    `3 nodes, N=3 R=2 W=2; 50% puts / 50% gets of 100-byte values, ${CONCURRENCY} callers, ${SECONDS} s per row; ratios against the mean of the two off rows`,
  );
  console.log(
    [head, ...body]
      .map((line) =>
        line
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      )
      .join('\n'),
  );
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
