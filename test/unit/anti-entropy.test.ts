import { expect } from 'chai';
import { subjects } from '../../src/protocol/subjects.js';
import { MemoryCluster } from '../helpers/memory-cluster.js';
import { waitFor } from '../helpers/wait.js';
import type { PingReply } from '../../actors/node/admin-server.js';

const AE = { antiEntropyIntervalMs: 100, antiEntropyKeysPerSecond: 100_000 } as const;
const s = subjects('dynamo');

/** Anti-entropy between in-memory replicas: exchanges, repairs, bounds and refusals. */
describe('anti-entropy (in memory)', function () {
  this.timeout(30_000);
  let cluster: MemoryCluster;
  afterEach(() => cluster?.stop());

  const ping = (id: string) => cluster.request<PingReply>(s.ping(id), '');
  const allInSync = async () => {
    for (const id of cluster.ids) {
      const ae = (await ping(id)).antiEntropy;
      if (ae.ranges.length !== cluster.ids.length - 1 || !ae.ranges.every((r) => r.inSync === true)) return false;
    }
    return true;
  };

  it('refills a wiped replica with no client reads, and reports the ranges back in sync', async () => {
    cluster = await new MemoryCluster(['n1', 'n2', 'n3'], AE).start();
    for (let i = 0; i < 300; i++) expect(await cluster.request(s.kv('put'), { key: `k${i}`, value: i, w: 3 })).to.have.property('ok', true);
    await waitFor(allInSync, 10_000, 'ranges in sync');
    cluster.storages.get('n3')!.wipe();
    await waitFor(async () => (await cluster.storages.get('n3')!.keyCount()) === 300, 10_000, 'n3 refilled');
    for (let i = 0; i < 300; i++) expect((await cluster.storages.get('n3')!.read('default', `k${i}`))[0]!.v).to.equal(String(i));
    await waitFor(allInSync, 10_000, 'ranges back in sync');
    const repaired = (await Promise.all(cluster.ids.map(async (id) => (await ping(id)).antiEntropy.keysRepaired))).reduce((a, b) => a + b, 0);
    expect(repaired).to.be.at.least(300);
  });

  it('sends only the roots between equal replicas', async () => {
    cluster = await new MemoryCluster(['n1', 'n2', 'n3'], AE).start();
    for (let i = 0; i < 50; i++) await cluster.request(s.kv('put'), { key: `k${i}`, value: i, w: 3 });
    await waitFor(allInSync, 10_000, 'ranges in sync');
    const before = (await ping('n1')).antiEntropy;
    await waitFor(async () => (await ping('n1')).antiEntropy.exchanges >= before.exchanges + 4, 10_000, 'four more exchanges');
    const after = (await ping('n1')).antiEntropy;
    // Each exchange of equal trees compares the root and nothing else.
    expect(after.treeNodesVisited - before.treeNodesVisited).to.equal(after.exchanges - before.exchanges);
    expect(after.keysRepaired).to.equal(before.keysRepaired);
    for (const r of after.ranges) expect(r.bytes, `bytes of the last exchange with ${r.peer}`).to.be.below(400);
  });

  it('carries a delete to a replica that missed it, and the value does not come back', async () => {
    cluster = await new MemoryCluster(['n1', 'n2', 'n3'], AE).start();
    await cluster.request(s.kv('put'), { key: 'gone', value: 'v', w: 3 });
    const n3 = cluster.storages.get('n3')!;
    const beforeDelete = await n3.read('default', 'gone');
    const got = await cluster.request<{ context: string }>(s.kv('get'), { key: 'gone', r: 3 });
    await cluster.request(s.kv('delete'), { key: 'gone', context: got.context, w: 3 });
    const tomb = await cluster.storages.get('n1')!.read('default', 'gone');
    expect(tomb.map((v) => v.v)).to.deep.equal([undefined]);
    // n3 missed the delete: it holds the value as it was before.
    n3.wipe();
    await n3.apply('default', 'gone', beforeDelete);
    await waitFor(async () => (await n3.read('default', 'gone')).every((v) => v.v === undefined), 10_000, 'tombstone on n3');
    expect((await n3.read('default', 'gone')).map((v) => v.d)).to.deep.equal(tomb.map((v) => v.d));
    for (const id of ['n1', 'n2']) expect((await cluster.storages.get(id)!.read('default', 'gone')).map((v) => v.d)).to.deep.equal(tomb.map((v) => v.d));
    expect(await cluster.request(s.kv('get'), { key: 'gone', r: 3 })).to.deep.include({ ok: true, found: false });
  });

  it('refuses exchanges beyond its bound, malformed requests, and other rings', async () => {
    cluster = await new MemoryCluster(['n1', 'n2', 'n3'], { antiEntropyIntervalMs: 0, antiEntropyMaxExchanges: 1 }).start();
    const open = (x: string, ring: string) =>
      cluster.request<{ ok: boolean; h?: string; error?: { code: string; reason?: string } }>(s.antiEntropy('n2'), {
        op: 'tree',
        x,
        from: 'n1',
        ring,
        level: 0,
      });
    const wrong = await open('a', 'not-the-ring');
    expect(wrong.error).to.deep.include({ code: 'UNAVAILABLE', reason: 'ring' });
    const status = await cluster.request<{ members: unknown[] }>(s.status, '');
    expect(status.members).to.have.length(3);
    const { ringFingerprint } = await import('../../src/merkle/index.js');
    const fp = ringFingerprint(cluster.nodes.get('n2')!.gossiper.ring(), 3);
    expect(await open('first', fp)).to.have.property('ok', true);
    expect((await open('second', fp)).error).to.deep.include({ code: 'UNAVAILABLE', reason: 'busy' });
    expect(await cluster.request(s.antiEntropy('n2'), { op: 'end', x: 'first' })).to.have.property('ok', true);
    expect(await open('second', fp)).to.have.property('ok', true);
    expect((await cluster.request<{ error: { reason: string } }>(s.antiEntropy('n2'), { op: 'keys', x: 'never-opened', segments: [1] })).error.reason).to.equal(
      'session',
    );
    for (const bad of [
      { op: 'tree', x: 'b', from: 'n1', ring: fp, level: 5 },
      { op: 'tree', x: 'b', level: 1, parents: [1] },
      { op: 'tree', x: 'b', level: 2, parents: [] },
      { op: 'keys', x: 'second', segments: [65536] },
      { op: 'keys', x: 'second', segments: Array.from({ length: 257 }, (_, i) => i) },
      { op: 'fetch', x: 'second', keys: Array.from({ length: 257 }, (_, i) => `default:k${i}`) },
      { op: 'tree', x: 'second', level: 4, parents: Array.from({ length: 1025 }, (_, i) => i) },
      { op: 'fetch', x: 'second', keys: ['no-colon'] },
      { op: 'nope', x: 'b' },
      { x: 'b' },
      [],
    ]) {
      expect((await cluster.request<{ error: { code: string } }>(s.antiEntropy('n2'), bad)).error.code, JSON.stringify(bad)).to.equal('BAD_REQUEST');
    }
    expect((await ping('n1')).antiEntropy).to.deep.include({ enabled: false, state: 'stopped' });
  });
});
