/**
 * Tail latency under a single failure: the same closed-loop load on a local 3-node
 * cluster, once healthy and once with one node process killed (SIGKILL) a third of
 * the way in, in one run. Prints a table; not a test.
 *
 *   npm run bench:failure [-- --seconds 6 --concurrency 16]
 */
import { parseArgs } from 'node:util';
import { DynamoClient } from '../src/client/client.js';
import { KEYS, run, startCluster, table, type Row } from './load.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '6' }, concurrency: { type: 'string', default: '16' } } });
const SECONDS = Number(values.seconds);
const CONCURRENCY = Number(values.concurrency);

async function main(): Promise<void> {
  const cluster = await startCluster(3);
  try {
    const client = await DynamoClient.connect(cluster.file.natsUrl);
    await run(client, 'warm-up', CONCURRENCY, 1);
    const rows: Row[] = [];
    rows.push(await run(client, 'healthy', CONCURRENCY, SECONDS));
    const victim = cluster.file.children.find((c) => c.name === 'n3')!;
    let killed = false;
    rows.push(
      await run(client, 'n3 killed at 1/3', CONCURRENCY, SECONDS, (elapsedMs) => {
        if (!killed && elapsedMs > (SECONDS * 1000) / 3) {
          killed = true;
          process.kill(victim.pid, 'SIGKILL');
        }
      }),
    );
    await client.close();
    console.log(`3 nodes, N=3 R=2 W=2, 50% puts / 50% gets of 100-byte values over ${KEYS} keys, ${SECONDS} s per row`);
    console.log(table(rows, 'P99.9 VS HEALTHY', () => 0));
  } finally {
    await cluster.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
