/** Shared pieces of the benchmark scripts: a local cluster of processes, a closed-loop load, a table. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DynamoClient } from '../src/client/client.js';
import { NatsTransport } from '../src/transport/nats-transport.js';
import { exited } from '../src/cli/servers.js';
import type { ClusterFile } from '../src/cli/cluster-file.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
export const KEYS = 10_000;

export interface Row {
  mode: string;
  concurrency: number;
  ops: number;
  p50: number;
  p99: number;
  p999: number;
  errors: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** `dynamo up` in a temporary folder (of this build, or of the build whose CLI is `cli`); resolves with its cluster file once every node serves. */
export async function startCluster(
  nodes: number,
  extra: string[] = [],
  env: Record<string, string> = {},
  cli = CLI,
): Promise<{ file: ClusterFile; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'dynamo-bench-'));
  const up: ChildProcess = spawn(process.execPath, [cli, 'up', '--nodes', String(nodes), '--dir', join(dir, 'state'), ...extra], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  let out = '';
  up.stdout!.on('data', (d) => (out += d));
  const stop = async () => {
    up.kill('SIGTERM');
    await exited(up);
    rmSync(dir, { recursive: true, force: true });
  };
  process.stderr.write(`starting a ${nodes}-node cluster...\n`);
  while (!/serving\. Try:/.test(out)) {
    if (up.exitCode !== null) {
      await stop();
      throw new Error(`dynamo up failed:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { file: JSON.parse(readFileSync(join(dir, 'state', 'cluster.json'), 'utf8')) as ClusterFile, stop };
}

/** Start a cluster, hand a client and a plain NATS connection to `body`, and stop everything after, whatever happens. */
export async function withCluster<T>(
  nodes: number,
  args: string[],
  env: Record<string, string>,
  body: (client: DynamoClient, nats: NatsTransport) => Promise<T>,
): Promise<T> {
  const cluster = await startCluster(nodes, args, env);
  try {
    const client = await DynamoClient.connect(cluster.file.natsUrl);
    const nats = await NatsTransport.connect(cluster.file.natsUrl, 'bench-status');
    try {
      return await body(client, nats);
    } finally {
      await client.close();
      await nats.close();
    }
  } finally {
    await cluster.stop();
  }
}

/** Closed-loop load: `concurrency` callers, half puts and half gets of 100-byte values, for `seconds`. */
export async function run(client: DynamoClient, mode: string, concurrency: number, seconds: number, during?: (elapsedMs: number) => void): Promise<Row> {
  const latencies: number[] = [];
  let errors = 0;
  const value = 'x'.repeat(100);
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let i = 0;
  const tty = process.stderr.isTTY;
  if (!tty) process.stderr.write(`${mode} c=${concurrency} for ${seconds} s\n`);
  const progress = setInterval(() => {
    during?.(performance.now() - start);
    if (tty) process.stderr.write(`\r${mode.padEnd(16)} c=${concurrency}  ${latencies.length} ops`);
  }, 100);
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const key = `bench-${i++ % KEYS}`;
        const t = performance.now();
        try {
          if (i % 2) await client.put(key, value);
          else await client.get(key);
          latencies.push(performance.now() - t);
        } catch {
          errors++;
        }
      }
    }),
  );
  clearInterval(progress);
  if (tty) process.stderr.write(`${'\r'.padEnd(60)}\r`);
  latencies.sort((a, b) => a - b);
  return {
    mode,
    concurrency,
    ops: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    p999: percentile(latencies, 99.9),
    errors,
  };
}

/** Rows as an aligned table; `ratioOf(i)` names the row each row's p99.9 is compared with. */
export function table(rows: Row[], ratioHeader: string, ratioOf: (i: number) => number): string {
  const head = ['MODE', 'CONCURRENCY', 'OPS/S', 'P50 MS', 'P99 MS', 'P99.9 MS', 'ERRORS', ratioHeader];
  const body = rows.map((r, i) => [
    r.mode,
    String(r.concurrency),
    r.ops.toFixed(0),
    r.p50.toFixed(2),
    r.p99.toFixed(2),
    r.p999.toFixed(2),
    String(r.errors),
    (r.p999 / rows[ratioOf(i)]!.p999).toFixed(2),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((t) => t[i]!.length)));
  return [head, ...body]
    .map((line) =>
      line
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
