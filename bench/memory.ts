/**
 * Node memory as keys grow: the data lives in each node's Redis, so a node process's
 * resident memory should stay flat. Loads a 3-node cluster to 10k keys, then to
 * `--keys` (default 1,000,000), and prints each node's RSS at both points with the
 * ratio (target: at most 1.5). A script that prints a table; not a test.
 *
 *   npm run bench:memory [-- --keys 1000000]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { connect } from '@nats-io/transport-node';
import { startCluster } from './load.js';
import { progressPrinter } from './compare.js';

const { values } = parseArgs({ options: { keys: { type: 'string', default: '1000000' } } });
const TOTAL = Number(values.keys);
const BASE = 10_000;
const VALUE = 'x'.repeat(100);

function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'))!;
  return Number(line.split(/\s+/)[1]) / 1024;
}

async function main(): Promise<void> {
  if (!Number.isInteger(TOTAL) || TOTAL <= BASE) throw new Error(`--keys must be an integer above ${BASE}`);
  const cluster = await startCluster(3);
  const progress = progressPrinter();
  try {
    const nc = await connect({ servers: cluster.file.natsUrl, noAsyncTraces: true });
    const nodes = cluster.file.children.filter((c) => /^n\d+$/.test(c.name));
    let next = 0;
    const fill = async (upTo: number) => {
      await Promise.all(
        Array.from({ length: 64 }, async () => {
          while (next < upTo) {
            const k = next++;
            if (k % 5000 === 0) progress.say(`writing keys [${'#'.repeat(Math.round((k / TOTAL) * 30)).padEnd(30, '-')}] ${k}/${TOTAL}`);
            const r = await nc.request('dynamo.kv.put', `{"key":"mem-${k}","value":"${VALUE}"}`, { timeout: 10_000 });
            if (!r.string().startsWith('{"ok":true')) throw new Error(`put mem-${k}: ${r.string()}`);
          }
        }),
      );
    };
    await fill(BASE);
    const at10k = new Map(nodes.map((n) => [n.name, rssMiB(n.pid)]));
    await fill(TOTAL);
    progress.done();
    const atTotal = new Map(nodes.map((n) => [n.name, rssMiB(n.pid)]));
    await nc.close();
    console.log(`3 nodes, 100-byte values; node process RSS at ${BASE} and at ${TOTAL} keys`);
    const rows = [
      ['NODE', `RSS @${BASE} MIB`, `RSS @${TOTAL} MIB`, 'RATIO'],
      ...nodes.map((n) => [n.name, at10k.get(n.name)!.toFixed(1), atTotal.get(n.name)!.toFixed(1), (atTotal.get(n.name)! / at10k.get(n.name)!).toFixed(2)]),
    ];
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    console.log(
      rows
        .map((r) =>
          r
            .map((c, i) => c.padEnd(widths[i]!))
            .join('  ')
            .trimEnd(),
        )
        .join('\n'),
    );
  } finally {
    await cluster.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
