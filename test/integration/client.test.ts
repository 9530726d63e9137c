import { expect } from 'chai';
import { DynamoClient } from '../../src/client/client.js';
import { BadRequestError, ConflictError, QuorumNotMetError, TooLargeError } from '../../src/client/errors.js';
import { keyPosition } from '../../src/ring/index.js';
import { RealCluster } from '../helpers/real-cluster.js';
import { waitFor } from '../helpers/wait.js';

describe('client (real servers)', function () {
  this.timeout(60_000);
  let c: RealCluster;
  let client: DynamoClient;
  before(async () => {
    c = await new RealCluster(['n1', 'n2', 'n3']).start();
    client = await DynamoClient.connect(c.nats.url);
  });
  after(async () => {
    await client?.close();
    await c?.stop();
  });

  it('every method round-trips', async () => {
    const put = await client.put('k1', { a: 1 }, { w: 3 });
    const got = await client.get<{ a: number }>('k1', { r: 3 });
    expect(got).to.deep.equal({ found: true, values: [{ a: 1 }], context: put.context });
    await client.delete('k1', { context: got.context });
    expect((await client.get('k1')).found).to.equal(false);
    const up = await client.update<number>('counter', (values) => (values[0] ?? 0) + 1);
    expect(up.value).to.equal(1);
  });

  it('raises ConflictError for a conditional write with a stale context', async () => {
    await client.put('cond', 1);
    const stale = await client.get('cond');
    await client.put('cond', 2, { context: stale.context });
    const e = await client.put('cond', 3, { ifMatch: stale.context! }).catch((x: unknown) => x);
    expect(e).to.be.instanceOf(ConflictError);
    expect((await client.get('cond')).values).to.deep.equal([2]);
    // With the fresh context it goes through.
    const fresh = await client.get('cond');
    await client.put('cond', 3, { ifMatch: fresh.context! });
    expect((await client.get('cond')).values).to.deep.equal([3]);
  });

  it('raises BadRequestError and TooLargeError', async () => {
    expect(await client.get('x', { r: 0 }).catch((e: unknown) => e)).to.be.instanceOf(BadRequestError);
    expect(await client.put('x', 'y'.repeat(1024 * 1024 + 10)).catch((e: unknown) => e)).to.be.instanceOf(TooLargeError);
  });

  it('two clients updating one counter concurrently lose no increment', async () => {
    const other = await DynamoClient.connect(c.nats.url);
    try {
      const bump = (cl: DynamoClient) => cl.update<number>('hits', (v) => (v[0] ?? 0) + 1, { maxAttempts: 50 });
      const runs = [client, other].map(async (cl) => {
        for (let i = 0; i < 15; i++) await bump(cl);
      });
      await Promise.all(runs);
      expect((await client.get('hits', { r: 3 })).values).to.deep.equal([30]);
    } finally {
      await other.close();
    }
  });

  it('putMany and getMany: one outcome per key, in order; getMany keeps answering with a node down', async () => {
    const items = Array.from({ length: 300 }, (_, i) => ({ key: `many:${i}`, value: { i } }));
    const puts = await client.putMany(items, { w: 3 });
    expect(puts.map((p) => p.key)).to.deep.equal(items.map((it) => it.key));
    expect(puts.every((p) => p.ok)).to.equal(true);

    await c.stopNode('n3');
    const keys = [...items.map((it) => it.key), 'many:absent', ''];
    const gets = await client.getMany<{ i: number }>(keys, { r: 2 });
    expect(gets).to.have.length(keys.length);
    for (let i = 0; i < 300; i++) {
      const g = gets[i]!;
      expect(g.ok && g.result.values, g.key).to.deep.equal([{ i }]);
    }
    expect(gets[300]).to.deep.include({ key: 'many:absent', ok: true, result: { found: false, values: [], context: null } });
    // A bad key fails that key alone.
    const bad = gets[301]!;
    expect(bad.ok === false && bad.error).to.be.instanceOf(BadRequestError);

    // One refused item of an mput; the others are written.
    const mixed = await client.putMany(
      [
        { key: 'many:ok', value: 1 },
        { key: '', value: 2 },
      ],
      { w: 2 },
    );
    expect(mixed.map((m) => m.ok)).to.deep.equal([true, false]);
    expect((await client.get('many:ok')).values).to.deep.equal([1]);
    // Over the limit, the request as a whole is refused.
    const tooMany = await client.getMany(Array.from({ length: 1025 }, (_, i) => `k${i}`)).catch((e: unknown) => e);
    expect(tooMany).to.be.instanceOf(BadRequestError);
  });

  it('raises QuorumNotMetError with acks and needed when replicas are gone', async () => {
    await c.stopNode('n2');
    await c.stopNode('n3');
    const e = await client.put('q', 1, { w: 2 }).catch((x: unknown) => x);
    expect(e).to.be.instanceOf(QuorumNotMetError);
    expect((e as QuorumNotMetError).needed).to.equal(2);
    expect((e as QuorumNotMetError).acks).to.be.below(2);
  });
});

