import { expect } from 'chai';
import { Redis } from 'ioredis';
import type { PingReply } from '../../actors/node/admin-server.js';
import { subjects } from '../../src/protocol/subjects.js';
import type { RedisStorage } from '../../src/storage/redis-storage.js';
import { SCAN_START } from '../../src/storage/storage.js';
import { RealCluster } from '../helpers/real-cluster.js';
import { waitFor } from '../helpers/wait.js';

const KEYS = 20_000;
const s = subjects('dynamo');

/** Every key a replica holds, with its stored sibling text. */
async function contents(storage: RedisStorage): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let cursor = SCAN_START;
  do {
    const page = await storage.scan(cursor, 1000);
    const raws = await storage.readRawMany(page.keys);
    for (const [i, k] of page.keys.entries()) out.set(`${k.bucket}:${k.key}`, raws[i]!);
    cursor = page.cursor;
  } while (cursor !== SCAN_START);
  return out;
}

/** The dots a stored sibling text holds, in a fixed order (replicas may store siblings in any order). */
const dots = (raw: string | undefined) =>
  raw === undefined
    ? ''
    : (JSON.parse(raw) as { d: [string, number] }[])
        .map((v) => v.d.join(':'))
        .sort()
        .join(',');

describe('anti-entropy (real servers)', function () {
  this.timeout(180_000);
  let c: RealCluster;
  const ping = (id: string) => c.request<PingReply>(s.ping(id), '');
  const inSync = async () => {
    for (const id of c.ids) {
      const ranges = (await ping(id)).antiEntropy.ranges;
      if (ranges.length !== 2 || !ranges.every((r) => r.inSync)) return false;
    }
    return true;
  };

  before(async () => {
    c = await new RealCluster(['n1', 'n2', 'n3'], { antiEntropyIntervalMs: 1000, antiEntropyKeysPerSecond: 5000 }).start();
    // 20k keys on all three replicas (W=3), 64 writes in flight.
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < KEYS) {
          const i = next++;
          const r = await c.request<{ ok: boolean }>(s.kv('put'), { key: `key-${i}`, value: { i, pad: 'x'.repeat(40) }, w: 3 });
          if (!r.ok) throw new Error(`put key-${i} failed: ${JSON.stringify(r)}`);
        }
      }),
    );
    await waitFor(inSync, 30_000, 'ranges in sync after the load');
  });
  after(() => c?.stop());

  it('refills a replica whose Redis was flushed, with no client read, within 60 s', async () => {
    const n1 = c.storage('n1');
    const n3 = c.storage('n3');
    const raw = new Redis(c.redis.get('n3')!.url);
    try {
      const expected = await contents(n1);
      expect(expected.size).to.equal(KEYS);
      await raw.flushall();
      expect(await n3.keyCount()).to.equal(0);
      const started = Date.now();
      await waitFor(async () => (await n3.keyCount()) === KEYS, 60_000, 'every key back on n3');
      const tookMs = Date.now() - started;
      const got = await contents(n3);
      const wrong = [...expected].filter(([k, v]) => dots(got.get(k)) !== dots(v));
      expect(wrong.slice(0, 5)).to.deep.equal([]);
      await waitFor(inSync, 30_000, 'ranges back in sync');
      const repaired = (await Promise.all(c.ids.map(async (id) => (await ping(id)).antiEntropy.keysRepaired))).reduce((a, b) => a + b, 0);
      expect(repaired).to.be.at.least(KEYS);
      // The client subjects were never asked for these keys: the repair was anti-entropy's alone.
      const reads = (await Promise.all(c.ids.map(async (id) => (await ping(id)).requests))).map((r) => r.queue + r.direct + r.forwarded);
      expect(reads.reduce((a, b) => a + b, 0)).to.equal(KEYS);
      console.log(`      ${KEYS} keys back on the flushed replica in ${(tookMs / 1000).toFixed(1)} s`);
    } finally {
      raw.disconnect();
      await Promise.all([n1.close(), n3.close()]);
    }
  });

  it('repairs 10 keys changed on one replica with under 1% of the bytes of a full copy', async () => {
    const n1 = c.storage('n1');
    try {
      const full = [...(await contents(n1))].reduce((sum, [k, v]) => sum + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
      const since = Date.now();
      const changed = Array.from({ length: 10 }, (_, i) => `key-${i * 1999}`);
      // Written straight into n1's Redis: no other replica hears of it but through anti-entropy.
      for (const key of changed) await n1.coordinate({ bucket: 'default', key, context: {}, node: 'n1', ts: Date.now(), value: '"changed"' });
      const others = ['n2', 'n3'].map((id) => c.storage(id));
      try {
        await waitFor(
          async () =>
            (await Promise.all(others.flatMap((o) => changed.map(async (k) => (await o.read('default', k)).some((v) => v.v === '"changed"'))))).every(Boolean),
          30_000,
          'the changes on n2 and n3',
        );
      } finally {
        await Promise.all(others.map((o) => o.close()));
      }
      const repairs = (await Promise.all(c.ids.map(async (id) => (await ping(id)).antiEntropy.ranges.map((r) => ({ ...r, node: id })))))
        .flat()
        .filter((r) => r.lastExchangeAt! >= since && r.outcome.startsWith('repaired') && r.keysRepaired > 0);
      expect(repairs.length).to.be.greaterThan(0);
      for (const r of repairs) {
        console.log(
          `      exchange ${r.node}→${r.peer} repaired ${r.keysRepaired} keys with ${r.bytes} bytes; a full copy is ${full} bytes (${((r.bytes / full) * 100).toFixed(2)}%)`,
        );
        expect(r.bytes).to.be.below(full / 100);
      }
    } finally {
      await n1.close();
    }
  });

  it('does not bring back a key deleted while a replica was down', async () => {
    await c.stopNode('n3');
    await waitFor(() => c.nodes.get('n1')!.gossiper.isDown('n3'), 10_000, 'n3 seen down');
    const got = await c.request<{ context: string }>(s.kv('get'), { key: 'key-7', r: 2 });
    expect(await c.request(s.kv('delete'), { key: 'key-7', context: got.context, w: 2 })).to.have.property('ok', true);
    const n3 = c.storage('n3');
    try {
      // n3's Redis still runs: the node missed the delete and holds the value.
      expect(
        (await n3.read('default', 'key-7')).some((v) => v.v !== undefined),
        'n3 holds the value while down',
      ).to.equal(true);
      await c.startNode('n3');
      await waitFor(async () => (await n3.read('default', 'key-7')).every((v) => v.v === undefined), 30_000, 'the tombstone on n3');
    } finally {
      await n3.close();
    }
    expect(await c.request(s.kv('get'), { key: 'key-7', r: 3 })).to.deep.include({ ok: true, found: false });
  });
});
