import { expect } from 'chai';
import { DynamoClient } from '../../src/client/client.js';
import type { Watch, WatchItem } from '../../src/client/watch.js';
import { compareChangeIds, type ChangeEvent } from '../../src/protocol/changes.js';
import { RealCluster } from '../helpers/real-cluster.js';
import { waitFor } from '../helpers/wait.js';

type Reply = { ok: boolean; context?: string; error?: { code: string; field?: string } };

/** Take a watch's items into `into` until it ends. */
function collect(watch: Watch, into: WatchItem[]): Promise<void> {
  return (async () => {
    for await (const e of watch) into.push(e);
  })();
}

const isChange = (e: WatchItem): e is ChangeEvent => e.op === 'put' || e.op === 'delete';

/** Wait until the watch is in place (it has its starting positions): a probe write shows up in `items`. */
function inPlace(client: DynamoClient, items: readonly WatchItem[], probe: string): Promise<void> {
  return waitFor(
    async () => {
      await client.put(probe, 0);
      return items.some((e) => isChange(e) && e.key === probe);
    },
    10_000,
    'the watch in place',
  );
}

describe('watch (real nats-server and redis-servers)', function () {
  this.timeout(120_000);
  let c: RealCluster;
  let client: DynamoClient;

  before(async () => {
    c = await new RealCluster(['n1', 'n2', 'n3']).start();
    client = await DynamoClient.connect(c.nats.url, { batch: false });
  });
  after(async () => {
    await client?.close();
    await c?.stop();
  });

  it('sees every acknowledged put and delete at least once, with its value and context, in order per node', async () => {
    const watch = client.watch({ prefix: 'w:', reconcileMs: 200 });
    const items: WatchItem[] = [];
    const done = collect(watch, items);
    await inPlace(client, items, 'w:probe');
    const acked: { op: 'put' | 'delete'; key: string; context: string | null; value?: number }[] = [];
    // Writes through every node's own subject, so all three coordinate some.
    for (let i = 0; i < 150; i++) {
      const node = `n${(i % 3) + 1}`;
      const key = `w:${i % 40}`;
      const put = await c.request<Reply>(`dynamo.node.${node}.kv.put`, { key, value: i });
      if (put.ok) acked.push({ op: 'put', key, context: put.context ?? null, value: i });
      if (i % 10 === 9) {
        const del = await c.request<Reply>(`dynamo.node.${node}.kv.delete`, { key, context: put.context });
        if (del.ok) acked.push({ op: 'delete', key, context: null });
      }
    }
    expect(acked.length).to.equal(165);
    // A write outside the prefix is not shown.
    expect((await c.request<Reply>('dynamo.kv.put', { key: 'elsewhere', value: 1 })).ok).to.equal(true);
    const seenPut = (a: (typeof acked)[number]) =>
      items.some((e) => isChange(e) && e.op === 'put' && e.key === a.key && e.context === a.context && e.values[0] === a.value);
    const seenDelete = (a: (typeof acked)[number]) => items.some((e) => isChange(e) && e.op === 'delete' && e.key === a.key);
    await waitFor(() => acked.every((a) => (a.op === 'put' ? seenPut(a) : seenDelete(a))), 15_000, 'every acknowledged write seen');
    expect(items.filter((e) => isChange(e) && !e.key.startsWith('w:'))).to.deep.equal([]);
    expect(items.filter((e) => e.op === 'lost')).to.deep.equal([]);
    // Per node, ids only increase (a duplicate would repeat one).
    for (const node of ['n1', 'n2', 'n3']) {
      const ids = items.filter((e): e is ChangeEvent => isChange(e) && e.node === node).map((e) => e.id);
      expect(ids.length, node).to.be.greaterThan(0);
      for (let i = 1; i < ids.length; i++) expect(compareChangeIds(ids[i - 1]!, ids[i]!), `${node} ${ids[i]}`).to.be.below(0);
    }
    watch.stop();
    await done;
  });

  it('resumes from its position after a disconnect: every write made meanwhile, none from before', async () => {
    const first = client.watch({ prefix: 'r:', reconcileMs: 200 });
    const before: WatchItem[] = [];
    const firstDone = collect(first, before);
    await inPlace(client, before, 'r:probe');
    // One write the first watch takes, and the position after it.
    await client.put('r:before', 1);
    await waitFor(() => before.some((e) => isChange(e) && e.key === 'r:before'), 10_000, 'r:before seen');
    const position = first.position();
    first.stop();
    await firstDone;
    const meanwhile: string[] = [];
    for (let i = 0; i < 60; i++) {
      const put = await c.request<Reply>(`dynamo.node.n${(i % 3) + 1}.kv.put`, { key: `r:${i}`, value: i });
      expect(put.ok).to.equal(true);
      meanwhile.push(`r:${i}`);
    }
    const second = client.watch({ prefix: 'r:', from: position, reconcileMs: 200 });
    const after: WatchItem[] = [];
    const secondDone = collect(second, after);
    await waitFor(() => meanwhile.every((k) => after.some((e) => isChange(e) && e.key === k)), 15_000, 'every write made meanwhile');
    expect(after.filter((e) => isChange(e) && e.key === 'r:before')).to.deep.equal([]);
    second.stop();
    await secondDone;
    expect(() => client.watch({ from: 'not a position' })).to.throw(TypeError);
  });

  it("says which node's events were lost when its log no longer holds them", async () => {
    const small = await new RealCluster(['s1'], { changeLogSize: 10 }).start();
    const solo = await DynamoClient.connect(small.nats.url, { batch: false });
    try {
      const first = solo.watch({ reconcileMs: 100 });
      const seen: WatchItem[] = [];
      const firstDone = collect(first, seen);
      await inPlace(solo, seen, 'probe');
      const position = first.position();
      first.stop();
      await firstDone;
      // Far more than the log keeps (Redis trims a stream in whole blocks of about 100 entries).
      for (let i = 0; i < 600; i += 100) {
        const results = await solo.putMany(Array.from({ length: 100 }, (_, j) => ({ key: `k${i + j}`, value: i + j })));
        expect(results.every((r) => r.ok)).to.equal(true);
      }
      const second = solo.watch({ from: position, reconcileMs: 100 });
      const items: WatchItem[] = [];
      const secondDone = collect(second, items);
      await waitFor(() => items.some((e) => e.op === 'lost'), 10_000, 'a lost marker');
      expect(items.find((e) => e.op === 'lost')).to.deep.include({ node: 's1' });
      second.stop();
      await secondDone;
    } finally {
      await solo.close();
      await small.stop();
    }
  });

  it('refuses bad watch.since requests with BAD_REQUEST', async () => {
    for (const body of [{ after: 'x' }, { limit: 0 }, { bucket: 'a/b' }, { prefix: 3 }, { other: 1 }, []]) {
      const r = await c.request<Reply>('dynamo.node.n1.watch.since', body);
      expect(r.error?.code, JSON.stringify(body)).to.equal('BAD_REQUEST');
    }
  });
});
