import { expect } from 'chai';
import fc from 'fast-check';
import { MemoryCluster } from '../helpers/memory-cluster.js';
import { waitFor } from '../helpers/wait.js';

/** Node behaviour on the in-memory network and storage. */
describe('node (in memory)', () => {
  let cluster: MemoryCluster;
  beforeEach(async () => {
    cluster = await new MemoryCluster(['n1', 'n2', 'n3']).start();
  });
  afterEach(() => cluster.stop());

  it('stores a put on all three replicas and reads it back', async () => {
    const put = await cluster.request('dynamo.kv.put', { key: 'a', value: { x: 1 } });
    expect(put).to.have.property('ok', true);
    const got = await cluster.request('dynamo.kv.get', { key: 'a' });
    expect(got).to.deep.include({ ok: true, found: true, values: [{ x: 1 }] });
    for (const s of cluster.storages.values()) expect(await s.read('default', 'a')).to.have.length(1);
  });

  it('coordinates on a node outside the preference list by forwarding', async () => {
    const five = await new MemoryCluster(['m1', 'm2', 'm3', 'm4', 'm5'], { n: 2, r: 1, w: 2 }).start();
    try {
      for (let i = 0; i < 20; i++) {
        for (const id of five.ids) {
          const put = await five.request(`dynamo.node.${id}.kv.put`, { key: `k${i}`, value: i });
          expect(put, `put via ${id}`).to.have.property('ok', true);
        }
        const holders = [...five.storages.values()].filter((s) => s.keys().includes(`v:default:k${i}`));
        expect(holders).to.have.length(2);
      }
    } finally {
      await five.stop();
    }
  });

  it('answers every request exactly once and stores nothing, whatever the bytes', async () => {
    const subjects = ['get', 'put', 'delete'].flatMap((op) => [`dynamo.kv.${op}`, `dynamo.node.n2.kv.${op}`]);
    subjects.push('dynamo.kv.batch', 'dynamo.node.n2.kv.batch', 'dynamo.node.n3.coord.batch');
    subjects.push('dynamo.kv.cart.get', 'dynamo.kv.cart.put', 'dynamo.kv.cart.delete', 'dynamo.kv.mget', 'dynamo.kv.mput');
    subjects.push('dynamo.kv.keys', 'dynamo.kv.cart.keys', 'dynamo.node.n2.keys', 'dynamo.node.n3.watch.since');
    subjects.push('dynamo.admin.restore', 'dynamo.node.n1.admin.backup');
    subjects.push(
      'dynamo.node.n1.replica.put',
      'dynamo.node.n1.replica.get',
      'dynamo.node.n2.replica.reap',
      'dynamo.node.n1.gossip',
      'dynamo.node.n2.handoff.pull',
    );
    subjects.push('dynamo.node.n3.ae', 'dynamo.node.n3.replica.compact');
    // Every other subject a node answers: membership between a node's processes, admin, faults (refused
    // here: no --allow-faults). Not admin.leave, whose every request is a real order to leave, nor the
    // every-node faults subject, which only nodes started with --allow-faults answer.
    subjects.push('dynamo.node.n1.membership.get', 'dynamo.node.n2.membership.control');
    subjects.push('dynamo.node.n1.admin.ping', 'dynamo.node.n2.admin.status', 'dynamo.admin.status', 'dynamo.admin.ring');
    subjects.push('dynamo.admin.bucket.set', 'dynamo.admin.bucket.get', 'dynamo.admin.bucket.list');
    subjects.push('dynamo.node.n3.admin.faults', 'dynamo.node.n3.replica.inspect');
    const junkJson = fc.oneof(
      fc.record(
        {
          op: fc.constantFrom('tree', 'keys', 'fetch', 'end', 'x'),
          x: fc.oneof(fc.string(), fc.jsonValue()),
          from: fc.jsonValue(),
          ring: fc.jsonValue(),
          level: fc.oneof(fc.integer({ min: -1, max: 5 }), fc.jsonValue()),
          parents: fc.oneof(fc.array(fc.integer({ min: -1, max: 5000 })), fc.jsonValue()),
          segments: fc.jsonValue(),
          keys: fc.jsonValue(),
        },
        { requiredKeys: ['op'] },
      ),
      fc.jsonValue(),
      fc.record(
        {
          key: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
          r: fc.jsonValue(),
          w: fc.jsonValue(),
          context: fc.jsonValue(),
          timeoutMs: fc.jsonValue(),
        },
        { requiredKeys: [] },
      ),
      fc.record(
        {
          items: fc.array(fc.record({ b: fc.jsonValue(), k: fc.jsonValue(), x: fc.jsonValue() }, { requiredKeys: [] })),
          apply: fc.oneof(fc.boolean(), fc.jsonValue()),
        },
        { requiredKeys: ['items'] },
      ),
      // Key listings: a client's, and a node's part of one.
      fc.record(
        {
          bucket: fc.oneof(fc.constantFrom('cart', 'default'), fc.jsonValue()),
          prefix: fc.oneof(fc.string(), fc.jsonValue()),
          cursor: fc.oneof(fc.base64String(), fc.jsonValue()),
          limit: fc.oneof(fc.integer({ min: -1, max: 1002 }), fc.jsonValue()),
          after: fc.oneof(fc.string(), fc.constant(null), fc.jsonValue()),
          segments: fc.oneof(fc.array(fc.tuple(fc.integer({ min: -1, max: 70_000 }), fc.integer({ min: -1, max: 70_000 })), { maxLength: 20 }), fc.jsonValue()),
        },
        { requiredKeys: [] },
      ),
      // mget and mput bodies: near-valid and junk keys and items.
      fc.record(
        {
          keys: fc.oneof(fc.array(fc.oneof(fc.string(), fc.jsonValue()), { maxLength: 40 }), fc.jsonValue()),
          items: fc.oneof(fc.array(fc.oneof(fc.record({ key: fc.string(), value: fc.jsonValue() }), fc.jsonValue()), { maxLength: 40 }), fc.jsonValue()),
          bucket: fc.oneof(fc.constantFrom('cart', 'default'), fc.jsonValue()),
          r: fc.jsonValue(),
          w: fc.jsonValue(),
        },
        { requiredKeys: [] },
      ),
      // Batches of client requests: good and bad operations, junk and near-valid bodies.
      fc.record({
        items: fc.array(
          fc.oneof(
            fc.tuple(
              fc.constantFrom('get', 'put', 'delete', 'x'),
              fc.oneof(fc.jsonValue(), fc.record({ key: fc.oneof(fc.string(), fc.jsonValue()), r: fc.jsonValue(), w: fc.jsonValue() }, { requiredKeys: [] })),
            ),
            fc.jsonValue(),
          ),
          { maxLength: 300 },
        ),
      }),
    );
    const payload = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      junkJson.map((j) => new TextEncoder().encode(JSON.stringify(j) ?? '')),
    );
    const replyCounts: number[] = [];
    const snapshot = async () =>
      JSON.stringify(
        await Promise.all(
          [...cluster.storages.values()].map((s) => Promise.all(s.keys().map((k) => s.readRaw(k.split(':')[1]!, k.split(':').slice(2).join(':'))))),
        ),
      );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...subjects), payload, async (subject, data) => {
        const before = await snapshot();
        const i = replyCounts.push(0) - 1;
        let listeners = 0;
        const reply = await new Promise<Record<string, unknown>>((resolve) => {
          listeners = cluster.network.deliver(subject, data, (r) => {
            replyCounts[i]!++;
            resolve(JSON.parse(typeof r === 'string' ? r : new TextDecoder().decode(r)) as Record<string, unknown>);
          });
          // A subject no node listens on any more would hang here: say which.
          if (listeners === 0) resolve({ unheard: subject });
          // A request left unanswered fails the property with its subject, rather than the whole test by timeout.
          setTimeout(() => resolve({ unanswered: subject }), 3000).unref();
        });
        expect(listeners, `${subject} has a listener`).to.be.greaterThan(0);
        // membership.get answers with the view itself; every other subject with ok true or false.
        if (subject.endsWith('.membership.get')) expect(reply).to.have.property('members');
        else expect(reply).to.have.property('ok').that.is.a('boolean');
        // A rejected request leaves every replica as it was.
        if (reply['ok'] === false) expect(await snapshot()).to.equal(before);
      }),
      { numRuns: 800 },
    );
    // Once every coordinator is idle, no request may have been answered twice.
    await waitFor(() => [...cluster.nodes.values()].every((n) => n.inFlight === 0));
    expect(replyCounts.filter((c) => c !== 1)).to.deep.equal([]);
  });

  it('reports status and ring for every member', async () => {
    const status = await cluster.request<{ members: { id: string; state: string }[] }>('dynamo.admin.status', '');
    expect(status.members.map((m) => [m.id, m.state])).to.deep.equal([
      ['n1', 'up'],
      ['n2', 'up'],
      ['n3', 'up'],
    ]);
    const ring = await cluster.request<{ tokens: [number, string][] }>('dynamo.admin.ring', '');
    expect(ring.tokens).to.have.length(3 * 256);
  });

  it("answers UNAVAILABLE on a stopped node's own subject only by having no subscription left", async () => {
    await cluster.nodes.get('n3')!.stop();
    expect(cluster.nodes.get('n3')!.state).to.equal('stopped');
    const err = await cluster.client.request('dynamo.node.n3.kv.get', '{"key":"a"}', 500).then(
      () => null,
      (e: Error & { kind?: string }) => e.kind,
    );
    expect(err).to.equal('no-responders');
  });
});

