import { expect } from 'chai';
import { nodeConfig } from '../../src/config.js';
import { createNode } from '../../src/di/container.js';
import { silentLogger } from '../../src/di/tokens.js';
import { FAST_GOSSIP, MemoryCluster } from '../helpers/memory-cluster.js';
import { waitFor } from '../helpers/wait.js';
import type { DynamoNode } from '../../actors/node/dynamo-node.js';

/** A node's actors in two "processes" on the in-memory network, sharing the node's store. */
describe('actors of one node placed apart (in memory)', function () {
  this.timeout(20_000);
  let cluster: MemoryCluster;
  let apart: DynamoNode;
  let second: DynamoNode | null = null;

  beforeEach(async () => {
    cluster = await new MemoryCluster(['n1', 'n2', 'n3'], { actors: ['node', 'coordinator', 'gossiper'] }).start();
    apart = createNode(nodeConfig({ nodeId: 'n1', natsUrl: 'memory', redisUrl: 'memory', actors: ['anti-entropy'], ...FAST_GOSSIP }), {
      transport: cluster.network.transport(),
      storage: cluster.storages.get('n1')!,
      logger: silentLogger,
    });
    await apart.start();
  });
  afterEach(async () => {
    await Promise.all([apart.stop(), second?.stop()]);
    second = null;
    await cluster.stop();
  });

  it("follows the node's gossiper: the same ring and members as the process that hosts it", async () => {
    await waitFor(() => apart.membership.ring().size === 3, 5000, 'the mirror to see three members');
    expect(apart.membership.ring().members).to.deep.equal(cluster.nodes.get('n1')!.gossiper.ring().members);
  });

  it('ignores anything published on the view subject that is not a view', async () => {
    await waitFor(() => apart.membership.ring().size === 3, 5000, 'the mirror to see three members');
    // A listener of our own, subscribed after the mirror: the in-memory network delivers each message to
    // its subscribers in order, so once this one has seen every piece of junk, the mirror has handled it too.
    const junk = [
      '{}',
      'null',
      '{"members":[],"table":[{"id":"x","weight":99999}],"metrics":{}}',
      '{"members":[{"id":"n1"}],"table":[],"metrics":{}}',
      'not json',
    ];
    let delivered = 0;
    const sub = cluster.network.transport().subscribe('dynamo.node.n1.membership.view', (m) => {
      if (junk.includes(Buffer.from(m.data).toString())) delivered++;
    });
    for (const text of junk) {
      cluster.network.transport().publish('dynamo.node.n1.membership.view', text);
    }
    await waitFor(() => delivered === junk.length, 5000, 'every piece of junk delivered');
    sub.unsubscribe();
    expect(apart.membership.ring().size).to.equal(3);
    expect(apart.membership.isDown('n2')).to.equal(false);
  });

  it("takes changes to the node's entry only with the control token from the node's store", async () => {
    const ask = (body: unknown) => cluster.request<{ ok: boolean; error?: { code: string } }>('dynamo.node.n1.membership.control', body);
    for (const body of [{ op: 'setWeights', weight: 0, ringWeight: 0 }, { op: 'setWeights', weight: 0, ringWeight: 0, token: 'guess' }, { op: 'announce' }]) {
      expect((await ask(body)).error?.code, JSON.stringify(body)).to.equal('BAD_REQUEST');
    }
    expect(cluster.nodes.get('n1')!.gossiper.entry('n1')).to.include({ weight: 1, ringWeight: 1 });
    // A process of the node reads the token from the node's store.
    const token = await cluster.storages.get('n1')!.getMeta('control-token');
    expect(await ask({ op: 'announce', token })).to.have.property('ok', true);
  });

  it('refuses a second process for an actor of the node that is already running', async () => {
    second = createNode(nodeConfig({ nodeId: 'n1', natsUrl: 'memory', redisUrl: 'memory', actors: ['anti-entropy'], ...FAST_GOSSIP }), {
      transport: cluster.network.transport(),
      storage: cluster.storages.get('n1')!,
      logger: silentLogger,
    });
    const e = await second.start().catch((x: unknown) => x);
    expect((e as Error).message).to.match(/anti-entropy actor of node "n1" is already running in another process/);
  });
});
