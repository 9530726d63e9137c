/**
 * The floor of `npm run bench`: the message pattern of a put or get with no logic at
 * all, batched as the store batches. A client request reaches one of the processes
 * (queue group). With as many processes as replicas (3), every process holds every key:
 * it writes or reads its own Redis and asks the two others to do the same, answering
 * after the first of them (W=2 / R=2 with itself). With more processes, a key's replicas
 * are REPLICAS consecutive ones from where a cheap hash of the key falls, and a process
 * that is not one forwards the request to one that is, as the store does. Requests a
 * process makes to one peer within one event-loop turn go as one message, and the peer
 * answers the batch with one message, its Redis commands pipelined (ioredis
 * auto-pipelining). What it costs is what NATS, Redis and Node.js cost.
 *
 *   node dist/bench/floor-node.js ID NATS_URL REDIS_URL PEER,PEER [REPLICAS]
 */
import { connect, type Msg } from '@nats-io/transport-node';
import { Redis } from 'ioredis';

const [id, natsUrl, redisUrl, peerList, replicaArg] = process.argv.slice(2);
if (!id || !natsUrl || !redisUrl || !peerList) {
  process.stderr.write('usage: floor-node ID NATS_URL REDIS_URL PEER,PEER [REPLICAS]\n');
  process.exit(2);
}
const peers = peerList.split(',');
const all = [id, ...peers].sort();
const replicas = Math.min(all.length, Number(replicaArg ?? all.length));
const nc = await connect({ servers: natsUrl, noAsyncTraces: true });
const redis = new Redis(redisUrl, { enableAutoPipelining: true });
const OK = '{"ok":true}';

type Kind = 'put' | 'get' | 'coord';
interface Item {
  /** the key, or for a forwarded request its whole body */
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
        : kind === 'get'
          ? JSON.stringify({ keys: items.map((i) => i.key) })
          : `{"items":[${items.map((i) => `["${i.value}",${i.key}]`).join(',')}]}`;
    nc.request(`floor.node.${peer}.${kind}`, body, { timeout: 5000 }).then(
      (m) => {
        const found = kind === 'put' ? null : m.json<{ values: (string | null)[] }>().values;
        for (const [n, it] of items.entries()) it.done(found ? found[n]! : null);
      },
      () => {
        for (const it of items) it.fail();
      },
    );
  }
  queues.clear();
}

/** A key's replicas: all processes, or `replicas` consecutive ones from where the key's FNV-1a hash falls. */
function replicasOf(key: string): string[] {
  if (replicas >= all.length) return all;
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  const at = (h >>> 0) % all.length;
  return Array.from({ length: replicas }, (_, i) => all[(at + i) % all.length]!);
}

/** Resolve with the first of the other replicas' answers to `kind` of `key`. */
function firstPeer(kind: 'put' | 'get', key: string, others: readonly string[], value?: string): Promise<string | null> {
  return new Promise((resolve, reject) => {
    let failed = 0;
    for (const p of others) enqueue(kind, p, { key, value, done: resolve, fail: () => ++failed === others.length && reject(new Error('no peer')) });
  });
}

/** A request's reply text: coordinated here when this process holds the key, else by one that does. */
function coordinate(op: 'put' | 'get', body: string): Promise<string> {
  const req = JSON.parse(body) as { key: string; value?: unknown };
  const owners = replicasOf(req.key);
  if (!owners.includes(id!)) {
    const to = owners[Math.floor(Math.random() * owners.length)]!;
    return new Promise((resolve, reject) => enqueue('coord', to, { key: body, value: op, done: (r) => resolve(r ?? '{"ok":false}'), fail: reject }));
  }
  const others = owners.filter((o) => o !== id);
  if (op === 'put') {
    const text = JSON.stringify(req.value);
    return Promise.all([redis.set(`f:${req.key}`, text), firstPeer('put', req.key, others, text)]).then(() => OK);
  }
  return Promise.all([redis.get(`f:${req.key}`), firstPeer('get', req.key, others)]).then(([v]) => `{"ok":true,"values":[${v ?? 'null'}]}`);
}

const answer = (m: Msg, reply: Promise<string>) =>
  void reply.then(
    (r) => m.respond(r),
    () => m.respond('{"ok":false}'),
  );
for (const op of ['put', 'get'] as const) {
  nc.subscribe(`floor.kv.${op}`, {
    queue: 'floor',
    callback: (err, m) => {
      if (!err) answer(m, coordinate(op, m.string()));
    },
  });
}
// A batch of forwarded requests: one reply holding each one's reply, in order.
nc.subscribe(`floor.node.${id}.coord`, {
  callback: (err, m) => {
    if (err) return;
    const { items } = m.json<{ items: ['put' | 'get', unknown][] }>();
    const replies = items.map(([op, body]) => coordinate(op, JSON.stringify(body)).catch(() => '{"ok":false}'));
    void Promise.all(replies).then((rs) => m.respond(`{"values":[${rs.map((r) => JSON.stringify(r)).join(',')}]}`));
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
