import { expect } from 'chai';
import { subjects } from '../../src/protocol/subjects.js';
import { appResolver } from '../../src/resolvers/index.js';
import { MAX_SIBLINGS } from '../../src/storage/storage.js';
import { MemoryCluster } from '../helpers/memory-cluster.js';
import { waitFor } from '../helpers/wait.js';

const s = subjects('dynamo');
type Reply = { ok: boolean; found?: boolean; values?: unknown[]; context?: string | null; error?: { code: string; message: string } };

/** Buckets, resolvers and conditional writes on the in-memory network and storage. */
describe('buckets and resolvers (in memory)', function () {
  this.timeout(30_000);
  let cluster: MemoryCluster;
  const put = (bucket: string, key: string, body: Record<string, unknown>, via = 'n1') =>
    cluster.request<Reply>(s.nodeKv(via, 'put'), { bucket, key, ...body });
  const get = (bucket: string, key: string, r = 3) => cluster.request<Reply>(s.kv('get'), { bucket, key, r });
  const setBucket = (body: Record<string, unknown>) => cluster.request<Reply & { props?: Record<string, unknown> }>(s.bucketSet, body);

  beforeEach(async () => {
    cluster = await new MemoryCluster(
      ['n1', 'n2', 'n3'],
      {},
      {
        resolvers: new Map([
          ['longest', appResolver('longest', (vs) => vs.reduce((a, b) => (String(b).length > String(a).length ? b : a)))],
          [
            'broken',
            appResolver('broken', () => {
              throw new Error('resolver bug');
            }),
          ],
        ]),
      },
    ).start();
  });
  afterEach(() => cluster.stop());

  it('sets bucket props at run time, spreads them to every node, and lists them', async () => {
    expect(await setBucket({ bucket: 'cart', resolver: 'orset', n: 3, r: 2, w: 2 })).to.deep.include({ ok: true, bucket: 'cart' });
    await waitFor(() => [...cluster.nodes.values()].every((n) => n.buckets.props('cart').resolver === 'orset'), 5000, 'every node to know the cart bucket');
    const got = await cluster.request<{ props: unknown; set: boolean }>(s.bucketGet, { bucket: 'cart' });
    expect(got).to.deep.include({ set: true, props: { n: 3, r: 2, w: 2, resolver: 'orset' } });
    expect((await cluster.request<{ props: { resolver: string } }>(s.bucketGet, { bucket: 'other' })).props.resolver).to.equal('lww');
    const list = await cluster.request<{ buckets: { bucket: string }[] }>(s.bucketList, {});
    expect(list.buckets.map((b) => b.bucket)).to.deep.equal(['cart']);
    // Saved in each node's store, so a restart keeps them.
    expect(JSON.parse((await cluster.storages.get('n3')!.getMeta('buckets'))!)).to.have.nested.property('cart.props.resolver', 'orset');
  });

  it('refuses bad bucket names, unknown resolvers, another n and bad quorums', async () => {
    for (const body of [
      { bucket: 'a:b' },
      { bucket: 'x', resolver: 'nope' },
      { bucket: 'x', n: 2 },
      { bucket: 'x', r: 4 },
      { bucket: 'x', w: 0 },
      { bucket: 'x', colour: 'red' },
      [],
      'x',
    ]) {
      const r = await setBucket(body as Record<string, unknown>);
      expect(r.error?.code, JSON.stringify(body)).to.equal('BAD_REQUEST');
    }
    expect((await setBucket({ bucket: 'x', n: 2 })).error!.message).to.match(/cluster's n/);
    expect(await cluster.request<{ buckets: unknown[] }>(s.bucketList, {})).to.deep.include({ buckets: [] });
  });

  it('siblings: a get returns every concurrent value, and a put with its context replaces them', async () => {
    await setBucket({ bucket: 'sib', resolver: 'siblings' });
    await put('sib', 'k', { value: 'a' }, 'n1');
    await put('sib', 'k', { value: 'b' }, 'n2');
    const both = await get('sib', 'k');
    expect(both.values).to.have.members(['a', 'b']);
    await put('sib', 'k', { value: 'ab', context: both.context });
    expect((await get('sib', 'k')).values).to.deep.equal(['ab']);
  });

  it('union: concurrent arrays read as their union', async () => {
    await setBucket({ bucket: 'u', resolver: 'union' });
    await put('u', 'cart', { value: ['milk'] }, 'n1');
    await put('u', 'cart', { value: ['eggs', 'milk'] }, 'n2');
    expect((await get('u', 'cart')).values).to.deep.equal([['eggs', 'milk']]);
    expect((await put('u', 'cart', { value: 'milk' })).error?.code).to.equal('BAD_REQUEST');
  });

  it('orset and counter: ops merge into one state; a delete clears it without losing what it did not see', async () => {
    await setBucket({ bucket: 'cart', resolver: 'orset' });
    await setBucket({ bucket: 'hits', resolver: 'counter' });
    expect(await put('cart', 'alice', { op: { add: ['milk', 'eggs'] } })).to.have.property('ok', true);
    expect(await put('cart', 'alice', { op: { remove: ['milk'], add: ['bread'] } }, 'n2')).to.have.property('ok', true);
    expect((await get('cart', 'alice')).values).to.deep.equal([['bread', 'eggs']]);
    await cluster.request(s.kv('delete'), { bucket: 'cart', key: 'alice' });
    expect(await get('cart', 'alice')).to.deep.include({ found: true, values: [[]] });
    for (const [by, via] of [
      [5, 'n1'],
      [-2, 'n2'],
      [10, 'n3'],
    ] as const)
      expect(await put('hits', 'page', { op: { incr: by } }, via)).to.have.property('ok', true);
    expect((await get('hits', 'page')).values).to.deep.equal([13]);
    // One version per key: every op folded the stored state into the new one.
    for (const st of cluster.storages.values()) expect(await st.read('hits', 'page')).to.have.length(1);
  });

  it('concurrent ops through every node end as one version holding every add: retried writes leave no false siblings', async () => {
    await setBucket({ bucket: 'cart', resolver: 'orset' });
    const items = Array.from({ length: 30 }, (_, i) => `item-${i}`);
    const replies = await Promise.all(items.map((item, i) => put('cart', 'busy', { op: { add: [item] } }, `n${(i % 3) + 1}`)));
    expect(replies.filter((r) => !r.ok)).to.deep.equal([]);
    expect(((await get('cart', 'busy')).values![0] as string[]).sort()).to.deep.equal([...items].sort());
    // Writes that lost the race were refused before writing and started over: no extra versions.
    for (const st of cluster.storages.values()) expect(await st.read('cart', 'busy')).to.have.length(1);
  });

  it('application resolvers merge siblings; one that throws fails that request with INTERNAL and the node serves on', async () => {
    await setBucket({ bucket: 'names', resolver: 'longest' });
    await setBucket({ bucket: 'bad', resolver: 'broken' });
    await put('names', 'k', { value: 'ann' }, 'n1');
    await put('names', 'k', { value: 'annabel' }, 'n2');
    expect((await get('names', 'k')).values).to.deep.equal(['annabel']);
    await put('bad', 'k', { value: 1 }, 'n1');
    await put('bad', 'k', { value: 2 }, 'n2');
    expect((await get('bad', 'k')).error?.code).to.equal('INTERNAL');
    expect((await get('names', 'k')).values).to.deep.equal(['annabel']);
  });

  it('ifMatch loses with CONFLICT against a newer version; ifNoneMatch creates only once', async () => {
    await put('default', 'acct', { value: 1 });
    const stale = await get('default', 'acct');
    await put('default', 'acct', { value: 2, context: stale.context });
    expect((await put('default', 'acct', { value: 3, ifMatch: stale.context })).error?.code).to.equal('CONFLICT');
    expect((await get('default', 'acct')).values).to.deep.equal([2]);
    const fresh = await get('default', 'acct');
    expect(await put('default', 'acct', { value: 3, ifMatch: fresh.context })).to.have.property('ok', true);
    expect(await put('default', 'new', { value: 'first', ifNoneMatch: true })).to.have.property('ok', true);
    expect((await put('default', 'new', { value: 'second', ifNoneMatch: true })).error?.code).to.equal('CONFLICT');
    expect((await get('default', 'new')).values).to.deep.equal(['first']);
    // A deleted key counts as absent.
    const cur = await get('default', 'new');
    await cluster.request(s.kv('delete'), { key: 'new', context: cur.context });
    expect(await put('default', 'new', { value: 'again', ifNoneMatch: true })).to.have.property('ok', true);
  });

  it('keeps a blind-written lww key at two stored versions at most, however many writes, and reads the last', async () => {
    for (let i = 0; i < 20; i++) await put('default', 'hot', { value: i }, `n${(i % 3) + 1}`);
    expect((await get('default', 'hot')).values).to.deep.equal([19]);
    for (const st of cluster.storages.values()) expect((await st.read('default', 'hot')).length).to.be.at.most(2);
  });

  it(`bounds siblings at ${MAX_SIBLINGS}: siblings buckets refuse the next, union buckets fold them`, async () => {
    await setBucket({ bucket: 'sib', resolver: 'siblings' });
    await setBucket({ bucket: 'u', resolver: 'union' });
    for (let i = 0; i < MAX_SIBLINGS; i++) {
      expect(await put('sib', 'k', { value: i, w: 1 })).to.have.property('ok', true);
      expect(await put('u', 'k', { value: [i], w: 1 })).to.have.property('ok', true);
    }
    const refused = await put('sib', 'k', { value: 'one too many', w: 1 });
    expect(refused.error?.code).to.equal('CONFLICT');
    expect(refused.error?.message).to.match(/siblings/);
    expect(await put('u', 'k', { value: ['last'], w: 1 })).to.have.property('ok', true);
    expect(await cluster.storages.get('n1')!.read('u', 'k')).to.have.length(1);
    const all = (await get('u', 'k')).values![0] as unknown[];
    expect(all).to.have.length(MAX_SIBLINGS + 1);
    const folded = (await cluster.request<{ siblingsFolded: number }>(s.ping('n1'), '')).siblingsFolded;
    expect(folded).to.equal(1);
  });
});
