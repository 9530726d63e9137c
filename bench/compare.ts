/**
 * `npm run bench` / `dynamo bench`: this store against NATS JetStream KV and against
 * the floor of its own message pattern, in one run on this machine.
 *
 * - dynamo: a 3-node cluster (N=3, R=2, W=2; `dynamo up`: one nats-server, a redis-server per node),
 *   driven through the documented subjects (dynamo.kv.put / dynamo.kv.get);
 * - client: the same cluster through DynamoClient;
 * - dynamo6: a 6-node cluster (N=3), raw subjects: a ring should cost the same per op as it grows;
 * - jetstream: three nats-servers in a cluster with JetStream and a KV bucket of 3 replicas (@nats-io/kv);
 * - floor: three processes that pass the same messages (client → coordinator → two replicas, each a
 *   Redis write or read, answer at W=2 / R=2) with no logic at all, batched per peer as the store
 *   batches (bench/floor-node.ts);
 * - floor6: the floor on the 6-node cluster's servers, six processes, three replicas per key, a
 *   request landing on a process that is not one forwarded to one that is: what the parts cost as
 *   the ring grows, the reference for dynamo6.
 *
 * Each gets the same closed-loop load: 10k keys filled with 100-byte values, then puts and gets
 * at concurrency 64 and at concurrency 1, `--seconds` each (default 10). Latencies go into HDR
 * histograms; CPU per op is read from /proc for each system's own server processes. Prints one
 * table, the targets, and with `--breakdown` the CPU per op of each kind of process (or `--json`);
 * not a test.
 *
 *   npm run bench [-- --seconds 10 --concurrency 64 --rounds 1 --breakdown --json]
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
import { exited, startNatsCluster, stopProcess } from '../src/cli/servers.js';
import { startCluster } from './load.js';
import { sample, used, type Proc } from './cpu.js';
import { DynamoClient } from '../src/client/client.js';
import type { ClusterFile } from '../src/cli/cluster-file.js';

const KEYS = 10_000;
const VALUE = 'x'.repeat(100);
/** Seconds of unmeasured load each system gets before the first row (see warmUp). */
export const DEFAULT_WARMUP_SECONDS = 20;
const FLOOR_NODE = fileURLToPath(new URL('./floor-node.js', import.meta.url));

/** The systems of a run: this store (3 nodes through raw subjects or the client library, 6 nodes raw), the floor, JetStream KV. */
export type SystemName = 'dynamo' | 'client' | 'dynamo6' | 'floor' | 'floor6' | 'jetstream';

export interface BenchRow {
  system: SystemName;
  op: 'put' | 'get';
  concurrency: number;
  opsPerSec: number;
  p50: number;
  p99: number;
  p999: number;
  errors: number;
  /** CPU µs per op of the system's own server processes (/proc utime + stime over the window) */
  cpuPerOp: number;
  /** CPU µs per op of the load generator (this process) */
  loaderCpuPerOp: number;
  /** CPU µs per op of each server process, by name */
  breakdown: Record<string, number>;
}

export interface Target {
  put(key: string): Promise<void>;
  get(key: string): Promise<void>;
}

interface System {
  readonly name: SystemName;
  readonly target: Target;
  /** the server processes whose CPU counts for this system */
  readonly procs: readonly Proc[];
  /** concurrencies it is measured at */
  readonly concurrencies: readonly number[];
  /** work the store owes for the window's writes, done before the window's CPU is read (see settleTrees) */
  readonly settle?: () => Promise<void>;
}

/**
 * Make every node of a cluster fold the keys written since its last fold into its tree, so
 * that a window's CPU includes the tree upkeep its writes cost: a node folds only before an
 * exchange, a listing, a status, or (at most every few seconds) housekeeping, and upkeep left for after
 * the window would otherwise be counted nowhere. A listing folds first; a one-key page of one
 * segment on the node's own keys subject asks for nothing else.
 */
