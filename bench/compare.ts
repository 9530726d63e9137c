/**
 * `npm run bench` / `dynamo bench`: this store against NATS JetStream KV and against
 * the floor of its own message pattern, in one run on this machine.
 *
 * - dynamo: a 3-node cluster (N=3, R=2, W=2; `dynamo up`: one nats-server, a redis-server per node),
 *   driven through the documented subjects (dynamo.kv.put / dynamo.kv.get);
 * - jetstream: three nats-servers in a cluster with JetStream and a KV bucket of 3 replicas (@nats-io/kv);
 * - floor: three processes that pass the same messages (client → coordinator → two replicas, each a
 *   Redis write or read, answer at W=2 / R=2) with no logic at all (bench/floor-node.ts).
 *
 * Each gets the same closed-loop load: 10k keys filled with 100-byte values, then puts and gets
 * at concurrency 64 and at concurrency 1, `--seconds` each (default 10). Latencies go into HDR
 * histograms. Prints one table (or `--json`); not a test.
 *
 *   npm run bench [-- --seconds 10 --concurrency 64 --json]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import hdr from 'hdr-histogram-js';
import { exited, startJetStreamCluster, stopProcess, type ServerProcess } from '../src/cli/servers.js';
import { startCluster } from './load.js';

const KEYS = 10_000;
const VALUE = 'x'.repeat(100);
const FLOOR_NODE = fileURLToPath(new URL('./floor-node.js', import.meta.url));

export interface BenchRow {
  system: 'dynamo' | 'jetstream' | 'floor';
  op: 'put' | 'get';
  concurrency: number;
  opsPerSec: number;
  p50: number;
  p99: number;
  p999: number;
  errors: number;
}

interface Target {
  put(key: string): Promise<void>;
  get(key: string): Promise<void>;
}

/** A put or get through a subject that answers {"ok":...}; a refusal counts as an error. */
function subjectTarget(nc: NatsConnection, prefix: string): Target {
  const ask = async (subject: string, body: string) => {
    const reply = await nc.request(subject, body, { timeout: 5000 });
    if (!reply.string().startsWith('{"ok":true')) throw new Error(reply.string());
  };
  return {
    put: (key) => ask(`${prefix}.kv.put`, `{"key":${JSON.stringify(key)},"value":"${VALUE}"}`),
    get: (key) => ask(`${prefix}.kv.get`, `{"key":${JSON.stringify(key)}}`),
  };
}

function kvTarget(kv: KV): Target {
  return {
    put: async (key) => {
      await kv.put(key, VALUE);
    },
    get: async (key) => {
      if ((await kv.get(key)) === null) throw new Error(`${key} missing`);
    },
  };
}

/** One closed loop: `concurrency` callers doing `op` for `seconds`, latencies in an HDR histogram (µs). */
async function measure(target: Target, system: BenchRow['system'], op: BenchRow['op'], concurrency: number, seconds: number, say: (s: string) => void, round = ''): Promise<BenchRow> {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  let errors = 0;
  let i = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const progress = setInterval(() => say(bar(`${system} ${op} c=${concurrency}${round}`, (performance.now() - start) / (seconds * 1000))), 250);
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const key = `bench-${i++ % KEYS}`;
        const t = performance.now();
        try {
          await (op === 'put' ? target.put(key) : target.get(key));
          h.recordValue(Math.max(1, Math.round((performance.now() - t) * 1000)));
        } catch {
          errors++;
        }
      }
    }),
  );
  clearInterval(progress);
  const ms = (p: number) => h.getValueAtPercentile(p) / 1000;
  const row = { system, op, concurrency, opsPerSec: h.totalCount / seconds, p50: ms(50), p99: ms(99), p999: ms(99.9), errors };
  h.destroy();
  return row;
}

/** Write every key once, 64 at a time (the warm-up, and what the gets read). */
async function fill(target: Target, system: string, say: (s: string) => void): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < KEYS) {
        const k = next++;
        if (k % 500 === 0) say(bar(`${system} filling ${KEYS} keys`, k / KEYS));
        await target.put(`bench-${k}`);
      }
    }),
  );
}

function bar(label: string, share: number): string {
  const w = 30;
  const f = Math.round(Math.min(1, share) * w);
  return `${label.padEnd(34)} [${'#'.repeat(f)}${'-'.repeat(w - f)}] ${String(Math.round(Math.min(1, share) * 100)).padStart(3)}%`;
}

export function benchHeading(seconds: number, rounds: number): string {
  const each = rounds > 1 ? `${seconds} s per row, the median of ${rounds} rounds` : `${seconds} s per row`;
  return `${KEYS} keys, ${VALUE.length}-byte values, closed loop, ${each}, the systems measured turn about; dynamo N=3 R=2 W=2, JetStream KV with 3 replicas`;
}

