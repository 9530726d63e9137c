import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { RealCluster } from '../helpers/real-cluster.js';
import { waitFor } from '../helpers/wait.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
/** Async, not spawnSync: the nodes answering live in this process. */
const dynamo = (nats: string, args: string[]) =>
  promisify(execFile)(process.execPath, [CLI, ...args, '--nats', nats], { encoding: 'utf8' }).then(
    (r) => ({ code: 0, out: r.stdout }),
    (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
  );

type Inspect = { ok: boolean; versions: { v?: string }[]; error?: { code: string } };

describe('fault injection (real servers)', function () {
  this.timeout(60_000);
  let c: RealCluster;
  before(async () => {
    c = await new RealCluster(['n1', 'n2', 'n3'], { allowFaults: true }).start();
  });
  after(() => c?.stop());

  it('partitions 2|1: the majority keeps taking W=2 writes, the cut-off replica misses them, and heals', async () => {
    const cut = await dynamo(c.nats.url, ['faults', 'partition', 'n1,n2', 'n3']);
    expect(cut.code, cut.out).to.equal(0);
    expect(cut.out).to.match(/^n3: \{"partition":\[\["n1","n2"\],\["n3"\]\]/m);
    await waitFor(() => c.nodes.get('n1')!.gossiper.isDown('n3') && c.nodes.get('n3')!.gossiper.isDown('n1'), 10_000, 'both sides see the cut');

    const keys = Array.from({ length: 30 }, (_, i) => `split-${i}`);
    for (const key of keys) {
      const r = await c.request<{ ok: boolean }>('dynamo.node.n1.kv.put', { key, value: key, w: 2 });
      expect(r, JSON.stringify(r)).to.include({ ok: true });
    }
    const missed = await c.request<Inspect>('dynamo.node.n3.replica.inspect', { key: keys[0] });
    expect(missed).to.deep.include({ ok: true, versions: [] });

    expect((await dynamo(c.nats.url, ['faults', 'heal'])).code).to.equal(0);
    // Every node must see every other again before an R=3 read can be coordinated anywhere.
    await waitFor(() => [...c.nodes.values()].every((n) => c.ids.every((id) => !n.gossiper.isDown(id))), 10_000, 'everyone sees everyone');
    for (const key of keys) expect(await c.request('dynamo.kv.get', { key, r: 3 }), key).to.deep.include({ ok: true, values: [key] });
    await waitFor(async () => (await c.request<Inspect>('dynamo.node.n3.replica.inspect', { key: keys[0] })).versions.length === 1, 5000, 'n3 repaired');
  });

  it('rejects malformed fault commands', async () => {
    const r = await c.request<{ ok: boolean; error: { code: string } }>('dynamo.node.n1.admin.faults', { partition: [['n1'], ['n1']] });
    expect(r.error.code).to.equal('BAD_REQUEST');
    expect((await c.request<{ error: { code: string } }>('dynamo.node.n1.admin.faults', { drop: 2 })).error.code).to.equal('BAD_REQUEST');
    expect((await dynamo(c.nats.url, ['faults', 'wobble'])).code).to.equal(2);
  });
});

describe('fault injection off (real servers)', function () {
  this.timeout(60_000);
  let c: RealCluster;
  before(async () => {
    c = await new RealCluster(['n1']).start();
  });
  after(() => c?.stop());

  it('is refused unless the node was started with --allow-faults', async () => {
    const r = await c.request<{ ok: boolean; error: { message: string } }>('dynamo.node.n1.admin.faults', { heal: true });
    expect(r.ok).to.equal(false);
    expect(r.error.message).to.match(/--allow-faults/);
    expect((await c.request<Inspect>('dynamo.node.n1.replica.inspect', { key: 'k' })).ok).to.equal(false);
  });
});
