/**
 * `npm run bench:ab -- <build> <build> [...]`: builds of this store against each other, turn
 * about. Each argument is a build's `dist` folder and gets a 3-node cluster of its own (its own
 * nats-server and redis-servers); one load generator then drives each cluster in turn, 64 callers
 * on the documented subjects, the order reversed every round (A B, B A, ...). Before and after
 * each window every node folds its tree (settleTrees), so the tree upkeep a window's writes owe
 * is counted in it; then the CPU of the cluster's processes is read from /proc. A build may be
 * named twice (A B B A) to cancel the cost of where a cluster stands in the order. Prints each
 * round's figure as it goes, then CPU µs per op by kind of process per build (the mean over its
 * rounds), with `--count` the messages and bytes into nats-server per op (a wildcard subscriber,
 * which costs nats-server the same on every cluster). Each cluster is filled, then warmed up with
 * `--warmup` seconds (10) of unmeasured puts and gets (see warmUp in compare.ts). Not a test.
 *
 * A build may carry settings for its cluster after an `@`: `dist@DYNAMO_CHANGE_LOG_SIZE=0`
 * (comma-separated NAME=VALUE pairs, set in the environment of its `dynamo up`, which its nodes
 * inherit), so one build can be measured against itself with a part turned off.
 *
 *   npm run bench:ab -- ../base/dist dist --op put --seconds 6 --rounds 4 [--count]
 *   npm run bench:ab -- dist dist@DYNAMO_CHANGE_LOG_SIZE=0 dist@DYNAMO_CHANGE_LOG_SIZE=0 dist --op put
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { aligned, clusterProcs, fill, settleTrees, subjectTarget, warmUp, type Target } from './compare.js';
import { sample, used, type Proc } from './cpu.js';
import { KEYS, startCluster } from './load.js';

interface Arm {
  /** the argument that named it: a build, and any settings after `@` */
  readonly build: string;
  readonly nc: NatsConnection;
  /** puts and gets on the documented subjects, as npm run bench drives them */
  readonly target: Target;
  readonly procs: readonly Proc[];
  readonly stop: () => Promise<void>;
  /** folds every node's tree (see settleTrees) */
  readonly settle: () => Promise<void>;
  /** messages and bytes seen by the wildcard subscriber, when counting */
  seen: { msgs: number; bytes: number };
}

interface Sample {
  ops: number;
  errors: number;
  byKind: Record<string, number>;
  msgs: number;
  bytes: number;
}