describe('partition-aware client (real servers)', function () {
  this.timeout(60_000);
  let c: RealCluster;
  before(async () => {
    // Five nodes with N=2: most keys' replicas are two of the five, so routing matters.
    c = await new RealCluster(['p1', 'p2', 'p3', 'p4', 'p5'], { n: 2, r: 1, w: 1 }).start();
  });
  after(() => c?.stop());

  const totals = () => {
    const t = { queue: 0, direct: 0, forwarded: 0 };
    for (const n of c.nodes.values()) for (const k of ['queue', 'direct', 'forwarded'] as const) t[k] += n.requests[k];
    return t;
  };

  it("sends each request to the first node of the key's preference list", async () => {
    const client = await DynamoClient.connect(c.nats.url, { partitionAware: true });
    try {
      const before = new Map([...c.nodes].map(([id, n]) => [id, n.requests.direct]));
      const t0 = totals();
      const keys = Array.from({ length: 40 }, (_, i) => `pa-${i}`);
      for (const k of keys) await client.put(k, k);
      const t1 = totals();
      expect(t1.direct - t0.direct).to.equal(40);
      expect(t1.queue - t0.queue).to.equal(0);
      expect(t1.forwarded - t0.forwarded).to.equal(0);
      // And each landed on its key's first replica, as the nodes count it.
      const ring = c.nodes.get('p1')!.gossiper.ring();
      const expected = new Map<string, number>();
      for (const k of keys) {
        const first = ring.walk(keyPosition('default', k), 1)[0]!;
        expected.set(first, (expected.get(first) ?? 0) + 1);
      }
      for (const [id, n] of c.nodes) expect(n.requests.direct - before.get(id)!, id).to.equal(expected.get(id) ?? 0);

      // Without partition awareness, some requests land on a node that must forward them.
      const plain = await DynamoClient.connect(c.nats.url);
      for (const k of keys) await plain.get(k);
      await plain.close();
      expect(totals().forwarded - t1.forwarded).to.be.greaterThan(0);
    } finally {
      await client.close();
    }
  });

  it('survives the death of the node it routes to', async () => {
    const client = await DynamoClient.connect(c.nats.url, { partitionAware: true });
    try {
      const ring = c.nodes.get('p1')!.gossiper.ring();
      const key = Array.from({ length: 100 }, (_, i) => `death-${i}`).find((k) => ring.walk(keyPosition('default', k), 1)[0] === 'p3')!;
      await client.put(key, 'v', { w: 2 });
      await c.stopNode('p3');
      expect((await client.get(key)).values).to.deep.equal(['v']);
      await waitFor(async () => (await client.get(key)).found, 5000, 'reads after p3 is gone');
    } finally {
      await client.close();
    }
  });
});
