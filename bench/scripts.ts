/**
 * `npm run bench:scripts`: what each of the store's Redis scripts costs Redis per key, on one
 * redis-server of its own with nothing else using it: the coordinator's write (last write
 * wins over one stored version), a replica's batch of writes by the shortcut (a version whose
 * clock covers what is stored) and by the merge, the tree fold of the keys they dirtied, and the
 * change log's append of a coordinated write's event (in batches, as a node appends a turn's).
 * CPU is the redis-server's utime + stime from /proc over each step, divided by the keys it
 * handled; `--rounds` repeats every step turn about. Not a test.
 *
 *   npm run bench:scripts [-- --keys 10000 --rounds 3]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startRedisServer } from '../src/cli/servers.js';
import { RedisStorage } from '../src/storage/redis-storage.js';
import { DEFAULTS } from '../src/config.js';
import { changeText } from '../src/protocol/changes.js';
import type { Version } from '../src/versioning/version.js';
import { aligned } from './compare.js';
import { cpuMicros } from './cpu.js';

const VALUE = JSON.stringify('x'.repeat(100));
const BATCH = 5;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { keys: { type: 'string', default: '10000' }, rounds: { type: 'string', default: '3' } } });
  const keys = Number(values.keys);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(keys) || keys < BATCH || !Number.isInteger(rounds) || rounds < 1) throw new Error(`--keys must be an integer ≥ ${BATCH}, --rounds ≥ 1`);
  const dir = mkdtempSync(join(tmpdir(), 'dynamo-scripts-'));
  const server = await startRedisServer(dir);
  // Housekeeping never folds here: only the steps below do.
  const storage = new RedisStorage(server.url, {}, { housekeepingFoldMs: Number.MAX_SAFE_INTEGER });
  try {
    await storage.connect();
    const pid = server.child.pid!;
    let ts = Date.now();
    /** Redis µs per key of `n` keys done 64 at a time by `step(i)`, which handles `per` keys. */
    const measure = async (n: number, per: number, step: (i: number) => Promise<unknown>) => {
      const before = cpuMicros(pid);
      let next = 0;
      await Promise.all(
        Array.from({ length: 64 }, async () => {
          while (next < n / per) await step(next++);
        }),
      );
      return (cpuMicros(pid) - before) / n;
    };
    const fold = () => measure(1, 1, () => storage.treeLeaves()).then((us) => us / keys);
    const coordinate = (i: number) =>
      storage.coordinate({ bucket: 'default', key: `c${i % keys}`, context: {}, node: 'n1', ts: ts++, value: VALUE, supersede: true });
    // Replica writes from three writers, each version's clock covering the key's last one.
    const last = new Map<string, [string, number]>();
    let counter = 1;
    const next = (key: string, coverOwn: boolean): Version[] => {
      const prev = last.get(key);
      const d: [string, number] = [`w${counter % 3}`, counter++];
      const c: Record<string, [number, number]> = prev ? { [prev[0]]: [prev[1], 1] } : {};
      // A clock that covers the version's own dot is not the shortcut's: it merges.
      if (coverOwn) c[d[0]] = [d[1], 1];
      last.set(key, d);
      return [{ d, c, t: ts++, v: VALUE }];
    };
    const replica = (coverOwn: boolean) => (i: number) =>
      storage.applyMany(
        Array.from({ length: BATCH }, (_, q) => {
          const key = `r${(i * BATCH + q) % keys}`;
          return { bucket: 'default', key, versions: next(key, coverOwn) };
        }),
      );
    const event = (i: number) => ({
      bucket: 'default',
      key: `c${i % keys}`,
      event: changeText('put', 'default', `c${i % keys}`, VALUE, 'eyJuMS5leGFtcGxlIjpbMSwxNzk2NDExNTk1Njc0XX0', ts),
    });
    const append = (i: number) =>
      storage.appendChanges(
        Array.from({ length: BATCH }, (_, q) => event(i * BATCH + q)),
        DEFAULTS.changeLogSize,
      );
    process.stderr.write(`filling ${keys} keys twice\n`);
    await measure(keys, 1, coordinate);
    await measure(keys, BATCH, replica(false));
    await storage.treeLeaves();
    const rows = new Map<string, number[]>();
    const add = (name: string, us: number) => rows.set(name, [...(rows.get(name) ?? []), us]);
    for (let r = 1; r <= rounds; r++) {
      process.stderr.write(`round ${r}/${rounds}\n`);
      add("coordinator's write, last write wins over one version", await measure(keys, 1, coordinate));
      add('tree fold, a key rewritten once since the last fold', await fold());
      add(`replica write, batches of ${BATCH}, by the shortcut`, await measure(keys, BATCH, replica(false)));
      add('tree fold, a key rewritten once since the last fold', await fold());
      add(`replica write, batches of ${BATCH}, by the merge`, await measure(keys, BATCH, replica(true)));
      add('tree fold, a key rewritten once since the last fold', await fold());
      add(`change log append, batches of ${BATCH}`, await measure(keys, BATCH, append));
    }
    console.log(`one redis-server alone, ${keys} keys of 100-byte values, ${rounds} rounds; Redis CPU µs per key (/proc), each figure a step of its own`);
    console.log(
      aligned(
        ['STEP', 'REDIS µS/KEY', 'LOW', 'HIGH'],
        [...rows].map(([name, us]) => [name, median(us).toFixed(1), Math.min(...us).toFixed(1), Math.max(...us).toFixed(1)]),
      ),
    );
  } finally {
    await storage.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