describe('gossip input (in memory)', () => {
  let cluster: MemoryCluster;
  before(async () => {
    cluster = await new MemoryCluster(['g1', 'g2']).start();
  });
  after(() => cluster.stop());

  it('drops malformed gossip and gossip from another cluster, counts both, and keeps serving', async () => {
    const bad = await cluster.request<{ ok: boolean }>('dynamo.node.g1.gossip', '{"members": "nope"}');
    expect(bad.ok).to.equal(false);
    const junk = await cluster.request<{ ok: boolean }>('dynamo.node.g1.gossip', 'not json');
    expect(junk.ok).to.equal(false);
    const foreign = await cluster.request<{ ok: boolean }>('dynamo.node.g1.gossip', {
      cluster: 'other',
      from: 'x1',
      members: [{ id: 'x1', generation: 1, heartbeat: 1, weight: 1, ringWeight: 1 }],
    });
    expect(foreign.ok).to.equal(false);
    // A table whose ring would be too big to build (100 members of weight 64) is refused whole.
    const huge = Array.from({ length: 100 }, (_, i) => ({ id: `big${i}`, generation: 1, heartbeat: 1, weight: 64, ringWeight: 64 }));
    expect((await cluster.request<{ ok: boolean }>('dynamo.node.g1.gossip', { cluster: 'dynamo', from: 'big0', members: huge })).ok).to.equal(false);
    const g1 = cluster.nodes.get('g1')!;
    expect(g1.gossiper.metrics).to.include({ droppedMalformed: 3, droppedForeignCluster: 1 });
    expect(
      g1.gossiper
        .table()
        .map((m) => m.id)
        .sort(),
    ).to.deep.equal(['g1', 'g2']);
    expect(g1.state).to.equal('serving');
    expect(await cluster.request('dynamo.kv.put', { key: 'still', value: 1 })).to.have.property('ok', true);
  });

  it('a node whose seed does not answer keeps retrying and says so', async () => {
    const lines: string[] = [];
    const { createNode } = await import('../../src/di/container.js');
    const { nodeConfig } = await import('../../src/config.js');
    const { MemoryStorage } = await import('../../src/storage/memory-storage.js');
    const lonely = createNode(
      nodeConfig({ nodeId: 'lonely', natsUrl: 'memory', redisUrl: 'memory', seeds: ['nobody'], gossipIntervalMs: 50, suspectAfterMs: 300, downAfterMs: 600 }),
      {
        transport: cluster.network.transport(),
        storage: new MemoryStorage(),
        logger: { info: () => {}, warn: (m) => lines.push(m), error: (m) => lines.push(m) },
      },
    );
    const starting = lonely.start().catch((e: Error) => e);
    await waitFor(() => lines.length >= 2, 5000, 'two retry messages');
    expect(lines[0]).to.match(/no seed \(nobody\) answered; retrying/);
    expect(lonely.state).to.equal('booting');
    await lonely.stop();
    expect(await starting).to.be.instanceOf(Error);
  });
});

describe('leaving (in memory)', () => {
  it('refuses to let the last node of the ring leave, and it keeps serving', async () => {
    const solo = await new MemoryCluster(['s1']).start();
    try {
      await solo.request('dynamo.kv.put', { key: 'only-copy', value: 1, w: 1 });
      const r = await solo.request<{ ok: boolean; error: { message: string } }>('dynamo.node.s1.admin.leave', '');
      expect(r.ok).to.equal(false);
      expect(r.error.message).to.match(/last live node/);
      const e = await solo.nodes
        .get('s1')!
        .leave()
        .catch((x: Error) => x);
      expect(e).to.be.instanceOf(Error);
      expect(solo.nodes.get('s1')!.state).to.equal('serving');
      expect(await solo.request('dynamo.kv.get', { key: 'only-copy', r: 1 })).to.deep.include({ values: [1] });
    } finally {
      await solo.stop();
    }
  });
});