export function settleTrees(nc: NatsConnection, file: ClusterFile, prefix = 'dynamo'): () => Promise<void> {
  const body = JSON.stringify({ bucket: 'default', prefix: '', after: null, limit: 1, segments: [[0, 0]] });
  return async () => {
    await Promise.all(
      file.nodes.map(async (n) => {
        const reply = await nc.request(`${prefix}.node.${n.id}.keys`, body, { timeout: 30_000 });
        if (!reply.string().startsWith('{"ok":true')) throw new Error(`settling ${n.id}: ${reply.string()}`);
      }),
    );
  };
}

/** A put or get through a subject that answers {"ok":...}; a refusal counts as an error. */
export function subjectTarget(nc: NatsConnection, prefix: string): Target {
  const ask = async (subject: string, body: string) => {
    const reply = await nc.request(subject, body, { timeout: 5000 });
    if (!reply.string().startsWith('{"ok":true')) throw new Error(reply.string());
  };
  return {
    put: (key) => ask(`${prefix}.kv.put`, `{"key":${JSON.stringify(key)},"value":"${VALUE}"}`),
    get: (key) => ask(`${prefix}.kv.get`, `{"key":${JSON.stringify(key)}}`),
  };
}

function clientTarget(client: DynamoClient): Target {
  return {
    put: async (key) => {
      await client.put(key, VALUE);
    },
    get: async (key) => {
      if (!(await client.get(key)).found) throw new Error(`${key} missing`);
    },
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

/** One closed loop: `concurrency` callers doing `op` for `seconds`, latencies in an HDR histogram (µs), CPU from /proc. */
async function measure(sys: System, op: BenchRow['op'], concurrency: number, seconds: number, say: (s: string) => void, round = ''): Promise<BenchRow> {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  let errors = 0;
  let i = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const progress = setInterval(() => say(bar(`${sys.name} ${op} c=${concurrency}${round}`, (performance.now() - start) / (seconds * 1000))), 250);
  // Upkeep owed for earlier writes (the fill, another row) is not this window's.
  await sys.settle?.();
  const before = sample(sys.procs);
  const loaderBefore = process.cpuUsage();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const key = `bench-${i++ % KEYS}`;
        const t = performance.now();
        try {
          await (op === 'put' ? sys.target.put(key) : sys.target.get(key));
          h.recordValue(Math.max(1, Math.round((performance.now() - t) * 1000)));
        } catch {
          errors++;
        }
      }
    }),
  );
  await sys.settle?.();
  const cpu = used(before, sample(sys.procs));
  const loader = process.cpuUsage(loaderBefore);
  clearInterval(progress);
  const ops = Math.max(1, h.totalCount);
  const ms = (p: number) => h.getValueAtPercentile(p) / 1000;
  const breakdown: Record<string, number> = {};
  for (const [n, p] of sys.procs.entries()) breakdown[p.name] = (breakdown[p.name] ?? 0) + cpu[n]! / ops;
  const row: BenchRow = {
    system: sys.name,
    op,
    concurrency,
    opsPerSec: h.totalCount / seconds,
    p50: ms(50),
    p99: ms(99),
    p999: ms(99.9),
    errors,
    cpuPerOp: cpu.reduce((a, b) => a + b, 0) / ops,
    loaderCpuPerOp: (loader.user + loader.system) / ops,
    breakdown,
  };
  h.destroy();
  return row;
}

/**
 * Unmeasured load before the first row: `seconds` of it on one system, at the bench's
 * concurrency, its puts and gets in four turns. The nodes are Node.js processes whose hot code
 * V8 optimizes, deoptimizes and optimizes again as new shapes reach it: from a fresh start a
 * node's CPU per op fell by about a quarter over its first half minute of load (TurboFan's
 * compiler threads were 9% of a node's CPU in the first ten seconds, 2% after thirty). Every
 * system, the floor and JetStream KV included, gets the same warm-up, so the rows compare the
 * systems as they run for months, not their first seconds.
 */
