import { expect } from 'chai';
import { join } from 'node:path';
import { exited, startRedisServer } from '../../src/cli/servers.js';
import { RealCluster } from '../helpers/real-cluster.js';
import { waitFor } from '../helpers/wait.js';

describe('durability (real servers)', function () {
  this.timeout(60_000);
  let c: RealCluster;
  before(async () => {
    c = await new RealCluster(['n1', 'n2', 'n3']).start();
  });
  after(() => c?.stop());

  it("acknowledged writes survive kill -9 of a node's redis-server (append-only file) and it serves again", async () => {
    const keys = Array.from({ length: 300 }, (_, i) => `durable-${i}`);
    for (const key of keys) expect(await c.request<{ ok: boolean }>('dynamo.node.n1.kv.put', { key, value: key, w: 2 }), key).to.include({ ok: true });

    const redis = c.redis.get('n1')!;
    redis.child.kill('SIGKILL');
    await exited(redis.child);
    // Same port and folder: the node's connection comes back by itself.
    c.redis.set('n1', await startRedisServer(join(c.dir, 'n1'), redis.port));
    await waitFor(async () => (await c.keyCount('n1')) >= keys.length, 10_000, 'n1 reloaded its append-only file');
    const n1 = c.storage('n1');
    try {
      for (const key of keys)
        expect(
          (await n1.read('default', key)).map((v) => v.v),
          key,
        ).to.deep.equal([JSON.stringify(key)]);
    } finally {
      await n1.close();
    }
    await waitFor(async () => (await c.request<{ ok: boolean }>('dynamo.node.n1.kv.put', { key: 'after', value: 1, w: 3 })).ok, 10_000, 'n1 writes again');
  });
});
