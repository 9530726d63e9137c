import { expect } from 'chai';
import { compareKeys } from '../../src/protocol/keys.js';
import { keyPosition } from '../../src/ring/index.js';
import { RealCluster } from '../helpers/real-cluster.js';
import { waitFor } from '../helpers/wait.js';

type KeysReply = { ok: boolean; keys?: string[]; cursor?: string | null; error?: { code: string; message: string; field?: string } };
type Reply = { ok: boolean; results?: { ok: boolean }[]; error?: { code: string } };

const ITEMS = 3000;
const USERS = 100;
const DELETED = 50;

/** Every key of a listing, following its cursors; and the size of each page. */
async function listAll(c: RealCluster, body: Record<string, unknown>): Promise<{ keys: string[]; pages: number[] }> {
  const keys: string[] = [];
  const pages: number[] = [];
  for (let cursor: string | null = null; ; ) {
    const r: KeysReply = await c.request<KeysReply>('dynamo.kv.keys', { ...body, cursor }, 10_000);
    expect(r.ok, JSON.stringify(r.error)).to.equal(true);
    keys.push(...(r.keys ?? []));
    pages.push(r.keys?.length ?? 0);
    if (r.cursor === null) return { keys, pages };
    cursor = r.cursor ?? null;
  }
}

describe('key listing (real nats-server and redis-servers)', function () {
  this.timeout(180_000);
  let c: RealCluster;
  const items = Array.from({ length: ITEMS }, (_, i) => `item:${String(i).padStart(5, '0')}`);
  // Keys whose UTF-8 byte order differs from JavaScript's string order (an astral character sorts last in bytes).
  const users = Array.from({ length: USERS }, (_, i) => (i % 10 === 0 ? `user:\u{1F600}${i}` : i % 10 === 1 ? `user:\uFF21${i}` : `user:${i}`));
  const deleted = Array.from({ length: DELETED }, (_, i) => `gone:${i}`);

  async function putAll(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 500) {
      const r = await c.request<Reply>('dynamo.kv.mput', { items: keys.slice(i, i + 500).map((key) => ({ key, value: key })), w: 3 }, 20_000);
      expect(r.ok).to.equal(true);
      expect(r.results?.every((x) => x.ok)).to.equal(true);
    }
  }

  before(async () => {
    c = await new RealCluster(['n1', 'n2', 'n3']).start();
    await putAll([...items, ...users, ...deleted]);
    for (const key of deleted) expect((await c.request<Reply>('dynamo.kv.delete', { key, w: 3 })).ok).to.equal(true);
  });
  after(() => c?.stop());

  const live = () => [...items, ...users].sort(compareKeys);

  it('lists every key of a bucket once, in UTF-8 byte order, in pages of at most the limit, without tombstones', async () => {
    const { keys, pages } = await listAll(c, { limit: 1000 });
    expect(keys).to.deep.equal(live());
    expect(Math.max(...pages)).to.be.at.most(1000);
    expect(pages.length).to.be.at.least(4);
    // Every replica asked: the same set.
    expect((await listAll(c, { limit: 700, r: 3 })).keys).to.deep.equal(live());
  });

  it('lists a prefix alone, and a bucket apart from the others', async () => {
    expect((await listAll(c, { prefix: 'user:', limit: 30 })).keys).to.deep.equal([...users].sort(compareKeys));
    expect((await listAll(c, { prefix: 'nothing-here' })).keys).to.deep.equal([]);
    expect((await c.request<Reply>('dynamo.kv.put', { bucket: 'other', key: 'user:x', value: 1 })).ok).to.equal(true);
    expect((await listAll(c, { bucket: 'other' })).keys).to.deep.equal(['user:x']);
    const onSubject = await c.request<KeysReply>('dynamo.kv.other.keys', {});
    expect(onSubject).to.deep.include({ ok: true, keys: ['user:x'], cursor: null });
    const crossed = await c.request<KeysReply>('dynamo.kv.other.keys', { bucket: 'default' });
    expect(crossed.error?.code).to.equal('BAD_REQUEST');
  });

  it('refuses bad listings with BAD_REQUEST, and a junk part-listing does not hurt the node', async () => {
    const first = await c.request<KeysReply>('dynamo.kv.keys', { prefix: 'user:', limit: 5 });
    const cases: [Record<string, unknown>, string][] = [
      [{ limit: 1001 }, 'limit'],
      [{ limit: 0 }, 'limit'],
      [{ r: 4 }, 'r'],
      [{ prefix: 7 }, 'prefix'],
      [{ cursor: 'not a cursor' }, 'cursor'],
      [{ cursor: first.cursor, prefix: 'item:' }, 'cursor'],
      [{ bucket: 'a/b' }, 'bucket'],
      [{ keys: [] }, 'keys'],
    ];
    for (const [body, field] of cases) {
      const r = await c.request<KeysReply>('dynamo.kv.keys', body);
      expect(r.error?.code, JSON.stringify(body)).to.equal('BAD_REQUEST');
      expect(r.error?.field, JSON.stringify(body)).to.equal(field);
    }
    for (const junk of [
      {},
      { bucket: 'default', prefix: '', after: null, limit: 10, segments: [[5, 2]] },
      { bucket: 'default', prefix: '', after: 3, limit: 10, segments: [] },
    ]) {
      expect((await c.request<KeysReply>('dynamo.node.n2.keys', junk)).error?.code).to.equal('BAD_REQUEST');
    }
    expect((await listAll(c, { prefix: 'user:' })).keys).to.have.length(USERS);
  });

  it('with a node down, lists everything from the others; asking every replica says which part is short', async () => {
    await c.stopNode('n3');
    // At once, before any node sees n3 down: a part asked of it finds no responder and is planned again on the others.
    expect(c.nodes.get('n1')!.gossiper.isDown('n3')).to.equal(false);
    expect((await listAll(c, { prefix: 'item:', limit: 1000 })).keys).to.have.length(ITEMS);
    await waitFor(() => c.nodes.get('n1')!.gossiper.isDown('n3'), 20_000, 'n1 sees n3 down');
    expect((await listAll(c, { prefix: 'item:', limit: 1000 })).keys).to.have.length(ITEMS);
    const r = await c.request<KeysReply & { error?: { live?: number; needed?: number } }>('dynamo.kv.keys', { r: 3 });
    expect(r.error).to.deep.include({ code: 'UNAVAILABLE', live: 2, needed: 3 });
    await c.startNode('n3');
    await waitFor(() => !c.nodes.get('n1')!.gossiper.isDown('n3'), 20_000, 'n1 sees n3 up');
  });

  it('misses no key while a fourth node joins', async () => {
    const want = live();
    let joined = false;
    const join = c.addNode('n4').then(() => {
      joined = true;
    });
    let during = 0;
    while (!joined) {
      const { keys } = await listAll(c, { limit: 250 });
      // Listed while the join was under way (n4 may have finished as this listing ended).
      during++;
      expect(keys).to.deep.equal(want);
    }
    await join;
    expect(during).to.be.at.least(1);
    await waitFor(() => [...c.nodes.values()].every((n) => n.gossiper.ring().members.some((m) => m.id === 'n4')), 20_000, 'n4 in every ring');
    expect((await listAll(c, { limit: 1000 })).keys).to.deep.equal(want);

    // Keys an old node is no longer a replica of, deleted now: a copy it may still hold is not listed.
    const ring = c.nodes.get('n1')!.gossiper.ring();
    const moved = items
      .filter((k) => ring.walk(keyPosition('default', k), 3).length === 3 && !ring.walk(keyPosition('default', k), 3).includes('n1'))
      .slice(0, 20);
    expect(moved).to.have.length(20);
    for (const key of moved) expect((await c.request<Reply>('dynamo.kv.delete', { key, w: 3 })).ok).to.equal(true);
    const gone = new Set(moved);
    expect((await listAll(c, { limit: 1000 })).keys).to.deep.equal(want.filter((k) => !gone.has(k)));
  });
});
