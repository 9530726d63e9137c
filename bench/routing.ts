/**
 * Partition-aware routing against routing through any node: the same closed-loop
 * load on a local 5-node cluster (N=3, so 2 of 5 nodes must forward a key's request),
 * once each way, in one run. Prints a table; not a test.
 *
 *   npm run bench:routing [-- --seconds 5 --concurrency 32]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DynamoClient } from '../src/client/client.js';
import { exited } from '../src/cli/servers.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, concurrency: { type: 'string', default: '32' }, nodes: { type: 'string', default: '5' } } });
const SECONDS = Number(values.seconds);
const CONCURRENCY = Number(values.concurrency);
const KEYS = 10_000;
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

interface Row {
  mode: string;
  concurrency: number;
  ops: number;
  p50: number;
  p99: number;
  p999: number;
  errors: number;
}

async function run(client: DynamoClient, mode: string, concurrency: number, seconds: number): Promise<Row> {
  const latencies: number[] = [];
  let errors = 0;
  const value = 'x'.repeat(100);
  const deadline = performance.now() + seconds * 1000;
  let i = 0;
  const tty = process.stderr.isTTY;
  if (!tty) process.stderr.write(`${mode} c=${concurrency} for ${seconds} s\n`);
  const progress = setInterval(() => tty && process.stderr.write(`\r${mode.padEnd(16)} c=${concurrency}  ${latencies.length} ops`), 500);
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
  if (tty) process.stderr.write('\r'.padEnd(60) + '\r');
  latencies.sort((a, b) => a - b);
  return { mode, concurrency, ops: latencies.length / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99), p999: percentile(latencies, 99.9), errors };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dynamo-bench-'));
  const up = spawn(process.execPath, [CLI, 'up', '--nodes', values.nodes!, '--dir', join(dir, 'state')], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  up.stdout!.on('data', (d) => (out += d));
  try {
    process.stderr.write(`starting a ${values.nodes}-node cluster...\n`);
    while (!/serving\. Try:/.test(out)) {
      if (up.exitCode !== null) throw new Error(`dynamo up failed:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const url = (JSON.parse(readFileSync(join(dir, 'state', 'cluster.json'), 'utf8')) as { natsUrl: string }).natsUrl;
    const plain = await DynamoClient.connect(url);
    const aware = await DynamoClient.connect(url, { partitionAware: true });
    // Warm up both paths (connections, JIT, the ring copy).
    await run(plain, 'warm-up', CONCURRENCY, 1);
    await run(aware, 'warm-up', CONCURRENCY, 1);
    const rows: Row[] = [];
    for (const c of [CONCURRENCY, 1]) {
      rows.push(await run(plain, 'any node', c, SECONDS));
      rows.push(await run(aware, 'partition-aware', c, SECONDS));
    }
    await plain.close();
    await aware.close();
    const head = ['ROUTING', 'CONCURRENCY', 'OPS/S', 'P50 MS', 'P99 MS', 'P99.9 MS', 'ERRORS', 'P99.9 VS ANY NODE'];
    const table = rows.map((r, i) => {
      const base = rows[i - (i % 2)]!;
      return [r.mode, String(r.concurrency), r.ops.toFixed(0), r.p50.toFixed(2), r.p99.toFixed(2), r.p999.toFixed(2), String(r.errors), (r.p999 / base.p999).toFixed(2)];
    });
    const widths = head.map((h, i) => Math.max(h.length, ...table.map((t) => t[i]!.length)));
    console.log(`${values.nodes} nodes, N=3, 50% puts / 50% gets of 100-byte values over ${KEYS} keys, ${SECONDS} s per row`);
    for (const line of [head, ...table]) console.log(line.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
  } finally {
    up.kill('SIGTERM');
    await exited(up);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
