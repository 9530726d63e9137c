/**
 * What anti-entropy costs the foreground: the same closed-loop load on a converged
 * 3-node cluster holding 100k keys, once with anti-entropy off and once with it
 * exchanging every range every second (ten times the default rate). Prints a table;
 * not a test. The target: p99.9 with it on within 1.2x of it off.
 *
 *   npm run bench:anti-entropy [-- --keys 100000 --seconds 10 --concurrency 16]
 */
import { parseArgs } from 'node:util';
import type { DynamoClient } from '../src/client/client.js';
import { subjects } from '../src/protocol/subjects.js';
import type { NatsTransport } from '../src/transport/nats-transport.js';
import { decodeJson } from '../src/transport/transport.js';
import type { MemberStatus } from '../actors/node/admin-server.js';
import { run, table, withCluster, type Row } from './load.js';

const { values } = parseArgs({
  options: { keys: { type: 'string', default: '100000' }, seconds: { type: 'string', default: '10' }, concurrency: { type: 'string', default: '16' } },
});
const KEYS = Number(values.keys);
const SECONDS = Number(values.seconds);
const CONCURRENCY = Number(values.concurrency);

async function status(nats: NatsTransport): Promise<MemberStatus[]> {
  return decodeJson<{ members: MemberStatus[] }>(await nats.request(subjects('dynamo').status, '', 5000)).members;
}

/** Write KEYS keys (W=3, 64 in flight), showing progress. */
async function fill(client: DynamoClient): Promise<void> {
  let next = 0;
  let done = 0;
  const value = 'x'.repeat(100);
  const progress = setInterval(() => process.stderr.write(`\rloading ${done}/${KEYS} keys`), 250);
  try {
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < KEYS) {
          await client.put(`bench-${next++}`, value, { w: 3 });
          done++;
        }
      }),
    );
  } finally {
    clearInterval(progress);
    process.stderr.write(`${`\rloaded ${KEYS} keys`.padEnd(40)}\n`);
  }
}

async function measure(mode: string, intervalMs: number): Promise<{ row: Row; exchanges: number; visited: number; repaired: number }> {
  return withCluster(3, [], { DYNAMO_ANTI_ENTROPY_INTERVAL: String(intervalMs) }, async (client, nats) => {
    await fill(client);
    if (intervalMs > 0) {
      // Converged: every range's last compare found equal trees.
      for (;;) {
        const members = await status(nats);
        if (members.every((m) => m.antiEntropy?.ranges.length === 2 && m.antiEntropy.ranges.every((r) => r.inSync))) break;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    await run(client, 'warm-up', CONCURRENCY, 2);
    const before = await status(nats);
    const row = await run(client, mode, CONCURRENCY, SECONDS);
    const after = await status(nats);
    const sum = (ms: MemberStatus[], f: (m: NonNullable<MemberStatus['antiEntropy']>) => number) =>
      ms.reduce((a, m) => a + (m.antiEntropy ? f(m.antiEntropy) : 0), 0);
    return {
      row,
      exchanges: sum(after, (a) => a.exchanges) - sum(before, (a) => a.exchanges),
      visited: sum(after, (a) => a.treeNodesVisited) - sum(before, (a) => a.treeNodesVisited),
      repaired: sum(after, (a) => a.keysRepaired) - sum(before, (a) => a.keysRepaired),
    };
  });
}

async function main(): Promise<void> {
  const off = await measure('anti-entropy off', 0);
  const on = await measure('anti-entropy on', 1000);
  console.log(`3 nodes, N=3 R=2 W=2, ${KEYS} keys loaded; then 50% puts / 50% gets of 100-byte values, ${SECONDS} s per row`);
  console.log(table([off.row, on.row], 'P99.9 VS OFF', () => 0));
  console.log(
    `with anti-entropy on: ${on.exchanges} exchanges during the run (every range each second), ${on.visited} tree nodes compared, ${on.repaired} keys repaired`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
