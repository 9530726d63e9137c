import { expect } from 'chai';
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { RealCluster } from '../helpers/real-cluster.js';
import { waitFor } from '../helpers/wait.js';

type Reply = {
  ok: boolean;
  found?: boolean;
  values?: unknown[];
  context?: string | null;
  error?: { code: string; acks?: number; needed?: number; message: string };
};

describe('cluster (real nats-server, three redis-servers, three nodes)', function () {
  this.timeout(60_000);
  let c: RealCluster;

  before(async () => {
    c = await new RealCluster(['n1', 'n2', 'n3']).start();
  });
  after(() => c?.stop());

  it('round-trips put, get and delete through the queue-group subject', async () => {
    const put = await c.request<Reply>('dynamo.kv.put', { key: 'cart:alice', value: ['book'] });
    expect(put.ok).to.equal(true);
    expect(put.context).to.be.a('string');
    expect(await c.request<Reply>('dynamo.kv.get', { key: 'cart:alice' })).to.deep.include({ ok: true, found: true, values: [['book']] });
    expect(await c.request<Reply>('dynamo.kv.delete', { key: 'cart:alice' })).to.deep.equal({ ok: true });
    expect(await c.request<Reply>('dynamo.kv.get', { key: 'cart:alice' })).to.deep.equal({ ok: true, found: false, values: [], context: null });
  });

  it("round-trips through each node's own subject, and every replica holds the write", async () => {
    for (const id of c.ids) {
      const key = `via-${id}`;
      // W=3: acknowledged only once all three replicas stored it. Their stores are read before any
      // client read, so read repair cannot be what put it there.
      expect(await c.request<Reply>(`dynamo.node.${id}.kv.put`, { key, value: { by: id }, w: 3 })).to.have.property('ok', true);
      for (const replica of c.ids) {
        const s = c.storage(replica);
        try {
          expect(
            (await s.read('default', key)).map((v) => (v.v === undefined ? null : JSON.parse(v.v))),
            `${replica}'s replica of ${key}`,
          ).to.deep.equal([{ by: id }]);
        } finally {
          await s.close();
        }
      }
      for (const other of c.ids) {
        expect(await c.request<Reply>(`dynamo.node.${other}.kv.get`, { key, r: 3 })).to.deep.include({ values: [{ by: id }] });
      }
    }
  });

  it('answers a raw NATS request from a plain client', async () => {
    const nc = await connect({ servers: c.nats.url });
    try {
      await nc.request('dynamo.kv.put', JSON.stringify({ key: 'raw', value: 42 }), { timeout: 5000 });
      const m = await nc.request('dynamo.kv.get', JSON.stringify({ key: 'raw' }), { timeout: 5000 });
      expect(m.json()).to.deep.include({ ok: true, values: [42] });
    } finally {
      await nc.close();
    }
  });

  it('keeps concurrent writes without context as siblings on the replicas; LWW returns one value', async () => {
    const [a, b] = await Promise.all([
      c.request<Reply>('dynamo.node.n1.kv.put', { key: 'race', value: 'from-a', w: 3 }),
      c.request<Reply>('dynamo.node.n2.kv.put', { key: 'race', value: 'from-b', w: 3 }),
    ]);
    expect(a.ok && b.ok).to.equal(true);
    for (const id of c.ids) {
      const s = c.storage(id);
      expect((await s.read('default', 'race')).map((v) => v.v).sort()).to.deep.equal(['"from-a"', '"from-b"']);
      await s.close();
    }
    const got = await c.request<Reply>('dynamo.kv.get', { key: 'race' });
    expect(got.values).to.have.length(1);
    expect(['from-a', 'from-b']).to.include(got.values![0]);

    // A put with the read's context supersedes both siblings.
    await c.request<Reply>('dynamo.kv.put', { key: 'race', value: 'resolved', context: got.context, w: 3 });
    for (const id of c.ids) {
      const s = c.storage(id);
      expect((await s.read('default', 'race')).map((v) => v.v)).to.deep.equal(['"resolved"']);
      await s.close();
    }
  });

  it('does not let a late copy of an old write resurrect a deleted key', async () => {
    await c.request<Reply>('dynamo.kv.put', { key: 'ghost', value: 1, w: 3 });
    const s = c.storage('n1');
    const [old] = await s.read('default', 'ghost');
    const read = await c.request<Reply>('dynamo.kv.get', { key: 'ghost' });
    expect(await c.request<Reply>('dynamo.kv.delete', { key: 'ghost', context: read.context, w: 3 })).to.deep.equal({ ok: true });
    // The old version arrives again at every replica, as a delayed or replayed message would.
    for (const id of c.ids) {
      const r = await c.request<{ ok: boolean; stored: boolean[] }>(`dynamo.node.${id}.replica.put`, { items: [{ b: 'default', k: 'ghost', x: [old] }] });
      expect(r).to.deep.equal({ ok: true, stored: [false] });
    }
    expect(await c.request<Reply>('dynamo.kv.get', { key: 'ghost', r: 3 })).to.include({ found: false });
    const [tomb] = await s.read('default', 'ghost');
    expect(tomb!.v).to.equal(undefined);
    await s.close();
  });

  it('repairs a replica that missed a write when a read sees it', async () => {
    await c.request<Reply>('dynamo.kv.put', { key: 'repair-me', value: 'v1', w: 3 });
    const n3 = c.storage('n3');
    // A replica that lost the key (say, its Redis was restored from an old file).
    const raw = new Redis(c.redis.get('n3')!.url);
    await raw.del('v:default:repair-me');
    await raw.quit();
    expect(await n3.read('default', 'repair-me')).to.deep.equal([]);
    expect(await c.request<Reply>('dynamo.node.n1.kv.get', { key: 'repair-me', r: 3 })).to.deep.include({ values: ['v1'] });
    await waitFor(async () => (await n3.read('default', 'repair-me')).length === 1, 5000, 'read repair of n3');
    await n3.close();
  });

  describe('bad input', () => {
    /** Every bucket/key any node stores. */
    const storedKeys = async (): Promise<Set<string>> => {
      const out = new Set<string>();
      for (const id of c.ids) {
        const s = c.storage(id);
        try {
          let cursor = '0';
          do {
            const page = await s.scan(cursor, 500);
            for (const k of page.keys) out.add(`${k.bucket}/${k.key}`);
            cursor = page.cursor;
          } while (cursor !== '0');
        } finally {
          await s.close();
        }
      }
      return out;
    };
    const cases: [string, string, unknown, string][] = [
      ['malformed JSON', 'dynamo.kv.put', '{"key": "a", "value": ', 'BAD_REQUEST'],
      ['a non-object body', 'dynamo.kv.get', '[1,2,3]', 'BAD_REQUEST'],
      ['a missing key', 'dynamo.kv.get', {}, 'BAD_REQUEST'],
      ['an empty key', 'dynamo.kv.put', { key: '', value: 1 }, 'BAD_REQUEST'],
      ['a non-string key', 'dynamo.kv.delete', { key: ['a'] }, 'BAD_REQUEST'],
      ['a key over 1024 bytes', 'dynamo.kv.get', { key: 'k'.repeat(1025) }, 'BAD_REQUEST'],
      ['r of 0', 'dynamo.kv.get', { key: 'a', r: 0 }, 'BAD_REQUEST'],
      ['r above N', 'dynamo.kv.get', { key: 'a', r: 4 }, 'BAD_REQUEST'],
      ['w not an integer', 'dynamo.kv.put', { key: 'a', value: 1, w: 2.5 }, 'BAD_REQUEST'],
      ['a put without value', 'dynamo.kv.put', { key: 'a' }, 'BAD_REQUEST'],
      ['an undecodable context', 'dynamo.kv.put', { key: 'a', value: 1, context: '%%%' }, 'BAD_REQUEST'],
      ['a value over 1 MiB', 'dynamo.kv.put', { key: 'a', value: 'x'.repeat(1024 * 1024 + 1) }, 'TOO_LARGE'],
      ['a bad bucket name', 'dynamo.kv.get', { key: 'a', bucket: '../etc' }, 'BAD_REQUEST'],
      ['an empty body', 'dynamo.kv.get', '', 'BAD_REQUEST'],
    ];
    for (const [name, subject, body, code] of cases) {
      it(`${name} → ${code}, nothing stored`, async () => {
        const before = await storedKeys();
        const reply = await c.request<Reply>(subject, body);
        expect(reply.ok).to.equal(false);
        expect(reply.error!.code).to.equal(code);
        expect(reply.error!.message).to.be.a('string').and.not.empty;
        // No key, in any bucket, on any node, that no node held before (a late replica of an earlier
        // test's write lands only where another node already has it).
        const after = await storedKeys();
        expect([...after].filter((k) => !before.has(k))).to.deep.equal([]);
      });
    }
  });
});