export async function warmUp(target: Target, system: string, seconds: number, concurrency: number, say: (s: string) => void): Promise<void> {
  const start = performance.now();
  const progress = setInterval(() => say(bar(`${system} warming up`, (performance.now() - start) / (seconds * 1000))), 250);
  let i = 0;
  try {
    for (let turn = 0; turn < 4; turn++) {
      const deadline = start + ((turn + 1) * seconds * 1000) / 4;
      const put = turn % 2 === 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (performance.now() < deadline) {
            const key = `bench-${i++ % KEYS}`;
            await (put ? target.put(key) : target.get(key)).catch(() => {});
          }
        }),
      );
    }
  } finally {
    clearInterval(progress);
  }
}

/** Write every key once, 64 at a time (what the gets read). */
export async function fill(target: Target, system: string, say: (s: string) => void): Promise<void> {
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

export function benchHeading(seconds: number, rounds: number, warmup = DEFAULT_WARMUP_SECONDS): string {
  const each = rounds > 1 ? `${seconds} s per row, the median of ${rounds} rounds` : `${seconds} s per row`;
  const warm = warmup > 0 ? `, after ${warmup} s of unmeasured puts and gets on each system` : ', no warm-up';
  return [
    `${KEYS} keys, ${VALUE.length}-byte values, closed loop, ${each}, the systems measured turn about${warm}.`,
    'dynamo: 3 nodes N=3 R=2 W=2 on the documented subjects; client: the same cluster through DynamoClient; dynamo6: 6 nodes, N=3;',
    'floor: the same message pattern with no logic, replica traffic batched per peer per event-loop turn; floor6: the same on 6 processes, 3 replicas a key',
    '(dynamo6 is compared with floor6); jetstream: JetStream KV, 3 servers, 3 replicas.',
    "CPU: utime+stime of the system's own server processes (/proc) over the window, µs per op; LOADER: this process's.",
  ].join('\n');
}

const find = (rows: readonly BenchRow[], system: SystemName, op: BenchRow['op'], concurrency: number) =>
  rows.find((x) => x.system === system && x.op === op && x.concurrency === concurrency);
const ratio = (a: number, b: number | undefined) => (b ? a / b : NaN);
/** The floor a row is compared with: the one of the same size. */
const floorOf = (system: SystemName): SystemName => (system === 'dynamo6' || system === 'floor6' ? 'floor6' : 'floor');
const fmt = (x: number) => (Number.isNaN(x) ? '-' : x.toFixed(2));

export function aligned(head: string[], body: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  return [head, ...body]
    .map((l) =>
      l
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function benchTable(rows: readonly BenchRow[]): string {
  const head = [
    'SYSTEM',
    'OP',
    'CONCURRENCY',
    'OPS/S',
    'P50 MS',
    'P99 MS',
    'P99.9 MS',
    'ERRORS',
    'CPU µS/OP',
    'LOADER µS/OP',
    'CPU VS FLOOR',
    'OPS VS JETSTREAM',
    'OPS VS FLOOR',
    'P99.9 VS JETSTREAM',
  ];
  const body = rows.map((r) => [
    r.system,
    r.op,
    String(r.concurrency),
    r.opsPerSec.toFixed(0),
    r.p50.toFixed(2),
    r.p99.toFixed(2),
    r.p999.toFixed(2),
    String(r.errors),
    r.cpuPerOp.toFixed(0),
    r.loaderCpuPerOp.toFixed(0),
    fmt(ratio(r.cpuPerOp, find(rows, floorOf(r.system), r.op, r.concurrency)?.cpuPerOp)),
    fmt(ratio(r.opsPerSec, find(rows, 'jetstream', r.op, r.concurrency)?.opsPerSec)),
    fmt(ratio(r.opsPerSec, find(rows, floorOf(r.system), r.op, r.concurrency)?.opsPerSec)),
    fmt(ratio(r.p999, find(rows, 'jetstream', r.op, r.concurrency)?.p999)),
  ]);
  return aligned(head, body);
}

/** CPU µs per op of each server process, a row per measured row (processes of one kind summed: nats, redis, node). */
export function breakdownTable(rows: readonly BenchRow[]): string {
  const names = [...new Set(rows.flatMap((r) => Object.keys(r.breakdown)))];
  const head = ['SYSTEM', 'OP', 'CONCURRENCY', ...names.map((n) => n.toUpperCase())];
  const body = rows.map((r) => [r.system, r.op, String(r.concurrency), ...names.map((n) => (r.breakdown[n] === undefined ? '' : r.breakdown[n]!.toFixed(1)))]);
  return aligned(head, body);
}

export interface TargetCheck {
  readonly name: string;
  readonly value: number;
  readonly limit: number;
  /** 'max': value ≤ limit; 'min': value ≥ limit */
  readonly kind: 'max' | 'min';
}

/** The targets of issue 16, each worked out from the rows of one run. */
export function targetChecks(rows: readonly BenchRow[], concurrency: number): TargetCheck[] {
  const c = concurrency;
  const checks: TargetCheck[] = [];
  const add = (name: string, value: number | undefined, limit: number, kind: 'max' | 'min') => {
    if (value !== undefined && !Number.isNaN(value)) checks.push({ name, value, limit, kind });
  };
  const row = (s: SystemName, op: BenchRow['op'], cc = c) => find(rows, s, op, cc);
  for (const [op, cpu, ops] of [
    ['put', 2.0, 0.6],
    ['get', 1.5, 0.7],
  ] as const) {
    const d = row('dynamo', op);
    const f = row('floor', op);
    const j = row('jetstream', op);
    add(`${op}: server CPU/op vs the batched floor's, c=${c}`, d && f && ratio(d.cpuPerOp, f.cpuPerOp), cpu, 'max');
    add(`${op}: ops/s vs JetStream KV's, raw subjects, c=${c}`, d && j && ratio(d.opsPerSec, j.opsPerSec), ops, 'min');
    add(`${op}: p99.9 vs JetStream KV's, c=${c}`, d && j && ratio(d.p999, j.p999), 1.5, 'max');
    const cl = row('client', op);
    add(`${op}: ops/s through the client library vs JetStream KV's, c=${c}`, cl && j && ratio(cl.opsPerSec, j.opsPerSec), 1.0, 'min');
    add(`${op}: p50 ms, 1 caller`, row('dynamo', op, 1)?.p50, op === 'put' ? 1.5 : 1.0, 'max');
    const six = row('dynamo6', op);
    add(`${op}: CPU/op of 6 nodes vs 3 nodes, c=${c}`, six && d && ratio(six.cpuPerOp, d.cpuPerOp), 1.25, 'max');
  }
  add(
    'errors, every row',
    rows.reduce((n, r) => n + r.errors, 0),
    0,
    'max',
  );
  return checks;
}

/**
 * What the parts themselves do as the ring grows, in the same run: the floor's CPU per op
 * on 6 processes against 3, beside the store's. Not a target; the honest limit of the
 * 6-vs-3 one on this machine.
 */
export function scalingReference(rows: readonly BenchRow[], concurrency: number): string[] {
  const lines: string[] = [];
  for (const op of ['put', 'get'] as const) {
    const [f3, f6, d3, d6] = (['floor', 'floor6', 'dynamo', 'dynamo6'] as const).map((s) => find(rows, s, op, concurrency));
    if (!f3 || !f6) continue;
    const store = d3 && d6 ? `, this store's ${fmt(ratio(d6.cpuPerOp, d3.cpuPerOp))}` : '';
    lines.push(`${op}: the floor's own CPU/op on 6 processes vs 3, c=${concurrency}: ${fmt(ratio(f6.cpuPerOp, f3.cpuPerOp))}${store}`);
  }
  return lines;
}

export function targetsTable(checks: readonly TargetCheck[]): string {
  const body = checks.map((t) => {
    const met = t.kind === 'max' ? t.value <= t.limit : t.value >= t.limit;
    return [t.name, Number.isInteger(t.value) ? String(t.value) : t.value.toFixed(2), `${t.kind === 'max' ? '≤' : '≥'} ${t.limit}`, met ? 'met' : 'NOT MET'];
  });
  return aligned(['TARGET', 'VALUE', 'LIMIT', ''], body);
}

/** The whole printed report of a run. */
export function benchReport(
  rows: readonly BenchRow[],
  seconds: number,
  rounds: number,
  concurrency: number,
  breakdown: boolean,
  warmup = DEFAULT_WARMUP_SECONDS,
): string {
  const parts = [benchHeading(seconds, rounds, warmup), benchTable(rows)];
  if (breakdown) parts.push('', 'CPU µs per op by process:', breakdownTable(rows));
  parts.push('', 'Targets (issue 16), from this run:', targetsTable(targetChecks(rows, concurrency)));
  const scaling = scalingReference(rows, concurrency);
  if (scaling.length > 0) parts.push('', 'For reference, what the parts do as the ring grows:', ...scaling);
  return parts.join('\n');
}

/** The row of median throughput among one row's rounds (its latencies and CPU come with it, from the same round). */
export function medianRow(rounds: readonly BenchRow[]): BenchRow {
  const sorted = [...rounds].sort((x, y) => x.opsPerSec - y.opsPerSec);
  return { ...sorted[Math.floor((sorted.length - 1) / 2)]!, errors: rounds.reduce((n, r) => n + r.errors, 0) };
}

/** Processes of a `dynamo up` cluster, by kind: nats-server, redis-server, node. */
export function clusterProcs(file: ClusterFile): Proc[] {
  return file.children.map((c) => ({ name: c.name.startsWith('nats') ? 'nats' : c.name.startsWith('redis') ? 'redis' : 'node', pid: c.pid }));
}

/** The floor's processes on a cluster's nats-server and redis-servers, one per node, N=3. */
async function startFloor(file: ClusterFile): Promise<ChildProcess[]> {
  const floor: ChildProcess[] = [];
  const ids = file.nodes.map((n) => n.id);
  for (const n of file.nodes) {
    const child = spawn(process.execPath, [FLOOR_NODE, n.id, file.natsUrl, n.redisUrl, ids.filter((x) => x !== n.id).join(','), '3'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    floor.push(child);
    await new Promise<void>((resolve, reject) => {
      child.stdout!.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`floor node ${n.id} exited with ${code}`)));
    });
  }
  return floor;
}

async function createKv(js: NatsConnection): Promise<KV> {
  const kvm = new Kvm(js);
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      return await kvm.create('bench', { replicas: 3 });
    } catch (e) {
      // Until the servers elect a meta leader, creating a stream fails.
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/**
 * Start the systems, fill each, then measure them turn about: for each op and
 * concurrency, every system one after the other, `rounds` times. The machines these
 * runs share drift by tens of percent within minutes; measured side by side, the ratios
 * stay honest. Each row reports its median round.
 */
export async function runBench(
  seconds: number,
  concurrency: number,
  say: (s: string) => void,
  rounds = 1,
  warmup = DEFAULT_WARMUP_SECONDS,
): Promise<BenchRow[]> {
  const stops: (() => Promise<unknown>)[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'dynamo-bench-js-'));
  try {
    const cluster = await startCluster(3);
    stops.push(cluster.stop);
    const six = await startCluster(6);
    stops.push(six.stop);
    const nc = await connect({ servers: cluster.file.natsUrl, noAsyncTraces: true });
    stops.push(() => nc.close());
    const nc6 = await connect({ servers: six.file.natsUrl, noAsyncTraces: true });
    stops.push(() => nc6.close());
    const client = await DynamoClient.connect(cluster.file.natsUrl);
    stops.push(() => client.close());
    // The floor on the 3-node cluster's nats-server and redis-servers.
    const floor = await startFloor(cluster.file);
    const floor6 = await startFloor(six.file);
    stops.push(async () => {
      for (const f of [...floor, ...floor6]) f.kill('SIGTERM');
      await Promise.all([...floor, ...floor6].map((f) => exited(f)));
    });

    say('starting a 3-server JetStream cluster');
    const servers = await startNatsCluster(dir, { name: 'js', count: 3, jetstream: true });
    stops.push(() => Promise.all(servers.map((s) => stopProcess(s.child, 5000))));
    const js = await connect({ servers: servers.map((s) => s.url), noAsyncTraces: true });
    stops.push(() => js.close());
    const kv = await createKv(js);

    const shared = clusterProcs(cluster.file);
    const both = [concurrency, 1];
    const systems: System[] = [
      { name: 'dynamo', target: subjectTarget(nc, 'dynamo'), procs: shared, concurrencies: both, settle: settleTrees(nc, cluster.file) },
      { name: 'client', target: clientTarget(client), procs: shared, concurrencies: [concurrency], settle: settleTrees(nc, cluster.file) },
      {
        name: 'dynamo6',
        target: subjectTarget(nc6, 'dynamo'),
        procs: clusterProcs(six.file),
        concurrencies: [concurrency],
        settle: settleTrees(nc6, six.file),
      },
      {
        name: 'floor',
        target: subjectTarget(nc, 'floor'),
        procs: [...shared.filter((p) => p.name !== 'node'), ...floor.map((f) => ({ name: 'node', pid: f.pid! }))],
        concurrencies: both,
      },
      {
        name: 'floor6',
        target: subjectTarget(nc6, 'floor'),
        procs: [...clusterProcs(six.file).filter((p) => p.name !== 'node'), ...floor6.map((f) => ({ name: 'node', pid: f.pid! }))],
        concurrencies: [concurrency],
      },
      { name: 'jetstream', target: kvTarget(kv), procs: servers.map((s) => ({ name: 'nats', pid: s.child.pid! })), concurrencies: both },
    ];
    for (const s of systems) if (s.name !== 'client') await fill(s.target, s.name, say);
    if (warmup > 0) for (const s of systems) await warmUp(s.target, s.name, warmup, concurrency, say);
    const measured = new Map<string, BenchRow[]>();
    for (let round = 1; round <= rounds; round++) {
      for (const c of both) {
        for (const op of ['put', 'get'] as const) {
          for (const s of systems) {
            if (!s.concurrencies.includes(c)) continue;
            const row = await measure(s, op, c, seconds, say, rounds > 1 ? ` (${round}/${rounds})` : '');
            const name = `${s.name} ${op} ${c}`;
            measured.set(name, [...(measured.get(name) ?? []), row]);
          }
        }
      }
    }
    // Rows in the table's order: system, then concurrency, then op.
    const rows: BenchRow[] = [];
    for (const s of systems)
      for (const c of s.concurrencies) for (const op of ['put', 'get'] as const) rows.push(medianRow(measured.get(`${s.name} ${op} ${c}`)!));
    return rows;
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
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
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '10' },
      concurrency: { type: 'string', default: '64' },
      rounds: { type: 'string', default: '1' },
      warmup: { type: 'string', default: String(DEFAULT_WARMUP_SECONDS) },
      json: { type: 'boolean' },
      breakdown: { type: 'boolean' },
    },
  });
  const seconds = Number(values.seconds);
  const concurrency = Number(values.concurrency);
  const rounds = Number(values.rounds);
  const warmup = Number(values.warmup);
  if (!(seconds > 0) || !Number.isInteger(concurrency) || concurrency < 1 || !Number.isInteger(rounds) || rounds < 1 || !(warmup >= 0)) {
    throw new Error('--seconds must be positive, --warmup zero or more, --concurrency and --rounds positive integers');
  }
  const progress = progressPrinter();
  const rows = await runBench(seconds, concurrency, progress.say, rounds, warmup);
  progress.done();
  if (values.json) console.log(JSON.stringify({ seconds, warmup, concurrency, rounds, keys: KEYS, valueBytes: VALUE.length, rows }));
  else console.log(benchReport(rows, seconds, rounds, concurrency, values.breakdown === true, warmup));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
