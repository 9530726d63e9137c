/**
 * Partition-aware routing against routing through any node: the same closed-loop
 * load on a local 5-node cluster (N=3, so 2 of 5 nodes must forward a key's request),
 * once each way, in one run. Prints a table; not a test.
 *
 *   npm run bench:routing [-- --seconds 5 --concurrency 32]
 */
import { parseArgs } from 'node:util';
import { DynamoClient } from '../src/client/client.js';
import { KEYS, run, startCluster, table, type Row } from './load.js';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '5' }, concurrency: { type: 'string', default: '32' }, nodes: { type: 'string', default: '5' } },
});
const SECONDS = Number(values.seconds);
const CONCURRENCY = Number(values.concurrency);

async function main(): Promise<void> {
  const cluster = await startCluster(Number(values.nodes));
  try {
    const plain = await DynamoClient.connect(cluster.file.natsUrl);
    const aware = await DynamoClient.connect(cluster.file.natsUrl, { partitionAware: true });
    // Warm up both paths (connections, JIT, the ring copy).
    await run(plain, 'warm-up', CONCURRENCY, 1);
    await run(aware, 'warm-up', CONCURRENCY, 1);
    const rows: Row[] = [];
    for (const c of [CONCURRENCY, 1]) {
      rows.push(await run(plain, 'any node', c, SECONDS));
      rows.push(await run(aware, 'partition-aware', c, SECONDS));
    }
    await plain.close();
    await aware.close();
    console.log(`${values.nodes} nodes, N=3, 50% puts / 50% gets of 100-byte values over ${KEYS} keys, ${SECONDS} s per row`);
    console.log(table(rows, 'P99.9 VS ANY NODE', (i) => i - (i % 2)));
  } finally {
    await cluster.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
