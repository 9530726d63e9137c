/**
 * The floor of `npm run bench`: the message pattern of a put or get with no logic at
 * all, batched as the store batches. A client request reaches one of three processes
 * (queue group), which writes or reads its own Redis and asks the two others to do the
 * same, answering after the first of them (W=2 / R=2 with itself). Replica requests a
 * process makes to one peer within one event-loop turn go as one message, and the peer
 * answers the batch with one message, its Redis commands pipelined (ioredis
 * auto-pipelining). What it costs is what NATS, Redis and Node.js cost.
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
const redis = new Redis(redisUrl, { enableAutoPipelining: true });
const OK = '{"ok":true}';

type Kind = 'put' | 'get';
interface Item {
  key: string;
  value?: string;
  done: (value: string | null) => void;
  fail: () => void;
}
const queues = new Map<string, Item[]>();
let scheduled = false;

/** Queue an item for a peer; every queue goes out as one message at the end of this turn. */
function enqueue(kind: Kind, peer: string, item: Item): void {
  const name = `${kind} ${peer}`;
  let q = queues.get(name);
  if (q === undefined) {
    q = [];
    queues.set(name, q);
  }
  q.push(item);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flush);
  }
}

function flush(): void {
  scheduled = false;
  for (const [name, items] of queues) {
    const [kind, peer] = name.split(' ') as [Kind, string];
    const body =
      kind === 'put'
        ? `{"items":[${items.map((i) => `{"k":${JSON.stringify(i.key)},"v":${i.value}}`).join(',')}]}`
        : JSON.stringify({ keys: items.map((i) => i.key) });
    nc.request(`floor.node.${peer}.${kind}`, body, { timeout: 1000 }).then(
      (m) => {
        const found = kind === 'get' ? m.json<{ values: (string | null)[] }>().values : null;
        for (const [n, it] of items.entries()) it.done(found ? found[n]! : null);
      },
      () => {
        for (const it of items) it.fail();
      },
    );
  }
  queues.clear();
}

/** Resolve with the first of the peers' answers to `kind` of `key`. */
function firstPeer(kind: Kind, key: string, value?: string): Promise<string | null> {
  return new Promise((resolve, reject) => {
    let failed = 0;
    for (const p of peers) enqueue(kind, p, { key, value, done: resolve, fail: () => ++failed === peers.length && reject(new Error('no peer')) });
  });
}

nc.subscribe('floor.kv.put', {
  queue: 'floor',
  callback: (err, m) => {
    if (err) return;
    const { key, value } = m.json<{ key: string; value: unknown }>();
    const text = JSON.stringify(value);
    void Promise.all([redis.set(`f:${key}`, text), firstPeer('put', key, text)]).then(
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
    void Promise.all([redis.get(`f:${key}`), firstPeer('get', key)]).then(
      ([v]) => m.respond(`{"ok":true,"values":[${v ?? 'null'}]}`),
      () => m.respond('{"ok":false}'),
    );
  },
});
nc.subscribe(`floor.node.${id}.put`, {
  callback: (err, m) => {
    if (err) return;
    const { items } = m.json<{ items: { k: string; v: unknown }[] }>();
    void Promise.all(items.map((it) => redis.set(`f:${it.k}`, JSON.stringify(it.v)))).then(() => m.respond(OK));
  },
});
nc.subscribe(`floor.node.${id}.get`, {
  callback: (err, m) => {
    if (err) return;
    const { keys } = m.json<{ keys: string[] }>();
    void Promise.all(keys.map((k) => redis.get(`f:${k}`))).then((values) => m.respond(JSON.stringify({ values })));
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
