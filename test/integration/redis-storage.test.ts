import { expect } from 'chai';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedisServer, type ServerProcess } from '../../src/cli/servers.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import { RedisStorage } from '../../src/storage/redis-storage.js';
import type { Version } from '../../src/versioning/index.js';

const dots = (vs: readonly Version[]) => vs.map((v) => v.d.join(':')).sort();

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
      kind: fc.constantFrom('coordinate', 'apply'),
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
          } else {
            const current = await memory.read('b', key);
            const context = o.withContext && current.length ? current[o.pick % current.length]!.c : {};
            const write = { bucket: 'b', key, context, node: o.node, ts: 1000 + i, value: o.tombstone ? undefined : JSON.stringify({ i }) };
            const fromRedis = await redis.coordinate(write);
            // Replay the dot Redis issued so both stores hold the same versions.
            await memory.apply('b', key, [fromRedis.version]);
            seen.push(fromRedis.version);
          }
          expect(dots(await redis.read('b', key))).to.deep.equal(dots(await memory.read('b', key)));
        }
      }),
      { numRuns: 60 },
    );
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
    const del = await redis.coordinate({ bucket: 'b', key: 'gone', context: { n1: [put.version.d[1], 1] }, node: 'n2', ts: 2, value: undefined });
    const stored = await redis.read('b', 'gone');
    expect(stored).to.have.length(1);
    expect(stored[0]!.v).to.equal(undefined);
    expect(stored[0]!.d).to.deep.equal(del.version.d);
    // The old write arriving late does not resurrect the key.
    expect(await redis.apply('b', 'gone', [put.version])).to.equal(false);
  });
});
