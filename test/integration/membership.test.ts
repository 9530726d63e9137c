import { expect } from 'chai';
import { keyPosition } from '../../src/ring/index.js';
import { RealCluster } from '../helpers/real-cluster.js';
import { waitFor } from '../helpers/wait.js';

type Reply = { ok: boolean; found?: boolean; values?: unknown[]; error?: { code: string; message: string } };
const KEYS = 3000;

describe('elastic membership (real nats-server and redis-servers)', function () {
  this.timeout(120_000);
  let c: RealCluster;

  before(async () => {
    c = await new RealCluster(['n1', 'n2', 'n3']).start();
    for (let i = 0; i < KEYS; i += 100) {
      const batch = Array.from({ length: 100 }, (_, j) => c.request<Reply>('dynamo.kv.put', { key: `k${i + j}`, value: i + j, w: 3 }));
      for (const r of await Promise.all(batch)) expect(r.ok).to.equal(true);
    }
  });
  after(() => c?.stop());

  async function everyKeyReadsBack(extra: string[] = []): Promise<void> {
    for (let i = 0; i < KEYS; i += 200) {
      const replies = await Promise.all(Array.from({ length: 200 }, (_, j) => c.request<Reply>('dynamo.kv.get', { key: `k${i + j}`, r: 2 })));
      for (const [j, r] of replies.entries()) expect(r, `k${i + j}`).to.deep.include({ ok: true, values: [i + j] });
    }
    for (const key of extra) expect(await c.request<Reply>('dynamo.kv.get', { key, r: 2 }), key).to.deep.include({ ok: true, found: true });
  }

  it('a fourth node joins, takes its share of the keys while writes go on, and nothing is lost', async () => {
    // Writes keep coming while n4 joins; every acknowledged one must survive.
    const acked: string[] = [];
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const r = await c.request<Reply>('dynamo.kv.put', { key: `during-${i}`, value: i });
        if (r.ok) acked.push(`during-${i}`);
      }
    })();
    const started = Date.now();
    const n4 = await c.addNode('n4');
    writing = false;
    await writer;
    expect(Date.now() - started).to.be.below(30_000);
    expect(n4.state).to.equal('serving');
    expect(acked.length).to.be.greaterThan(0);

    // N=3 over 4 equal nodes: n4 replicates about 3/4 of the keys.
    const held = await c.keyCount('n4');
    expect(held - acked.length).to.be.within(0.6 * KEYS, 0.9 * KEYS + acked.length);

    // Every member now sees n4 in the ring.
    await waitFor(() => [...c.nodes.values()].every((n) => n.gossiper.ring().members.some((m) => m.id === 'n4')), 10_000, 'n4 in every ring');
    await everyKeyReadsBack(acked);

    // n1 no longer coordinates keys whose replicas it has stopped being.
    const ring = c.nodes.get('n1')!.gossiper.ring();
    const moved = Array.from({ length: KEYS }, (_, i) => `k${i}`).find((k) => !ring.walk(keyPosition('default', k), 3).includes('n1'))!;
    const refused = await c.request<{ ok: boolean; results: Reply[] }>('dynamo.node.n1.coord.batch', { items: [['get', { key: moved }]] });
    expect(refused.ok).to.equal(true);
    expect(refused.results[0]!.error?.code).to.equal('UNAVAILABLE');
  });

  it('the fourth node leaves: its ranges go back, every key reads back, and it owns nothing', async () => {
    await c.nodes.get('n4')!.leave();
    c.nodes.delete('n4');
    await waitFor(() => [...c.nodes.values()].every((n) => !n.gossiper.ring().members.some((m) => m.id === 'n4')), 10_000, 'n4 out of every ring');
    const status = await c.request<{ members: { id: string; state: string; ownership: number }[] }>('dynamo.admin.status', '');
    expect(status.members.find((m) => m.id === 'n4')).to.include({ state: 'left', ownership: 0 });
    await everyKeyReadsBack();
    // The remaining three hold every key again (N=3 over 3 nodes).
    for (const id of ['n1', 'n2', 'n3']) expect(await c.keyCount(id), id).to.be.at.least(KEYS);
  });

  it('a node restarted with weight 2 pulls the ranges it gains and owns about twice the share', async () => {
    await c.addNode('n5');
    const before = await c.keyCount('n5');
    await c.stopNode('n5');
    const n5 = await c.addNode('n5', { weight: 2 });
    expect(n5.state).to.equal('serving');
    await waitFor(
      () => [...c.nodes.values()].every((n) => n.gossiper.ring().members.find((m) => m.id === 'n5')?.weight === 2),
      10_000,
      'n5 at weight 2 in every ring',
    );
    const share = c.nodes.get('n1')!.gossiper.ring().ownership();
    expect(share.get('n5')! / share.get('n1')!).to.be.within(1.5, 2.7);
    const after = await c.keyCount('n5');
    expect(after, `n5 held ${before} keys at weight 1, ${after} at weight 2`).to.be.greaterThan(before + 0.05 * KEYS);
    await everyKeyReadsBack();
  });
});
