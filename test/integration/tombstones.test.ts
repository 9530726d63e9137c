import { expect } from 'chai';
import type { PingReply } from '../../actors/node/admin-server.js';
import type { NodeConfig } from '../../src/config.js';
import { ALIVE_META } from '../../src/membership/reaping.js';
import { MAX_CLIENT_BATCH } from '../../src/protocol/batch.js';
import { keyPosition } from '../../src/ring/index.js';
import type { Version } from '../../src/versioning/index.js';
import { runCli } from '../helpers/cli.js';
import { RealCluster } from '../helpers/real-cluster.js';
import { waitFor } from '../helpers/wait.js';

const KEYS = 300;
type Results = { ok: boolean; results: { ok: boolean; found?: boolean; values?: unknown[] }[] };

/**
 * Tombstone reaping on real servers: a deleted key's tombstones go once their grace has
 * passed and every replica was compared in sync after them, and never in a way that lets
 * a replica that missed the delete bring the value back.
 */
describe('tombstone reaping (real nats-server and redis-servers)', function () {
  this.timeout(180_000);
  const ids = ['n1', 'n2', 'n3'];
  const keys = Array.from({ length: KEYS }, (_, i) => `gone${i}`);
  let c: RealCluster;

  afterEach(() => c?.stop());

  async function start(overrides: Partial<NodeConfig>): Promise<void> {
    c = await new RealCluster(ids, { antiEntropyIntervalMs: 200, ...overrides }).start();
    const put = await c.request<Results>('dynamo.kv.mput', { items: keys.map((key) => ({ key, value: key })), w: 3 }, 30_000);
    expect(put.results.every((r) => r.ok)).to.equal(true);
  }

  /** Per node, what its Redis holds of `keys`: how many keys at all, and how many with a value. */
  async function held(id: string): Promise<{ keys: number; values: number }> {
    const s = c.storage(id);
    try {
      const raws = await s.readRawMany(keys.map((key) => ({ bucket: 'default', key })));
      const present = raws.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as Version[]);
      return { keys: present.length, values: present.filter((vs) => vs.some((v) => v.v !== undefined)).length };
    } finally {
      await s.close();
    }
  }

  /** Run one op per key, in client batches (at most MAX_CLIENT_BATCH items each). */
  async function each(op: 'get' | 'delete', body: Record<string, unknown>): Promise<Results['results']> {
    const out: Results['results'] = [];
    for (let i = 0; i < KEYS; i += MAX_CLIENT_BATCH) {
      const items = keys.slice(i, i + MAX_CLIENT_BATCH).map((key) => [op, { key, ...body }]);
      out.push(...(await c.request<Results>('dynamo.kv.batch', { items }, 30_000)).results);
    }
    return out;
  }

  async function deleteAll(): Promise<void> {
    expect((await each('delete', { w: 2 })).every((r) => r.ok)).to.equal(true);
  }

  const ping = (id: string) => c.request<PingReply>(`dynamo.node.${id}.admin.ping`, {});

  /** No replica holds any of the keys, and reads of all three replicas find none. */
  async function goneEverywhere(): Promise<void> {
    for (const id of ids) expect(await held(id), id).to.deep.equal({ keys: 0, values: 0 });
    expect((await each('get', { r: 3 })).filter((r) => r.found !== false)).to.deep.equal([]);
  }

  it('keeps tombstones while a replica is down, and reaps them on every node once it is back, without bringing back the values it missed the delete of', async () => {
    // n3 is away longer than the grace: reaping waits for it all the same, and it comes back with its data.
    await start({ tombstoneGraceMs: 500 });
    await c.stopNode('n3');
    await waitFor(() => c.nodes.get('n1')!.gossiper.isDown('n3'), 20_000, 'n1 sees n3 down');
    await deleteAll();
    // n3 missed every delete: it still holds every value.
    expect(await held('n3')).to.deep.equal({ keys: KEYS, values: KEYS });
    expect(await held('n1')).to.deep.equal({ keys: KEYS, values: 0 });
    await c.startNode('n3');
    // Once the grace has passed the tombstones go, from every node, and n3's old values with them.
    await waitFor(async () => (await Promise.all(ids.map(held))).every((h) => h.keys === 0), 60_000, 'tombstones reaped on every node');
    await goneEverywhere();
    const reaped = await Promise.all(ids.map(async (id) => (await ping(id)).tombstoneReaping));
    // Each key is reaped once, by its first replica; the others dropped their copies when asked.
    expect(reaped.reduce((a, r) => a + r.reaped, 0)).to.be.at.least(KEYS);
    expect(reaped.reduce((a, r) => a + r.dropped, 0)).to.be.at.least(2 * KEYS);
    expect((await ping('n1')).tombstones).to.equal(0);
  });

  it('a replica back after longer than the grace serves no reads until anti-entropy has compared its ranges, and then holds what it missed', async () => {
    await start({ tombstoneGraceMs: 1000, antiEntropyIntervalMs: 3000 });
    await c.stopNode('n3');
    await waitFor(() => c.nodes.get('n1')!.gossiper.isDown('n3'), 20_000, 'n1 sees n3 down');
    const put = await c.request<Results>('dynamo.kv.mput', { items: keys.map((key) => ({ key, value: `${key}: v2` })), w: 2 }, 30_000);
    expect(put.results.every((r) => r.ok)).to.equal(true);
    // As if n3 had been away for 10 s, ten times the grace: its store says when it was last alive.
    const s3 = c.storage('n3');
    try {
      await s3.setMeta(ALIVE_META, String((await s3.storeClock()) - 10_000));
    } finally {
      await s3.close();
    }
    await c.startNode('n3');
    const refused = await c.request<{ ok: boolean; error?: { code: string; message: string } }>('dynamo.node.n3.replica.get', {
      items: [{ b: 'default', k: keys[0] }],
    });
    expect(refused.error?.code).to.equal('UNAVAILABLE');
    expect(refused.error?.message).to.match(/repairing after being away longer than the tombstone grace/);
    expect((await ping('n3')).awayRepair?.pending).to.be.an('array');
    // Reads through n3 at R=1 come from the replicas that stayed, never from n3's stale store.
    for (let i = 0; i < KEYS; i += MAX_CLIENT_BATCH) {
      const items = keys.slice(i, i + MAX_CLIENT_BATCH).map((key) => ['get', { key, r: 1 }]);
      const got = await c.request<Results>('dynamo.node.n3.kv.batch', { items }, 30_000);
      expect(got.results.map((r) => r.values?.[0])).to.deep.equal(keys.slice(i, i + MAX_CLIENT_BATCH).map((k) => `${k}: v2`));
    }
    await waitFor(async () => (await ping('n3')).awayRepair === null, 30_000, 'n3 repaired');
    // Repaired by anti-entropy (no read repair from the R=1 reads above could reach every key): n3 holds every write it missed.
    const mine = c.storage('n3');
    try {
      const held3 = (await mine.readRawMany(keys.map((key) => ({ bucket: 'default', key })))).map((r) => (JSON.parse(r ?? '[]') as Version[]).map((v) => v.v));
      expect(held3).to.deep.equal(keys.map((k) => [JSON.stringify(`${k}: v2`)]));
    } finally {
      await mine.close();
    }
    expect((await c.request<{ ok: boolean }>('dynamo.node.n3.replica.get', { items: [{ b: 'default', k: keys[0] }] })).ok).to.equal(true);
  });

  it("collects an OR-Set's retired tags once every replica holds the one version, and a replica that missed a remove cannot bring it back", async () => {
    // Anti-entropy off: n3 must come back still missing the remove of "c" (collecting the tags needs no exchange).
    c = await new RealCluster(ids, { antiEntropyIntervalMs: 0 }).start();
    expect((await c.request<{ ok: boolean }>('dynamo.admin.bucket.set', { bucket: 'cart', resolver: 'orset', tombstoneGraceMs: 500 })).ok).to.equal(true);
    // Carts whose replicas are n1, then n3: n1 coordinates every write of them (OR-Set writes read, merge and
    // write back on the first live replica), and n3 does once n1 is down.
    const ring = c.nodes.get('n1')!.gossiper.ring();
    const carts = Array.from({ length: 1000 }, (_, i) => `cart${i}`)
      .filter((k) => ring.walk(keyPosition('cart', k), 3).join() === 'n1,n3,n2')
      .slice(0, 30);
    expect(carts).to.have.length(30);
    const op = async (body: Record<string, unknown>, cart: string) =>
      (await c.request<{ ok: boolean }>('dynamo.kv.put', { bucket: 'cart', key: cart, ...body })).ok;
    for (const cart of carts) {
      expect(await op({ op: { add: ['a', 'b', 'c'] }, w: 3 }, cart)).to.equal(true);
      expect(await op({ op: { remove: ['b'] }, w: 3 }, cart)).to.equal(true);
    }
    await c.stopNode('n3');
    await waitFor(() => c.nodes.get('n1')!.gossiper.isDown('n3'), 20_000, 'n1 sees n3 down');
    for (const cart of carts) expect(await op({ op: { remove: ['c'] }, w: 2 }, cart)).to.equal(true);
    // Past the grace, the collection waits for n3, and n1 says so.
    await waitFor(async () => (await ping('n1')).tombstoneReaping.waiting?.includes('n3 is down') === true, 20_000, 'n1 waiting for n3');
    // n3 comes back still holding "c" (anti-entropy is off). With n1 down, n3 coordinates an add of "d" from
    // what it holds: versions concurrent with the removes of "c", whose retired tags must still be there to beat them.
    await c.startNode('n3');
    await c.stopNode('n1');
    await waitFor(() => c.nodes.get('n3')!.gossiper.isDown('n1') && c.nodes.get('n2')!.gossiper.isDown('n1'), 20_000, 'n1 down');
    for (const cart of carts) expect(await op({ op: { add: ['d'] }, w: 2 }, cart)).to.equal(true);
    await c.startNode('n1');
    await waitFor(() => !c.nodes.get('n2')!.gossiper.isDown('n1') && !c.nodes.get('n3')!.gossiper.isDown('n1'), 20_000, 'n1 up');
    /** Per node, how many carts it holds as `siblings` versions, and how many as one version whose state has no retired tag. */
    const heldCarts = async (id: string) => {
      const s = c.storage(id);
      try {
        const held = (await s.readRawMany(carts.map((key) => ({ bucket: 'cart', key })))).map((r) => JSON.parse(r ?? '[]') as Version[]);
        return {
          two: held.filter((vs) => vs.length === 2).length,
          compacted: held.filter((vs) => vs.length === 1 && vs[0]?.v !== undefined && (JSON.parse(vs[0].v) as { x: string[] }).x.length === 0).length,
        };
      } finally {
        await s.close();
      }
    };
    // Reads of all three replicas repair them to both sides, as siblings; a write then folds them into one version.
    for (const cart of carts) await c.request('dynamo.kv.get', { bucket: 'cart', key: cart, r: 3 });
    await waitFor(async () => (await Promise.all(ids.map(heldCarts))).every((h) => h.two === carts.length), 30_000, 'both sides on every replica');
    for (const cart of carts) expect(await op({ op: { add: ['e'] }, w: 3 }, cart)).to.equal(true);
    await waitFor(
      async () => (await Promise.all(ids.map(heldCarts))).every((h) => h.compacted === carts.length),
      60_000,
      'retired tags collected on every node',
    );
    for (const cart of carts) {
      const r = await c.request<{ values?: unknown[] }>('dynamo.kv.get', { bucket: 'cart', key: cart, r: 3 });
      expect(r.values, cart).to.deep.equal([['a', 'd', 'e']]);
    }
    const collected = await Promise.all(ids.map(async (id) => (await ping(id)).tombstoneReaping.retiredTagsCollected));
    expect(collected.reduce((a, b) => a + b, 0)).to.be.at.least(carts.length);
    // And the set goes on: a remove and an add after the collection behave as before.
    expect(await op({ op: { remove: ['a'], add: ['f'] } }, carts[0]!)).to.equal(true);
    expect((await c.request<{ values?: unknown[] }>('dynamo.kv.get', { bucket: 'cart', key: carts[0], r: 3 })).values).to.deep.equal([['d', 'e', 'f']]);
  });

  it('waits for a member that stays down, says why, and reaps once it is removed; the removed node coming back brings nothing back', async () => {
    await start({ tombstoneGraceMs: 1000 });
    await c.stopNode('n3');
    await waitFor(() => c.nodes.get('n1')!.gossiper.isDown('n3'), 20_000, 'n1 sees n3 down');
    await deleteAll();
    // Past the grace, the tombstones wait for n3, and every live node says so.
    await waitFor(async () => (await ping('n1')).tombstoneReaping.waiting?.includes('n3 is down') === true, 20_000, 'n1 waiting for n3');
    expect(await held('n1')).to.deep.equal({ keys: KEYS, values: 0 });
    expect(await held('n2')).to.deep.equal({ keys: KEYS, values: 0 });
    const status = await runCli(['status'], c.nats.url);
    expect(status.out).to.match(/tombstones past their grace, not reaped yet:\nn1: n3 is down/);
    const removed = await c.request<{ ok: boolean }>('dynamo.admin.remove', { node: 'n3' });
    expect(removed.ok).to.equal(true);
    await waitFor(async () => (await held('n1')).keys === 0 && (await held('n2')).keys === 0, 60_000, 'tombstones reaped on n1 and n2');
    // n3 still holds every value it had. Started again, it finds itself removed and starts empty.
    expect(await held('n3')).to.deep.equal({ keys: KEYS, values: KEYS });
    await c.startNode('n3');
    await waitFor(() => [...c.nodes.values()].every((n) => n.gossiper.ring().members.some((m) => m.id === 'n3')), 30_000, 'n3 back in every ring');
    await waitFor(async () => (await ping('n3')).state === 'serving', 30_000, 'n3 serving');
    await goneEverywhere();
  });
});
