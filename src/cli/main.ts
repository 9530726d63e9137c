#!/usr/bin/env node
import { parseFlags, optionsHelp, type OptionSpecs } from './args.js';
import { UsageError } from '../errors.js';
import { VERSION } from '../version.js';

/** A command's flags and what it does, loaded only when it runs: a health check's `dynamo ping` starts in a fraction of what `dynamo up` loads. */
interface Loaded {
  readonly options: OptionSpecs;
  run(positionals: string[], values: Record<string, unknown>): Promise<number>;
}

interface Command {
  readonly summary: string;
  load(): Promise<Loaded>;
}

const admin = () => import('./admin-commands.js');

const client = () => import('./client-commands.js');
const backups = () => import('./backup-commands.js');

const print = (o: { out: string; code: number }) => {
  // Commands that print as they go (keys, watch) have nothing left to print.
  if (o.out !== '') process.stdout.write(`${o.out}\n`);
  return o.code;
};

type Printing = (positionals: string[], values: Record<string, unknown>) => Promise<{ out: string; code: number }>;

/** A command of module `from` whose outcome is printed: `pick` names its flags and its function. */
function printing<M>(from: () => Promise<M>, pick: (m: M) => [OptionSpecs, Printing]): () => Promise<Loaded> {
  return async () => {
    const [options, command] = pick(await from());
    return { options, run: async (p, v) => print(await command(p, v)) };
  };
}

const BENCH_OPTIONS: OptionSpecs = {
  seconds: { type: 'string', help: 'seconds per row', default: '10' },
  concurrency: { type: 'string', help: 'callers in the closed loop (a second run uses 1)', default: '64' },
  rounds: { type: 'string', help: 'measure every row this many times, turn about, and keep the median', default: '1' },
  warmup: { type: 'string', help: 'seconds of unmeasured puts and gets on each system before the first row (JIT warm-up)', default: '20' },
  json: { type: 'boolean', help: 'print JSON instead of a table' },
  breakdown: { type: 'boolean', help: 'add CPU µs per op of each kind of server process (nats-server, redis-server, node)' },
};

async function benchCommand(p: string[], v: Record<string, unknown>): Promise<number> {
  if (p.length) throw new UsageError(`unexpected argument "${p[0]}"`);
  let bench: typeof import('../../bench/compare.js');
  try {
    bench = await import('../../bench/compare.js');
  } catch (e) {
    throw new Error(`dynamo bench runs from a clone of the repository after npm ci (its dev dependencies drive JetStream KV): ${(e as Error).message}`);
  }
  const seconds = Number(v['seconds']);
  const concurrency = Number(v['concurrency']);
  const rounds = Number(v['rounds']);
  const warmup = Number(v['warmup']);
  if (!(seconds > 0) || !Number.isInteger(concurrency) || concurrency < 1 || !Number.isInteger(rounds) || rounds < 1 || !(warmup >= 0)) {
    throw new UsageError('--seconds must be positive, --warmup zero or more, --concurrency and --rounds positive integers');
  }
  const progress = bench.progressPrinter();
  const rows = await bench.runBench(seconds, concurrency, progress.say, rounds, warmup);
  progress.done();
  return print({
    out: v['json']
      ? JSON.stringify({ seconds, warmup, concurrency, rounds, rows })
      : bench.benchReport(rows, seconds, rounds, concurrency, v['breakdown'] === true, warmup),
    code: 0,
  });
}

