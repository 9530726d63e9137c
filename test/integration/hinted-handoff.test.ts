import { expect } from 'chai';
import { keyPosition } from '../../src/ring/index.js';
import { RealCluster } from '../helpers/real-cluster.js';
import { waitFor } from '../helpers/wait.js';

type Ping = { hints: { pending: number; stored: number; delivered: number } };

describe('sloppy quorum and hinted handoff (real servers)', function () {
  this.timeout(60_000);
  let c: RealCluster;
  before(async () => {
    c = await new RealCluster(['n1', 'n2', 'n3', 'n4']).start();
  });
  after(() => c?.stop());

  const pending = async (ids: string[]) => {
    let total = 0;
    for (const id of ids) total += (await c.request<Ping>(`dynamo.node.${id}.admin.ping`, '')).hints.pending;
    return total;
  };

  it("a down replica's writes go to a fallback as hints (W counts them) and reach it when it is back", async () => {
    const live = ['n1', 'n2', 'n4'];
    await c.stopNode('n3');
    await waitFor(() => live.every((id) => c.nodes.get(id)!.gossiper.isDown('n3')), 10_000, 'n3 seen down');

    const keys = Array.from({ length: 200 }, (_, i) => `hinted-${i}`);
    for (const k of keys) {
      // W=3 with a replica down: only possible because the fallback's hinted copy counts.
      const r = await c.request<{ ok: boolean }>('dynamo.kv.put', { key: k, value: k, w: 3 });
      expect(r.ok, k).to.equal(true);
    }
    const ring = c.nodes.get('n1')!.gossiper.ring();
    const owned = keys.filter((k) => ring.walk(keyPosition('default', k), 3).includes('n3'));
    expect(owned.length).to.be.greaterThan(50);
    // One hint per write that n3 missed, held by the fallbacks.
    expect(await pending(live)).to.equal(owned.length);

    await c.startNode('n3');
    await waitFor(async () => (await pending(live)) === 0, 20_000, 'hints drained');
    const n3 = c.storage('n3');
    try {
      for (const k of owned)
        expect(
          (await n3.read('default', k)).map((v) => v.v),
          k,
        ).to.deep.equal([JSON.stringify(k)]);
    } finally {
      await n3.close();
    }
  });
});
