/**
 * The cart story of examples/cart.ts, printed side by side for lww, union and orset.
 *
 *   npm run demo:cart                 starts its own 3-node cluster (dynamo up --allow-faults)
 *   npm run demo:cart -- --nats URL   uses a running one whose nodes n1, n2, n3 allow faults
 */
import { parseArgs } from 'node:util';
import { startCluster } from '../bench/load.js';
import { NatsTransport } from '../src/transport/nats-transport.js';
import { cartStory, outcomeTable } from './cart.js';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { nats: { type: 'string' }, prefix: { type: 'string', default: 'dynamo' } } });
  const cluster = values.nats
    ? null
    : await startCluster(3, ['--allow-faults'], { DYNAMO_GOSSIP_INTERVAL: '200', DYNAMO_SUSPECT_AFTER: '600', DYNAMO_DOWN_AFTER: '1000' });
  const t = await NatsTransport.connect(values.nats ?? cluster!.file.natsUrl, 'cart-demo');
  try {
    const rows = await cartStory(t, values.prefix, (line) => console.log(line));
    console.log(`\n${outcomeTable(rows)}`);
  } finally {
    await t.close();
    await cluster?.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