async function load(arm: Arm, op: 'put' | 'get', seconds: number, concurrency: number): Promise<Sample> {
  let ops = 0;
  let errors = 0;
  let i = 0;
  await arm.settle();
  const seen = { ...arm.seen };
  const before = sample(arm.procs);
  const deadline = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const key = `bench-${i++ % KEYS}`;
        try {
          await (op === 'put' ? arm.target.put(key) : arm.target.get(key));
          ops++;
        } catch {
          errors++;
        }
      }
    }),
  );
  await arm.settle();
  const cpu = used(before, sample(arm.procs));
  const byKind: Record<string, number> = {};
  for (const [n, p] of arm.procs.entries()) byKind[p.name] = (byKind[p.name] ?? 0) + cpu[n]! / Math.max(1, ops);
  return { ops, errors, byKind, msgs: (arm.seen.msgs - seen.msgs) / Math.max(1, ops), bytes: (arm.seen.bytes - seen.bytes) / Math.max(1, ops) };
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      op: { type: 'string', default: 'put' },
      seconds: { type: 'string', default: '6' },
      rounds: { type: 'string', default: '4' },
      concurrency: { type: 'string', default: '64' },
      warmup: { type: 'string', default: '10' },
      count: { type: 'boolean' },
    },
  });
  const op = values.op;
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const concurrency = Number(values.concurrency);
  const warmup = Number(values.warmup);
  if (op !== 'put' && op !== 'get') throw new Error('--op must be put or get');
  if (!(warmup >= 0)) throw new Error('--warmup must be zero or more seconds');
  if (positionals.length < 2) throw new Error('name two or more builds (dist folders), e.g. ../base/dist dist');
  if (!(seconds > 0) || !Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(concurrency) || concurrency < 1) {
    throw new Error('--seconds must be positive, --rounds and --concurrency positive integers');
  }
  const specs = positionals.map(parseArm);
  const missing = specs.filter((a) => !existsSync(a.cli)).map((a) => a.dist);
  if (missing.length > 0) throw new Error(`not a built dist folder (no src/cli/main.js): ${missing.join(', ')}`);
  const arms: Arm[] = [];
  try {
    for (const [i, build] of positionals.entries()) {
      const spec = specs[i]!;
      const cluster = await startCluster(3, [], spec.env, spec.cli);
      const nc = await connect({ servers: cluster.file.natsUrl, noAsyncTraces: true }).catch(async (e) => {
        await cluster.stop();
        throw e;
      });
      const arm: Arm = {
        build,
        nc,
        target: subjectTarget(nc, 'dynamo'),
        procs: clusterProcs(cluster.file),
        stop: cluster.stop,
        settle: settleTrees(nc, cluster.file),
        seen: { msgs: 0, bytes: 0 },
      };
      arms.push(arm);
      if (values.count) {
        nc.subscribe('>', {
          callback: (_e, m) => {
            arm.seen.msgs++;
            arm.seen.bytes += m.data.length;
          },
        });
      }
      await fill(arm.target, build, (line) => process.stderr.write(`\r${line}`));
      if (warmup > 0) await warmUp(arm.target, build, warmup, concurrency, (line) => process.stderr.write(`\r${line}`));
      process.stderr.write('\n');
    }
    const results = new Map<string, Sample[]>();
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? arms : [...arms].reverse();
      for (const arm of order) {
        const s = await load(arm, op, seconds, concurrency);
        process.stderr.write(`round ${round + 1}/${rounds} ${arm.build}: ${(s.ops / seconds).toFixed(0)} ops/s, ${sum(s.byKind).toFixed(1)} µs/op\n`);
        results.set(arm.build, [...(results.get(arm.build) ?? []), s]);
      }
    }
    const kinds = ['nats', 'redis', 'node'];
    const head = ['BUILD', 'OPS', 'ERRORS', 'ALL µS/OP', ...kinds.map((k) => `${k.toUpperCase()} µS/OP`), ...(values.count ? ['MSGS/OP', 'BYTES/OP'] : [])];
    const body = [...results].map(([build, ss]) => {
      const ops = ss.reduce((n, s) => n + s.ops, 0);
      // Each figure is the mean over the build's rounds, weighted by their ops.
      const mean = (f: (s: Sample) => number) => ss.reduce((n, s) => n + f(s) * s.ops, 0) / Math.max(1, ops);
      return [
        build,
        String(ops),
        String(ss.reduce((n, s) => n + s.errors, 0)),
        mean((s) => sum(s.byKind)).toFixed(1),
        ...kinds.map((k) => mean((s) => s.byKind[k] ?? 0).toFixed(1)),
        ...(values.count ? [mean((s) => s.msgs).toFixed(2), mean((s) => s.bytes).toFixed(0)] : []),
      ];
    });
    console.log(`${op}s, ${concurrency} callers, ${seconds} s a turn, ${rounds} rounds turn about; CPU of each cluster's own processes (/proc) per op`);
    console.log(aligned(head, body));
  } finally {
    for (const arm of arms) {
      await arm.nc.close().catch(() => {});
      await arm.stop();
    }
  }
}

/** `dist[@NAME=VALUE,...]`: the build's CLI and the environment its cluster starts with. */
function parseArm(arg: string): { dist: string; cli: string; env: Record<string, string> } {
  const at = arg.indexOf('@');
  const dist = at < 0 ? arg : arg.slice(0, at);
  const env: Record<string, string> = {};
  if (at >= 0) {
    for (const pair of arg.slice(at + 1).split(',')) {
      const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(pair);
      if (m === null) throw new Error(`${arg}: expected NAME=VALUE pairs after @, e.g. dist@DYNAMO_CHANGE_LOG_SIZE=0`);
      env[m[1]!] = m[2]!;
    }
  }
  return { dist, cli: resolve(dist, 'src/cli/main.js'), env };
}

const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
