import { expect } from 'chai';
import { RedisStorage } from '../../src/storage/redis-storage.js';
import { runCli } from '../helpers/cli.js';
import { FAULT_NODE_ARGS, ProcessCluster } from '../helpers/process-cluster.js';
import { waitFor } from '../helpers/wait.js';

const KEYS = 2000;

type Multi = { ok: boolean; results: { ok: boolean; found?: boolean; values?: unknown[]; error?: { code: string; acks?: number } }[] };

/** A write refused before any replica wrote it: too few replicas up, as this node saw it. */
const refusedUnwritten = (x: Multi['results'][number]) => x.error?.code === 'QUORUM_NOT_MET' && x.error.acks === 0;

describe('removing a dead node (real processes, the CLI)', function () {
  this.timeout(240_000);
  let c: ProcessCluster;
  const keys = Array.from({ length: KEYS }, (_, i) => `k${i}`);
  const later = Array.from({ length: 200 }, (_, i) => `late${i}`);

  before(async () => {
    c = await new ProcessCluster(['n1', 'n2', 'n3', 'n4'], [...FAULT_NODE_ARGS, '--anti-entropy-interval', '300']).start();
    for (let i = 0; i < KEYS; i += 500) {
      // Setup, not the subject: time enough that a busy replica is waited for, not passed over for another (which would write the key twice),
      // and items sent again if they were refused unwritten (acks 0) while a busy node was briefly taken for down by the test's quick
      // failure detector (600 ms). Any other failure stays a failure: a write retried after a partial one could leave two versions.
      let items = keys.slice(i, i + 500).map((key) => ({ key, value: key }));
      let failed: Multi['results'] = [];
      for (let attempt = 0; attempt < 5 && items.length > 0; attempt++) {
        const r = await c.request<Multi>('dynamo.kv.mput', { items, w: 3, timeoutMs: 10_000 }, 20_000);
        failed = r.results.filter((x) => !x.ok && !refusedUnwritten(x));
        if (failed.length > 0) break;
        items = items.filter((_, n) => !r.results[n]?.ok);
      }
      expect(failed.slice(0, 3)).to.deep.equal([]);
      expect(items.map((it) => it.key).slice(0, 3), 'keys refused after 5 attempts').to.deep.equal([]);
    }
  });
  after(() => c?.stop());

  /** What one node's Redis holds for each key: its value, or null. */
  async function heldBy(id: string, names: readonly string[]): Promise<(string | null)[]> {
    const s = new RedisStorage(c.redis.get(id)!.url);
    try {
      const raws = await s.readRawMany(names.map((key) => ({ bucket: 'default', key })));
      return raws.map((raw) => {
        const live = raw === null ? [] : (JSON.parse(raw) as { v?: string }[]).filter((v) => v.v !== undefined);
        return live.length === 1 ? JSON.parse(live[0]!.v!) : null;
      });
    } finally {
      await s.close();
    }
  }

  it('refuses to remove a live node or an unknown one; a SIGKILLed node removed leaves every range on N replicas and every key readable', async () => {
    await c.killNode('n4');
    await waitFor(
      async () =>
        (await c.ping('n1'))?.state === 'serving' &&
        (await c.request<{ members: { id: string; state: string }[] }>('dynamo.admin.status', {}, 5000)).members.find((m) => m.id === 'n4')?.state === 'down',
      20_000,
      'n4 seen down',
    );
    // Writes while n4 is down: fallbacks keep hints for it.
    const r = await c.request<Multi>('dynamo.kv.mput', { items: later.map((key) => ({ key, value: key })), w: 2 }, 20_000);
    expect(r.results.every((x) => x.ok)).to.equal(true);
    const hints = async () => {
      let sum = 0;
      for (const id of ['n1', 'n2', 'n3']) sum += (await c.ping(id))?.hints.pending ?? 0;
      return sum;
    };
    expect(await hints()).to.be.greaterThan(0);

    const live = await runCli(['remove', 'n1'], c.nats.url);
    expect(live.code).to.equal(1);
    expect(live.out).to.match(/n1 is not down/);
    const unknown = await runCli(['remove', 'n9'], c.nats.url);
    expect(unknown.code).to.equal(1);
    expect(unknown.out).to.match(/not a member/);

    // The plan first: n4 replicates about 3/4 of the ring (N=3 of 4 nodes), and nothing changes.
    const plan = await runCli(['plan', 'remove', 'n4'], c.nats.url);
    expect(plan.code, plan.err + plan.out).to.equal(0);
    const n4row = plan.out
      .split('\n')
      .find((l) => l.startsWith('n4 '))!
      .split(/\s+/);
    expect(Number.parseFloat(n4row[3]!)).to.be.within(60, 90);
    expect((await c.request<{ members: { id: string }[] }>('dynamo.admin.ring', {})).members.map((m) => m.id)).to.include('n4');
    const removed = await runCli(['remove', 'n4'], c.nats.url);
    expect(removed.code, removed.err + removed.out).to.equal(0);
    expect(removed.out).to.match(/n4 removed; every range is back to its replicas and in sync/);
    expect(removed.err).to.match(/syncing/);
    for (const id of ['n1', 'n2', 'n3']) {
      const ring = await c.request<{ members: { id: string }[] }>(`dynamo.node.${id}.admin.status`, {}, 5000);
      expect(ring.members.find((m) => m.id === 'n4')).to.deep.include({ state: 'left' });
    }
    // Three nodes, N=3: every node now holds every key, with no client read.
    const all = [...keys, ...later];
    for (const id of ['n1', 'n2', 'n3']) {
      await waitFor(async () => (await heldBy(id, all)).every((v, i) => v === all[i]), 60_000, `every key on ${id}`);
    }
    // Hints held for n4 went to the keys' replicas and are gone.
    await waitFor(async () => (await hints()) === 0, 20_000, 'hints for n4 settled');
    const read = await c.request<Multi>('dynamo.kv.mget', { keys: later, r: 3 }, 20_000);
    expect(read.results.map((x) => x.values?.[0])).to.deep.equal(later);
    // Removing it again is refused.
    const again = await runCli(['remove', 'n4'], c.nats.url);
    expect(again.code).to.equal(1);
    expect(again.out).to.match(/already left/);
  });

  it("replaces a dead node with a new one: every key on the new ring's replicas", async () => {
    await c.killNode('n3');
    await waitFor(
      async () =>
        (await c.request<{ members: { id: string; state: string }[] }>('dynamo.admin.status', {}, 5000)).members.find((m) => m.id === 'n3')?.state === 'down',
      20_000,
      'n3 seen down',
    );
    const early = await runCli(['replace', 'n3', 'n5'], c.nats.url);
    expect(early.code).to.equal(1);
    expect(early.out).to.match(/n5 is not a member yet/);
    await c.addNode('n5');
    const replaced = await runCli(['replace', 'n3', 'n5'], c.nats.url);
    expect(replaced.code, replaced.err + replaced.out).to.equal(0);
    expect(replaced.out).to.match(/n5 joined and n3 was removed/);
    const all = [...keys, ...later];
    for (const id of ['n1', 'n2', 'n5']) {
      await waitFor(async () => (await heldBy(id, all)).every((v, i) => v === all[i]), 60_000, `every key on ${id}`);
    }
    const read = await c.request<Multi>('dynamo.kv.mget', { keys: keys.slice(0, 1000), r: 3 }, 20_000);
    expect(read.results.map((x) => x.values?.[0])).to.deep.equal(keys.slice(0, 1000));
  });
});
