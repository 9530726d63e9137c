import { expect } from 'chai';
import type { Version } from '../../src/versioning/index.js';
import { RealCluster } from '../helpers/real-cluster.js';
import { waitFor } from '../helpers/wait.js';

type Reply = { ok: boolean; found?: boolean; values?: unknown[]; context?: string | null; keys?: string[]; error?: { code: string; field?: string } };

describe('time to live (real nats-server and redis-servers)', function () {
  this.timeout(120_000);
  let c: RealCluster;
  const ids = ['n1', 'n2', 'n3'];

  before(async () => {
    c = await new RealCluster(ids, { antiEntropyIntervalMs: 300 }).start();
  });
  after(() => c?.stop());

  /** What each replica's Redis holds for a key. */
  async function held(key: string, bucket = 'default'): Promise<Map<string, Version[]>> {
    const out = new Map<string, Version[]>();
    for (const id of ids) {
      const s = c.storage(id);
      try {
        out.set(id, await s.read(bucket, key));
      } finally {
        await s.close();
      }
    }
    return out;
  }
  const noValueAnywhere = async (key: string, bucket = 'default') =>
    [...(await held(key, bucket)).values()].every((versions) => versions.length > 0 && versions.every((v) => v.v === undefined));

  it('a value written with ttlMs reads back until it expires, then is gone: from reads, listings and, once reaped, every replica', async () => {
    expect((await c.request<Reply>('dynamo.kv.put', { key: 'session:a', value: { u: 'ann' }, ttlMs: 1500, w: 3 })).ok).to.equal(true);
    expect((await c.request<Reply>('dynamo.kv.put', { key: 'session:b', value: 'kept', w: 3 })).ok).to.equal(true);
    const before = await c.request<Reply>('dynamo.kv.get', { key: 'session:a' });
    expect(before).to.deep.include({ found: true, values: [{ u: 'ann' }] });
    // Its expiry is part of the version every replica holds.
    for (const versions of (await held('session:a')).values()) expect(versions[0]?.x).to.be.a('number');
    await waitFor(async () => (await c.request<Reply>('dynamo.kv.get', { key: 'session:a', r: 3 })).found === false, 10_000, 'session:a expired');
    expect((await c.request<Reply>('dynamo.kv.keys', { prefix: 'session:' })).keys).to.deep.equal(['session:b']);
    // The reaper drops the value and keeps a tombstone of the same dot on every replica.
    await waitFor(() => noValueAnywhere('session:a'), 10_000, 'session:a reaped on every replica');
    expect((await c.request<Reply>('dynamo.kv.get', { key: 'session:b' })).values).to.deep.equal(['kept']);
    // A put after the expiry writes the key afresh; so does a create-only put.
    expect((await c.request<Reply>('dynamo.kv.put', { key: 'session:a', value: 'again', ifNoneMatch: true })).ok).to.equal(true);
    expect((await c.request<Reply>('dynamo.kv.get', { key: 'session:a' })).values).to.deep.equal(['again']);
  });

  it('an expired value stays gone when a replica that missed the write comes back holding an older value, after anti-entropy', async () => {
    expect((await c.request<Reply>('dynamo.kv.put', { key: 'cart', value: 'old, no ttl', w: 3 })).ok).to.equal(true);
    await c.stopNode('n3');
    await waitFor(() => c.nodes.get('n1')!.gossiper.isDown('n3'), 20_000, 'n1 sees n3 down');
    const read = await c.request<Reply>('dynamo.kv.get', { key: 'cart' });
    expect((await c.request<Reply>('dynamo.kv.put', { key: 'cart', value: 'new, short-lived', ttlMs: 1000, context: read.context, w: 2 })).ok).to.equal(true);
    // n1 and n2 reap it: tombstones of the new version, which supersede the old one.
    await waitFor(
      async () => {
        const h = await held('cart');
        return ['n1', 'n2'].every((id) => h.get(id)!.length === 1 && h.get(id)![0]!.v === undefined);
      },
      15_000,
      'the short-lived value reaped on n1 and n2',
    );
    expect((await held('cart')).get('n3')!.map((v) => v.v)).to.deep.equal(['"old, no ttl"']);
    await c.startNode('n3');
    // With no client read: anti-entropy brings n3 the tombstone, which supersedes its old value.
    await waitFor(() => noValueAnywhere('cart'), 30_000, 'n3 repaired by anti-entropy');
    expect(await c.request<Reply>('dynamo.kv.get', { key: 'cart', r: 3 })).to.deep.include({ ok: true, found: false });
    expect((await c.request<Reply>('dynamo.kv.keys', { prefix: 'cart', r: 3 })).keys).to.deep.equal([]);
  });

  it("a bucket's ttlMs applies to puts that give none; a put's own wins", async () => {
    expect((await c.request<Reply>('dynamo.admin.bucket.set', { bucket: 'sessions', ttlMs: 1000 })).ok).to.equal(true);
    await waitFor(() => [...c.nodes.values()].every((n) => n.buckets.props('sessions').ttlMs === 1000), 10_000, 'every node knows the bucket');
    expect((await c.request<Reply>('dynamo.kv.put', { bucket: 'sessions', key: 'short', value: 1 })).ok).to.equal(true);
    expect((await c.request<Reply>('dynamo.kv.put', { bucket: 'sessions', key: 'long', value: 2, ttlMs: 60_000 })).ok).to.equal(true);
    await waitFor(async () => (await c.request<Reply>('dynamo.kv.get', { bucket: 'sessions', key: 'short' })).found === false, 10_000, 'short expired');
    expect((await c.request<Reply>('dynamo.kv.get', { bucket: 'sessions', key: 'long' })).values).to.deep.equal([2]);
    expect((await c.request<Reply>('dynamo.admin.bucket.set', { bucket: 'sessions', ttlMs: 0 })).ok).to.equal(true);
    await waitFor(() => [...c.nodes.values()].every((n) => n.buckets.props('sessions').ttlMs === undefined), 10_000, 'ttl cleared');
  });

  it('refuses a bad ttlMs with BAD_REQUEST and stores nothing', async () => {
    for (const ttlMs of [0, -5, 1.5, 'soon', 366 * 24 * 3600 * 1000]) {
      const r = await c.request<Reply>('dynamo.kv.put', { key: 'bad-ttl', value: 1, ttlMs });
      expect(r.error, String(ttlMs)).to.deep.include({ code: 'BAD_REQUEST', field: 'ttlMs' });
    }
    expect((await c.request<Reply>('dynamo.kv.delete', { key: 'bad-ttl', ttlMs: 100 })).error?.code).to.equal('BAD_REQUEST');
    expect((await c.request<Reply>('dynamo.admin.bucket.set', { bucket: 'x', ttlMs: -1 })).error?.code).to.equal('BAD_REQUEST');
    for (const versions of (await held('bad-ttl')).values()) expect(versions).to.deep.equal([]);
  });
});