describe('cluster with nodes down (real servers)', function () {
  this.timeout(60_000);
  let c: RealCluster;

  before(async () => {
    c = await new RealCluster(['n1', 'n2', 'n3']).start();
    await c.request('dynamo.kv.put', { key: 'survivor', value: 'still here', w: 3 });
    await c.stopNode('n2');
    await c.stopNode('n3');
  });
  after(() => c?.stop());

  it('answers a W=2 put with QUORUM_NOT_MET within its timeout', async () => {
    const started = performance.now();
    const reply = await c.request<Reply>('dynamo.kv.put', { key: 'lonely', value: 1, w: 2, timeoutMs: 800 });
    expect(performance.now() - started).to.be.below(800 + 500);
    expect(reply.ok).to.equal(false);
    expect(reply.error).to.include({ code: 'QUORUM_NOT_MET', acks: 1, needed: 2 });
  });

  it('still answers an R=1 get', async () => {
    expect(await c.request<Reply>('dynamo.kv.get', { key: 'survivor', r: 1 })).to.deep.include({ ok: true, values: ['still here'] });
  });

  it('answers an R=2 get with QUORUM_NOT_MET', async () => {
    const reply = await c.request<Reply>('dynamo.kv.get', { key: 'survivor', r: 2 });
    expect(reply.error).to.include({ code: 'QUORUM_NOT_MET', needed: 2 });
    // The two failures may arrive before the local read does: the tally fails fast either way.
    expect(reply.error!.acks).to.be.within(0, 1);
  });
});