export function benchTable(rows: readonly BenchRow[]): string {
  const find = (system: BenchRow['system'], r: BenchRow) => rows.find((x) => x.system === system && x.op === r.op && x.concurrency === r.concurrency);
  const head = ['SYSTEM', 'OP', 'CONCURRENCY', 'OPS/S', 'P50 MS', 'P99 MS', 'P99.9 MS', 'ERRORS', 'OPS VS JETSTREAM', 'OPS VS FLOOR', 'P99.9 VS JETSTREAM'];
  const ratio = (a: number, b: number | undefined) => (b ? (a / b).toFixed(2) : '-');
  const body = rows.map((r) => [
    r.system,
    r.op,
    String(r.concurrency),
    r.opsPerSec.toFixed(0),
    r.p50.toFixed(2),
    r.p99.toFixed(2),
    r.p999.toFixed(2),
    String(r.errors),
    ratio(r.opsPerSec, find('jetstream', r)?.opsPerSec),
    ratio(r.opsPerSec, find('floor', r)?.opsPerSec),
    ratio(r.p999, find('jetstream', r)?.p999),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  return [head, ...body].map((l) => l.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/** The row of median throughput among one row's rounds (its latencies come with it, from the same round). */
export function medianRow(rounds: readonly BenchRow[]): BenchRow {
  const sorted = [...rounds].sort((x, y) => x.opsPerSec - y.opsPerSec);
  return { ...sorted[Math.floor((sorted.length - 1) / 2)]!, errors: rounds.reduce((n, r) => n + r.errors, 0) };
}

/**
 * Start the three systems, fill each, then measure them turn about: for each op and
 * concurrency, dynamo, the floor and JetStream one after the other, `rounds` times.
 * The machines these runs share drift by tens of percent within minutes; measured
 * side by side, the ratios stay honest. Each row reports its median round.
 */
export async function runBench(seconds: number, concurrency: number, say: (s: string) => void, rounds = 1): Promise<BenchRow[]> {
  // dynamo, and the floor on the same nats-server and redis-servers.
  const cluster = await startCluster(3);
  const floor: ChildProcess[] = [];
  const ncs: NatsConnection[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'dynamo-bench-js-'));
  let servers: ServerProcess[] = [];
  try {
    const nc = await connect({ servers: cluster.file.natsUrl, noAsyncTraces: true });
    ncs.push(nc);
    const ids = cluster.file.nodes.map((n) => n.id);
    for (const n of cluster.file.nodes) {
      const child = spawn(process.execPath, [FLOOR_NODE, n.id, cluster.file.natsUrl, n.redisUrl, ids.filter((x) => x !== n.id).join(',')], { stdio: ['pipe', 'pipe', 'inherit'] });
      floor.push(child);
      await new Promise<void>((resolve, reject) => {
        child.stdout!.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`floor node ${n.id} exited with ${code}`)));
      });
    }

    // JetStream KV: three clustered nats-servers, a bucket with three replicas.
    say('starting a 3-server JetStream cluster');
    servers = await startJetStreamCluster(dir, 3);
    const js = await connect({ servers: servers.map((s) => s.url), noAsyncTraces: true });
    ncs.push(js);
    const kvm = new Kvm(js);
    let kv: KV | null = null;
    const deadline = Date.now() + 60_000;
    while (kv === null) {
      try {
        kv = await kvm.create('bench', { replicas: 3 });
      } catch (e) {
        // Until the servers elect a meta leader, creating a stream fails.
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 500));
      }
    }

    const targets: [BenchRow['system'], Target][] = [
      ['dynamo', subjectTarget(nc, 'dynamo')],
      ['floor', subjectTarget(nc, 'floor')],
      ['jetstream', kvTarget(kv)],
    ];
    for (const [system, target] of targets) await fill(target, system, say);
    const measured = new Map<string, BenchRow[]>();
    for (let round = 1; round <= rounds; round++) {
      for (const c of [concurrency, 1]) {
        for (const op of ['put', 'get'] as const) {
          for (const [system, target] of targets) {
            const row = await measure(target, system, op, c, seconds, say, rounds > 1 ? ` (${round}/${rounds})` : '');
            const name = `${system} ${op} ${c}`;
            measured.set(name, [...(measured.get(name) ?? []), row]);
          }
        }
      }
    }
    // Rows in the table's order: system, then concurrency, then op.
    const rows: BenchRow[] = [];
    for (const [system] of targets) for (const c of [concurrency, 1]) for (const op of ['put', 'get'] as const) rows.push(medianRow(measured.get(`${system} ${op} ${c}`)!));
    return rows;
  } finally {
    await Promise.all(ncs.map((c) => c.close()));
    for (const f of floor) f.kill('SIGTERM');
    await Promise.all(floor.map((f) => exited(f)));
    await cluster.stop();
    await Promise.all(servers.map((s) => stopProcess(s.child, 5000)));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Progress on stderr: a bar redrawn in place on a terminal, a line per phase otherwise. */
export function progressPrinter(): { say: (s: string) => void; done: () => void } {
  const tty = process.stderr.isTTY;
  let last = '';
  return {
    say: (s) => {
      if (tty) process.stderr.write(`\r${s}`);
      else if (s.split('[')[0] !== last.split('[')[0]) process.stderr.write(`${s.split('[')[0]!.trimEnd()}\n`);
      last = s;
    },
    done: () => {
      if (tty) process.stderr.write('\n');
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, concurrency: { type: 'string', default: '64' }, rounds: { type: 'string', default: '1' }, json: { type: 'boolean' } } });
  const seconds = Number(values.seconds);
  const concurrency = Number(values.concurrency);
  const rounds = Number(values.rounds);
  if (!(seconds > 0) || !Number.isInteger(concurrency) || concurrency < 1 || !Number.isInteger(rounds) || rounds < 1) {
    throw new Error('--seconds must be positive, --concurrency and --rounds positive integers');
  }
  const progress = progressPrinter();
  const rows = await runBench(seconds, concurrency, progress.say, rounds);
  progress.done();
  if (values.json) console.log(JSON.stringify({ seconds, concurrency, rounds, keys: KEYS, valueBytes: VALUE.length, rows }));
  else {
    console.log(benchHeading(seconds, rounds));
    console.log(benchTable(rows));
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
