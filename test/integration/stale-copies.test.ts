import { expect } from 'chai';
import { keyPosition } from '../../src/ring/index.js';
import { SCAN_START } from '../../src/storage/storage.js';
import type { Version } from '../../src/versioning/index.js';
import { RealCluster } from '../helpers/real-cluster.js';
import { waitFor } from '../helpers/wait.js';

const KEYS = 3000;
type Multi = { ok: boolean; results: { ok: boolean; values?: unknown[] }[] };

describe('stale copies after a join (real nats-server and redis-servers)', function () {
  this.timeout(180_000);
  let c: RealCluster;
  const keys = Array.from({ length: KEYS }, (_, i) => `k${i}`);

  before(async () => {
    c = await new RealCluster(['n1', 'n2', 'n3'], { staleCopySettleMs: 300 }).start();
    for (let i = 0; i < KEYS; i += 1000) {
      const r = await c.request<Multi>('dynamo.kv.mput', { items: keys.slice(i, i + 1000).map((key) => ({ key, value: key })), w: 3 }, 30_000);
      expect(
        r.results.every((x) => x.ok),
        `refused: ${JSON.stringify(r.results.filter((x) => !x.ok).slice(0, 3))}`,
      ).to.equal(true);
    }
  });
  after(() => c?.stop());

  /** The keys one node's Redis holds. */
  async function held(id: string): Promise<string[]> {
    const s = c.storage(id);
    try {
      const out: string[] = [];
      for (let cursor = SCAN_START; ; ) {
        const page = await s.scan(cursor, 1000);
        out.push(...page.keys.map((k) => k.key));
        cursor = page.cursor;
        if (cursor === SCAN_START) break;
      }
      return out;
    } finally {
      await s.close();
    }
  }

  it('once the ring settles, every node keeps only the keys it replicates; a copy holding what the replicas lack is sent to them first', async () => {
    await c.addNode('n4', { staleCopySettleMs: 300 });
    await waitFor(() => [...c.nodes.values()].every((n) => n.gossiper.ring().members.some((m) => m.id === 'n4')), 20_000, 'n4 in every ring');
    const ring = c.nodes.get('n1')!.gossiper.ring();
    // A version only n1 holds, of a key n1 no longer replicates (as a write that reached only the old owner).
    const orphan = Array.from({ length: 5000 }, (_, i) => `orphan${i}`).find((k) => !ring.walk(keyPosition('default', k), 3).includes('n1'))!;
    const lone: Version = { d: ['n1.zz', 1], c: {}, t: Date.now(), v: '"only on n1"' };
    const s1 = c.storage('n1');
    try {
      await s1.apply('default', orphan, [lone]);
    } finally {
      await s1.close();
    }
    const owned = (id: string) => new Set([...keys, orphan].filter((k) => ring.walk(keyPosition('default', k), 3).includes(id)));
    for (const id of ['n1', 'n2', 'n3', 'n4']) {
      const mine = owned(id);
      await waitFor(async () => (await held(id)).every((k) => mine.has(k)), 60_000, `${id} holds only its own keys`);
    }
    const counts = await Promise.all(['n1', 'n2', 'n3', 'n4'].map(async (id) => (await held(id)).length));
    expect(counts.reduce((a, b) => a + b, 0)).to.equal(3 * (KEYS + 1));
    // Nothing lost: every key, and the version only n1 had, read back from the replicas.
    for (let i = 0; i < KEYS; i += 1000) {
      const r = await c.request<Multi>('dynamo.kv.mget', { keys: keys.slice(i, i + 1000), r: 3 }, 30_000);
      expect(r.results.map((x) => x.values?.[0])).to.deep.equal(keys.slice(i, i + 1000));
    }
    expect((await c.request<Multi['results'][number]>('dynamo.kv.get', { key: orphan, r: 3 })).values).to.deep.equal(['only on n1']);
    const ping = await c.request<{ staleCopies: { dropped: number; sent: number } }>('dynamo.node.n1.admin.ping', {});
    expect(ping.staleCopies.dropped).to.be.greaterThan(0);
    expect(ping.staleCopies.sent).to.be.at.least(1);
  });
});
