/**
 * The floor of `npm run bench`: the message pattern of a put or get with no logic at
 * all. A client request reaches one of three processes (queue group), which writes or
 * reads its own Redis and asks the two others to do the same, answering after the first
 * of them (W=2 / R=2 with itself). What it costs is what NATS, Redis and Node.js cost.
 *
 *   node dist/bench/floor-node.js ID NATS_URL REDIS_URL PEER,PEER
 */
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';

const [id, natsUrl, redisUrl, peerList] = process.argv.slice(2);
if (!id || !natsUrl || !redisUrl || !peerList) {
  process.stderr.write('usage: floor-node ID NATS_URL REDIS_URL PEER,PEER\n');
  process.exit(2);
}
const peers = peerList.split(',');
const nc = await connect({ servers: natsUrl, noAsyncTraces: true });
const redis = new Redis(redisUrl);
const OK = '{"ok":true}';

/** Resolve with the first of the peers' replies. */
function firstOf(subject: (peer: string) => string, body: Uint8Array): Promise<unknown> {
  return Promise.any(peers.map((p) => nc.request(subject(p), body, { timeout: 1000 })));
}

nc.subscribe('floor.kv.put', {
  queue: 'floor',
  callback: (err, m) => {
    if (err) return;
    const { key, value } = m.json<{ key: string; value: unknown }>();
    const text = JSON.stringify(value);
    void Promise.all([redis.set(`f:${key}`, text), firstOf((p) => `floor.node.${p}.put`, m.data)]).then(
      () => m.respond(OK),
      () => m.respond('{"ok":false}'),
    );
  },
});
nc.subscribe('floor.kv.get', {
  queue: 'floor',
  callback: (err, m) => {
    if (err) return;
    const { key } = m.json<{ key: string }>();
    void Promise.all([redis.get(`f:${key}`), firstOf((p) => `floor.node.${p}.get`, m.data)]).then(
      ([v]) => m.respond(`{"ok":true,"values":[${v ?? 'null'}]}`),
      () => m.respond('{"ok":false}'),
    );
  },
});
nc.subscribe(`floor.node.${id}.put`, {
  callback: (err, m) => {
    if (err) return;
    const { key, value } = m.json<{ key: string; value: unknown }>();
    void redis.set(`f:${key}`, JSON.stringify(value)).then(() => m.respond(OK));
  },
});
nc.subscribe(`floor.node.${id}.get`, {
  callback: (err, m) => {
    if (err) return;
    const { key } = m.json<{ key: string }>();
    void redis.get(`f:${key}`).then((v) => m.respond(`{"ok":true,"values":[${v ?? 'null'}]}`));
  },
});
await nc.flush();
process.stdout.write('ready\n');
const stop = async () => {
  await nc.drain();
  redis.disconnect();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
process.stdin.on('end', () => void stop());
process.stdin.resume();