const COMMANDS: Record<string, Command> = {
  up: {
    summary: 'up [--nodes 3] [--nats URL]   start a local cluster (nats-server, a redis-server per node, node processes)',
    load: async () => {
      const m = await import('./up.js');
      return { options: m.UP_OPTIONS, run: m.upCommand };
    },
  },
  console: {
    summary: 'console [--nats URL] [--port 8080]          the web console of a running cluster (ring, members, actors, runs, charts)',
    load: async () => {
      const m = await import('./console-command.js');
      return { options: m.CONSOLE_OPTIONS, run: m.consoleCommand };
    },
  },
  node: {
    summary: 'node --id n1 --nats URL --redis URL [--seeds n2,n3] [--weight 1]   run one node in the foreground',
    load: async () => {
      const m = await import('./node-command.js');
      return { options: m.NODE_OPTIONS, run: m.nodeCommand };
    },
  },
  get: {
    summary: 'get KEY [--r 2]                       read a key',
    load: printing(client, (m) => [m.CLIENT_OPTIONS, (p, v) => m.kvCommand('get', p, v)]),
  },
  put: {
    summary:
      'put KEY VALUE [--context C] [--w 2]   write a key (VALUE is JSON; other text is stored as a string); put KEY --op OP for orset and counter buckets',
    load: printing(client, (m) => [m.CLIENT_OPTIONS, (p, v) => m.kvCommand('put', p, v)]),
  },
  delete: {
    summary: 'delete KEY [--context C] [--w 2]      delete a key (a tombstone)',
    load: printing(client, (m) => [m.CLIENT_OPTIONS, (p, v) => m.kvCommand('delete', p, v)]),
  },
  keys: {
    summary: "keys [--bucket B] [--prefix P] [--limit N]   list a bucket's keys, one a line (tombstones left out)",
    load: printing(client, (m) => [m.KEYS_OPTIONS, (p, v) => m.keysCommand(p, v)]),
  },
  watch: {
    summary: "watch [--bucket B] [--prefix P] [--from POSITION] [--count N]   print a bucket's changes live, one JSON line each",
    load: printing(client, (m) => [m.WATCH_OPTIONS, (p, v) => m.watchCommand(p, v)]),
  },
  bucket: {
    summary: 'bucket set NAME [--resolver R] [--r 2] [--w 2] | get NAME | list   bucket properties',
    load: printing(client, (m) => [m.BUCKET_OPTIONS, (p, v) => m.bucketCommand(p, v)]),
  },
  status: {
    summary: 'status [--json]                       members table',
    load: printing(client, (m) => [m.CLIENT_OPTIONS, (p, v) => m.statusCommand(p, v)]),
  },
  ping: {
    summary: 'ping [NODE]                           exit 0 when the node serves (NODE defaults to DYNAMO_NODE_ID; for health checks)',
    load: printing(admin, (m) => [m.LEAVE_OPTIONS, (p, v) => m.pingCommand(p, v)]),
  },
  leave: {
    summary: "leave NODE                            hand a node's ranges to the others, then stop it",
    load: printing(admin, (m) => [m.LEAVE_OPTIONS, (p, v) => m.leaveCommand(p, v)]),
  },
  backup: {
    summary: "backup FILE                           every key's versions (siblings, clocks, tombstones) as NDJSON, with progress",
    load: printing(backups, (m) => [m.BACKUP_OPTIONS, (p, v) => m.backupCommand(p, v)]),
  },
  restore: {
    summary: 'restore FILE                          merge a backup into the running cluster (any size; twice changes nothing)',
    load: printing(backups, (m) => [m.BACKUP_OPTIONS, (p, v) => m.restoreCommand(p, v)]),
  },
  plan: {
    summary: 'plan join NODE [--weight W] | leave NODE | remove NODE | weight NODE W   what a ring change would move, before it is made',
    load: printing(admin, (m) => [m.PLAN_OPTIONS, (p, v) => m.planCommand(p, v)]),
  },
  remove: {
    summary: 'remove NODE                           take a node that is down for good out of the ring; its ranges re-replicate, with progress',
    load: printing(admin, (m) => [m.LEAVE_OPTIONS, (p, v) => m.removeCommand(p, v)]),
  },
  replace: {
    summary: 'replace OLD NEW                       NEW (started with dynamo node) joins, then OLD, down for good, is removed',
    load: printing(admin, (m) => [m.LEAVE_OPTIONS, (p, v) => m.replaceCommand(p, v)]),
  },
  faults: {
    summary: 'faults partition n1,n2 n3 | drop 0.1 | delay 50 | heal   inject faults (nodes started with --allow-faults)',
    load: printing(admin, (m) => [m.FAULTS_OPTIONS, (p, v) => m.faultsCommand(p, v)]),
  },
  bench: {
    summary:
      'bench [--seconds 10] [--concurrency 64] [--rounds 1] [--warmup 20] [--breakdown] [--json]   this store against NATS JetStream KV and the floor of its message pattern',
    load: async () => ({ options: BENCH_OPTIONS, run: benchCommand }),
  },
  ring: {
    summary: 'ring simulate [--nodes 10] [--keys 100000] [--vnodes 128]   compare key placement strategies',
    load: printing(admin, (m) => [m.RING_OPTIONS, (p, v) => m.ringCommand(p, v)]),
  },
};

function usage(command?: { summary: string; options: OptionSpecs }): string {
  if (command) return `usage: dynamo ${command.summary}\n\noptions (each also read from the environment variable shown):\n${optionsHelp(command.options)}`;
  return `dynamo ${VERSION}: a Dynamo-style key-value store on NATS and Redis\n\nusage:\n${Object.values(COMMANDS)
    .map((c) => `  dynamo ${c.summary}`)
    .join('\n')}\n\nRun "dynamo COMMAND --help" for a command's options.`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage()}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`dynamo: unknown command "${name}"\n\n${usage()}\n`);
    return 2;
  }
  const loaded = await command.load();
  const help = { summary: command.summary, options: loaded.options };
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${usage(help)}\n`);
    return 0;
  }
  try {
    const { values, positionals } = parseFlags(rest, loaded.options);
    return await loaded.run(positionals, values);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`dynamo ${name}: ${e.message}\n\n${usage(help)}\n`);
      return 2;
    }
    process.stderr.write(`dynamo ${name}: ${(e as Error).message}\n`);
    return 1;
  }
}

// Output piped into a reader that has stopped (`dynamo keys | head`): stop quietly, as Unix tools do.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: Error) => {
    process.stderr.write(`dynamo: ${e.stack ?? e.message}\n`);
    process.exitCode = 1;
  },
);
