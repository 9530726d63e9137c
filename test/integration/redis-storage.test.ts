import { expect } from 'chai';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startRedisServer, type ServerProcess } from '../../src/cli/servers.js';
import { HASH_BYTES, LeafIndex, treeField } from '../../src/merkle/index.js';
import { keyPosition, segmentOf, SEGMENTS } from '../../src/ring/index.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import { RedisStorage } from '../../src/storage/redis-storage.js';
import type { Storage } from '../../src/storage/storage.js';
import type { Version } from '../../src/versioning/index.js';

/** A sibling set as comparable text: each version whole (dot, clock, timestamp, value, expiry), in dot order. */
const whole = (vs: readonly Version[]) =>
  vs.map((v) => JSON.stringify([v.d, Object.entries(v.c).sort(([a], [b]) => (a < b ? -1 : 1)), v.t, v.v ?? null, v.x ?? null])).sort();

describe('Redis storage (real redis-server)', function () {
  this.timeout(60_000);
  const dir = mkdtempSync(join(tmpdir(), 'dynamo-redis-'));
  let server: ServerProcess;
  let redis: RedisStorage;

  before(async () => {
    server = await startRedisServer(dir);
    redis = new RedisStorage(server.url);
    await redis.connect();
  });
  after(async () => {
    await redis?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('merges exactly as the pure merge does, over random write histories', async () => {
    const op = fc.record({
      kind: fc.constantFrom('coordinate', 'apply', 'applyMany', 'replicate'),
      node: fc.constantFrom('n1', 'n2', 'n3'),
      withContext: fc.boolean(),
      tombstone: fc.boolean(),
      pick: fc.nat(),
    });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 20 }), async (ops) => {
        const key = `prop-${run++}`;
        const memory = new MemoryStorage();
        const seen: Version[] = [];
        for (const [i, o] of ops.entries()) {
          if (o.kind === 'apply' && seen.length > 0) {
            const v = seen[o.pick % seen.length]!;
            expect(await redis.apply('b', key, [v])).to.equal(await memory.apply('b', key, [v]));
          } else if (o.kind === 'replicate' && seen.length > 0) {
            // A replica of the key taking writes as coordinators send them, in order or late.
            const v = seen[Math.max(0, seen.length - 1 - (o.pick % 3))]!;
            expect(await redis.apply('b', `${key}-r`, [v])).to.equal(await memory.apply('b', `${key}-r`, [v]));
            expect(whole(await redis.read('b', `${key}-r`))).to.deep.equal(whole(await memory.read('b', `${key}-r`)));
          } else if (o.kind === 'applyMany' && seen.length > 0) {
            // A replica's batch: the key more than once, and another key between, each merged in order.
            const pick = (n: number) => seen[(o.pick + n) % seen.length]!;
            const items = [
              { bucket: 'b', key, versions: [pick(0)] },
              { bucket: 'b', key: `${key}-other`, versions: [pick(1)] },
              { bucket: 'b', key, versions: [pick(1), pick(2)] },
            ];
            const expected: boolean[] = [];
            for (const it of items) expected.push(await memory.apply(it.bucket, it.key, it.versions));
            expect(await redis.applyMany(items)).to.deep.equal(expected);
            expect(whole(await redis.read('b', `${key}-other`))).to.deep.equal(whole(await memory.read('b', `${key}-other`)));
          } else {
            const current = await memory.read('b', key);
            const context = o.withContext && current.length ? current[o.pick % current.length]!.c : {};
            const write = { bucket: 'b', key, context, node: o.node, ts: 1000 + i, value: o.tombstone ? undefined : JSON.stringify({ i }) };
            const fromRedis = await redis.coordinate(write);
            // Replay the dot Redis issued so both stores hold the same versions.
            await memory.apply('b', key, [fromRedis.version]);
            seen.push(fromRedis.version);
          }
          expect(whole(await redis.read('b', key))).to.deep.equal(whole(await memory.read('b', key)));
        }
      }),
      { numRuns: 60 },
    );
  });

  it('stores a version that covers every dot a replica holds as it came, merges anything else as the pure merge does, and folds both into the tree as the pure index does', async () => {
    const raw = new Redis(server.url);
    try {
      const memory = new MemoryStorage();
      const mirror = new LeafIndex();
      // Writers named d, v and x, and values that spell out fields: the text must not fool the shortcut or the fold.
      const tricky = '{"d":["n1.a",99],"v":"x","x":5}';
      const steps: { key: string; v: Version; shortcut: boolean }[] = [
        { key: 's1', v: { d: ['n1.a', 1], c: {}, t: 1, v: tricky }, shortcut: true },
        { key: 's1', v: { d: ['n2.b', 1], c: { 'n1.a': [1, 1] }, t: 2, v: '"2"' }, shortcut: true },
        // Concurrent: kept beside the stored version.
        { key: 's1', v: { d: ['d', 4], c: {}, t: 3, v: '"3"', x: 9_000_000_000_000 }, shortcut: false },
        // Covers one of the two only (its clock names writer d, below the stored dot of d).
        { key: 's1', v: { d: ['v', 7], c: { 'n2.b': [1, 2], d: [3, 3] }, t: 4, v: '"4"' }, shortcut: false },
        // Covers both, but one stored clock names writer d: the text cannot tell, so it merges.
        { key: 's1', v: { d: ['x', 2], c: { d: [4, 3], v: [7, 4] }, t: 5 }, shortcut: false },
        { key: 's2', v: { d: ['n1.a', 2], c: { x: [2, 5] }, t: 6, v: tricky, x: 9_000_000_000_000 }, shortcut: true },
        { key: 's2', v: { d: ['n3.c', 5], c: { x: [2, 5], 'n1.a': [2, 6] }, t: 7 }, shortcut: true },
        // A clock that covers its own dot takes no shortcut.
        { key: 's2', v: { d: ['n3.c', 6], c: { 'n3.c': [6, 7], 'n1.a': [2, 6] }, t: 8, v: '"8"' }, shortcut: false },
      ];
      for (const [i, { key, v, shortcut }] of steps.entries()) {
        const [changed] = await redis.applyMany([{ bucket: 'sc', key, versions: [v] }]);
        expect(changed, `step ${i}`).to.equal(await memory.apply('sc', key, [v]));
        expect(whole(await redis.read('sc', key)), `step ${i}`).to.deep.equal(whole(await memory.read('sc', key)));
        // Stored as it came (the shortcut), or re-encoded by the merge.
        expect((await redis.readRaw('sc', key)) === JSON.stringify([v]), `step ${i}`).to.equal(shortcut);
        mirror.update(segmentOf(keyPosition('sc', key)), treeField('sc', key), await memory.read('sc', key));
        await redis.treeLeaves();
        for (const k of ['s1', 's2']) {
          const seg = segmentOf(keyPosition('sc', k));
          const [index] = await redis.segmentKeys([seg]);
          expect(index!.get(treeField('sc', k)), `step ${i} ${k}`).to.equal(mirror.keys(seg).get(treeField('sc', k)));
        }
      }
      // A replayed version is known: nothing changes.
      expect(await redis.applyMany([{ bucket: 'sc', key: 's2', versions: [steps[7]!.v] }])).to.deep.equal([false]);
      expect(await raw.zscore('x:index', treeField('sc', 's1'))).to.equal(null);
    } finally {
      raw.disconnect();
    }
  });

  it('gives concurrent writes without context distinct dots and keeps them all as siblings', async () => {
    const writes = Array.from({ length: 100 }, (_, i) => redis.coordinate({ bucket: 'b', key: 'hot', context: {}, node: 'n1', ts: i, value: String(i) }));
    const results = await Promise.all(writes);
    expect(new Set(results.map((r) => r.version.d[1])).size).to.equal(100);
    expect(await redis.read('b', 'hot')).to.have.length(100);
  });

  it('stores values byte for byte, numbers and all', async () => {
    const value = '{"big":12345678901234567890,"pi":3.141592653589793,"tiny":5e-324,"s":"caf\\u00e9 \\"/\\" 🎉","nested":[[],{}]}';
    const { version } = await redis.coordinate({ bucket: 'b', key: 'exact', context: {}, node: 'n1', ts: 1, value });
    expect(version.v).to.equal(value);
    expect((await redis.read('b', 'exact'))[0]!.v).to.equal(value);
  });

  it('keeps a tombstone with its clock', async () => {
    const put = await redis.coordinate({ bucket: 'b', key: 'gone', context: {}, node: 'n1', ts: 1, value: '1' });
    const del = await redis.coordinate({
      bucket: 'b',
      key: 'gone',
      context: { [put.version.d[0]]: [put.version.d[1], 1] },
      node: 'n2',
      ts: 2,
      value: undefined,
    });
    const stored = await redis.read('b', 'gone');
    expect(stored).to.have.length(1);
    expect(stored[0]!.v).to.equal(undefined);
    expect(stored[0]!.d).to.deep.equal(del.version.d);
    // The old write arriving late does not resurrect the key.
    expect(await redis.apply('b', 'gone', [put.version])).to.equal(false);
  });

  /** Leaves as SEGMENTS × HASH_BYTES, the missing tail read as zeros. */
  const fullLeaves = (b: Uint8Array) => {
    const out = new Uint8Array(SEGMENTS * HASH_BYTES);
    out.set(b);
    return Buffer.from(out);
  };

  it('keeps the anti-entropy tree in step with the data, byte for byte as the pure index does', async () => {
    const mirror = new LeafIndex();
    const keys = Array.from({ length: 40 }, (_, i) => `tree-${i}`);
    for (let round = 0; round < 3; round++) {
      for (const key of keys) {
        const { siblingsText } = await redis.coordinate({ bucket: 't', key, context: {}, node: `n${round}`, ts: round, value: String(round) });
        mirror.update(segmentOf(keyPosition('t', key)), treeField('t', key), JSON.parse(siblingsText) as Version[]);
      }
    }
    // An apply from elsewhere (a concurrent sibling) moves the leaf too.
    const foreign: Version = { d: ['n9.x', 1], c: {}, t: 9, v: '9' };
    await redis.apply('t', 'tree-0', [foreign]);
    mirror.update(segmentOf(keyPosition('t', 'tree-0')), treeField('t', 'tree-0'), await redis.read('t', 'tree-0'));
    // So does a replica's batch, one script run for several keys.
    const batch = ['tree-1', 'tree-2', 'tree-3'];
    expect(await redis.applyMany(batch.map((key, i) => ({ bucket: 't', key, versions: [{ ...foreign, d: ['n9.x', 2 + i] as const }] })))).to.deep.equal([
      true,
      true,
      true,
    ]);
    for (const key of batch) mirror.update(segmentOf(keyPosition('t', key)), treeField('t', key), await redis.read('t', key));
    // Compare only the segments these keys live in; other tests write elsewhere.
    const leaves = fullLeaves(await redis.treeLeaves());
    for (const key of keys) {
      const s = segmentOf(keyPosition('t', key));
      expect(leaves.subarray(s * HASH_BYTES, (s + 1) * HASH_BYTES).toString('hex'), key).to.equal(
        Buffer.from(mirror.leaves.subarray(s * HASH_BYTES, (s + 1) * HASH_BYTES)).toString('hex'),
      );
      const [index] = await redis.segmentKeys([s]);
      expect(index!.get(treeField('t', key))).to.equal(mirror.keys(s).get(treeField('t', key)));
    }
  });

  it('leaves tree upkeep off the write: keys are marked dirty and folded, many batches at once, when the tree is read', async () => {
    const raw = new Redis(server.url);
    try {
      await redis.treeLeaves();
      const before = await raw.getBuffer('t:leaves');
      const mirror = new LeafIndex();
      // More keys than one fold call takes, so the read must fold batch after batch.
      const keys = Array.from({ length: 700 }, (_, i) => `dirty-${i}`);
      await Promise.all(keys.map((key) => redis.coordinate({ bucket: 'd', key, context: {}, node: 'n1', ts: 1, value: '1' })));
      expect(await raw.scard('t:dirty')).to.equal(keys.length);
      // The write itself did not touch the leaves.
      expect((await raw.getBuffer('t:leaves'))!.equals(before!)).to.equal(true);
      for (const key of keys) mirror.update(segmentOf(keyPosition('d', key)), treeField('d', key), await redis.read('d', key));
      const leaves = fullLeaves(await redis.treeLeaves());
      expect(await raw.scard('t:dirty')).to.equal(0);
      for (const key of keys) {
        const s = segmentOf(keyPosition('d', key));
        const [index] = await redis.segmentKeys([s]);
        expect(index!.get(treeField('d', key)), key).to.equal(mirror.keys(s).get(treeField('d', key)));
        // The new keys' hashes XORed into what the leaf held before.
        const was = fullLeaves(before!).subarray(s * HASH_BYTES, (s + 1) * HASH_BYTES);
        const added = mirror.leaves.subarray(s * HASH_BYTES, (s + 1) * HASH_BYTES);
        expect(leaves.subarray(s * HASH_BYTES, (s + 1) * HASH_BYTES).toString('hex'), key).to.equal(
          Buffer.from(was.map((b, i) => b ^ added[i]!)).toString('hex'),
        );
      }
    } finally {
      raw.disconnect();
    }
  });

  it('rebuilds the tree from the data alone, and counts keys exactly with or without it', async () => {
    const before = fullLeaves(await redis.treeLeaves());
    const count = await redis.keyCount();
    const raw = new Redis(server.url);
    try {
      // Lose the tree (as a store written before trees existed would lack it).
      const tree = await raw.keys('t:*');
      await raw.del(...tree);
      expect(await redis.treeBuilt()).to.equal(false);
      expect(await redis.keyCount()).to.equal(count);
      // A stale index entry for a key that no longer exists must go.
      await raw.hset('t:s:7', 't:ghost', 'ff'.repeat(16));
      let progress = 0;
      const checked = await redis.rebuildTree((n) => (progress = n));
      expect(checked).to.be.at.least(count);
      expect(progress).to.equal(checked);
      expect(fullLeaves(await redis.treeLeaves()).equals(before)).to.equal(true);
      expect(await raw.hexists('t:s:7', 't:ghost')).to.equal(0);
      expect(await redis.treeBuilt()).to.equal(true);
      expect(await redis.keyCount()).to.equal(count);
    } finally {
      raw.disconnect();
    }
  });

  it('lists live keys in byte order as the in-memory store does, bounded per call, skipping expired ones, and the reaper keeps the dots', async () => {
    const mem = new MemoryStorage();
    const now = Date.now();
    const write = async (key: string, value: string | undefined, expiresAt?: number) => {
      for (const s of [redis, mem] as Storage[])
        await s.coordinate({ bucket: 'lst', key, context: {}, node: 'n1', ts: now, value, supersede: true, expiresAt });
    };
    for (let i = 0; i < 40; i++) await write(`k${String(i).padStart(2, '0')}`, '1');
    await write('k05', undefined);
    await write('k06', '1', now - 1);
    await write('k07', '1', now + 60_000);
    await write('\u{1F600}', '1');
    await write('\uFF21', '1');
    const even = (k: string) => k.length !== 3 || Number(k.slice(1)) % 2 === 0;
    for (const s of [redis, mem] as Storage[]) {
      const all: string[] = [];
      for (let after: string | null = null; ; ) {
        const page = await s.listKeys('lst', '', after, 1000, even, 7, now);
        all.push(...page.keys);
        if (page.next === null) break;
        after = page.next;
      }
      expect(all, s.constructor.name).to.deep.equal([
        ...Array.from({ length: 20 }, (_, i) => `k${String(2 * i).padStart(2, '0')}`).filter((k) => k !== 'k06'),
        '\uFF21',
        '\u{1F600}',
      ]);
      expect((await s.listKeys('lst', 'k1', null, 3, () => true, 100, now)).keys).to.deep.equal(['k10', 'k11', 'k12']);
    }
    const raw = await redis.readRaw('lst', 'k06');
    expect(await redis.reapExpired(now, 100)).to.equal(1);
    expect(await mem.reapExpired(now, 100)).to.equal(1);
    const reaped = await redis.read('lst', 'k06');
    expect(reaped.map((v) => [v.d, v.v])).to.deep.equal((JSON.parse(raw!) as Version[]).map((v) => [v.d, undefined]));
    expect((await mem.read('lst', 'k06')).map((v) => [v.v, v.x])).to.deep.equal(reaped.map((v) => [v.v, v.x]));
    expect(await redis.reapExpired(now, 100)).to.equal(0);
  });

  it('keeps the listing, expiry and tombstone indexes in step with each key across folds, whatever state it moves from', async () => {
    const raw = new Redis(server.url);
    try {
      const now = Date.now();
      const field = treeField('ix', 'k');
      const put = (value: string | undefined, expiresAt?: number) =>
        redis.coordinate({ bucket: 'ix', key: 'k', context: {}, node: 'n1', ts: now, value, supersede: true, expiresAt });
      /** What the three indexes say of the key after a fold: listed, its expiry score, its tombstone score. */
      const indexed = async () => {
        await redis.treeLeaves();
        const [listed, expiry, tomb] = await Promise.all([raw.zscore('k:index', field), raw.zscore('x:index', field), raw.zscore('z:index', field)]);
        return { listed: listed !== null, expiry: expiry === null ? null : Number(expiry), tombstone: tomb !== null };
      };
      await put('1');
      expect(await indexed()).to.deep.equal({ listed: true, expiry: null, tombstone: false });
      await put('2');
      expect(await indexed()).to.deep.equal({ listed: true, expiry: null, tombstone: false });
      await put('3', now + 60_000);
      expect(await indexed()).to.deep.equal({ listed: true, expiry: now + 60_000, tombstone: false });
      await put('4', now + 90_000);
      expect(await indexed()).to.deep.equal({ listed: true, expiry: now + 90_000, tombstone: false });
      await put(undefined);
      expect(await indexed()).to.deep.equal({ listed: false, expiry: null, tombstone: true });
      await put(undefined);
      expect(await indexed()).to.deep.equal({ listed: false, expiry: null, tombstone: true });
      await put('5', now + 60_000);
      expect(await indexed()).to.deep.equal({ listed: true, expiry: now + 60_000, tombstone: false });
      // Two siblings, one that never expires: listed, and out of the expiry index.
      await redis.apply('ix', 'k', [{ d: ['n9.x', 1], c: {}, t: now, v: '9' }]);
      expect(await indexed()).to.deep.equal({ listed: true, expiry: null, tombstone: false });
      await put(undefined);
      expect(await indexed()).to.deep.equal({ listed: false, expiry: null, tombstone: true });
      // The key forgotten outright (the tombstone reaper): out of every index.
      expect(await redis.deleteIfUnchanged('ix', 'k', (await redis.readRaw('ix', 'k'))!)).to.equal(true);
      expect(await indexed()).to.deep.equal({ listed: false, expiry: null, tombstone: false });
      expect(await raw.hexists(`t:s:${segmentOf(keyPosition('ix', 'k'))}`, field)).to.equal(0);
    } finally {
      raw.disconnect();
    }
  });

  it('lets housekeeping read the indexes as last folded for a while, and leaves out a key that holds a value again', async () => {
    const lazy = new RedisStorage(server.url, {}, { housekeepingFoldMs: 60_000 });
    await lazy.connect();
    try {
      const now = Date.now();
      const write = (key: string, value: string | undefined, expiresAt?: number) =>
        lazy.coordinate({ bucket: 'hk', key, context: {}, node: 'n1', ts: now, value, supersede: true, expiresAt });
      const tombstoned = async () => (await lazy.tombstones(now + 60_000, 0, 1000)).filter((t) => t.bucket === 'hk').map((t) => t.key);
      await write('a', '1', now - 1);
      // This store has not folded yet: housekeeping folds first.
      expect(await lazy.reapExpired(now, 100)).to.equal(1);
      await write('b', '1', now - 1);
      await write('c', undefined);
      // It folded a moment ago: b, c and the tombstone a was reaped into are not in the indexes yet.
      expect(await lazy.reapExpired(now, 100)).to.equal(0);
      expect(await tombstoned()).to.deep.equal([]);
      // An exchange folds, as always.
      await lazy.treeLeaves();
      expect(await lazy.reapExpired(now, 100)).to.equal(1);
      expect(await tombstoned()).to.have.members(['a', 'c']);
      // c holds a value again; the index has not folded that, but c is not offered for reaping.
      await write('c', '2');
      expect(await tombstoned()).to.deep.equal(['a']);
      await lazy.treeLeaves();
      expect(await tombstoned()).to.have.members(['a', 'b']);
    } finally {
      await lazy.close();
    }
  });

  it('takes a new epoch after its data is wiped, so no dot issued before is issued again', async () => {
    const first = await redis.coordinate({ bucket: 'e', key: 'k', context: {}, node: 'n1', ts: 1, value: '1' });
    expect(first.version.d[0]).to.match(/^n1\.[0-9a-z]+$/);
    const raw = new Redis(server.url);
    try {
      await raw.flushall();
    } finally {
      raw.disconnect();
    }
    const second = await redis.coordinate({ bucket: 'e', key: 'k', context: {}, node: 'n1', ts: 2, value: '2' });
    expect(second.version.d[0]).to.match(/^n1\.[0-9a-z]+$/);
    expect(second.version.d).to.not.deep.equal(first.version.d);
    // Another replica still holding the first write keeps both: the new one is not mistaken for it.
    const elsewhere = new MemoryStorage();
    await elsewhere.apply('e', 'k', [first.version]);
    expect(await elsewhere.apply('e', 'k', [second.version])).to.equal(true);
    expect(await elsewhere.read('e', 'k')).to.have.length(2);
  });
});
