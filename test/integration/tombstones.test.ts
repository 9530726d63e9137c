import { expect } from 'chai';
import type { PingReply } from '../../actors/node/admin-server.js';
import type { NodeConfig } from '../../src/config.js';
import { MAX_CLIENT_BATCH } from '../../src/protocol/batch.js';
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
