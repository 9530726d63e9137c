#!/usr/bin/env node
import { parseFlags, optionsHelp, type OptionSpecs } from './args.js';
import { FAULTS_OPTIONS, faultsCommand, LEAVE_OPTIONS, leaveCommand, pingCommand, RING_OPTIONS, ringCommand } from './admin-commands.js';
import { BUCKET_OPTIONS, bucketCommand, CLIENT_OPTIONS, kvCommand, statusCommand } from './client-commands.js';
import { NODE_OPTIONS, nodeCommand } from './node-command.js';
import { UP_OPTIONS, upCommand } from './up.js';
import { CONSOLE_OPTIONS, consoleCommand } from './console-command.js';
import { UsageError } from '../errors.js';
import { VERSION } from '../version.js';

interface Command {
  readonly summary: string;
  readonly options: OptionSpecs;
  run(positionals: string[], values: Record<string, unknown>): Promise<number>;
}

const print = (o: { out: string; code: number }) => {
  process.stdout.write(`${o.out}\n`);
  return o.code;
};

const COMMANDS: Record<string, Command> = {
  up: {
    summary: 'up [--nodes 3] [--nats URL]   start a local cluster (nats-server, a redis-server per node, node processes)',
    options: UP_OPTIONS,
    run: upCommand,
  },
  console: {
    summary: 'console [--nats URL] [--port 8080]          the web console of a running cluster (ring, members, actors, runs, charts)',
    options: CONSOLE_OPTIONS,
    run: consoleCommand,
  },
  node: {
    summary: 'node --id n1 --nats URL --redis URL [--seeds n2,n3] [--weight 1]   run one node in the foreground',
    options: NODE_OPTIONS,
    run: nodeCommand,
  },
  get: { summary: 'get KEY [--r 2]                       read a key', options: CLIENT_OPTIONS, run: async (p, v) => print(await kvCommand('get', p, v)) },
  put: {
    summary:
      'put KEY VALUE [--context C] [--w 2]   write a key (VALUE is JSON; other text is stored as a string); put KEY --op OP for orset and counter buckets',
    options: CLIENT_OPTIONS,
    run: async (p, v) => print(await kvCommand('put', p, v)),
  },
  delete: {
    summary: 'delete KEY [--context C] [--w 2]      delete a key (a tombstone)',
    options: CLIENT_OPTIONS,
    run: async (p, v) => print(await kvCommand('delete', p, v)),
  },
  bucket: {
    summary: 'bucket set NAME [--resolver R] [--r 2] [--w 2] | get NAME | list   bucket properties',
    options: BUCKET_OPTIONS,
    run: async (p, v) => print(await bucketCommand(p, v)),
  },
  status: { summary: 'status [--json]                       members table', options: CLIENT_OPTIONS, run: async (p, v) => print(await statusCommand(p, v)) },
  ping: {
    summary: 'ping [NODE]                           exit 0 when the node serves (NODE defaults to DYNAMO_NODE_ID; for health checks)',
    options: LEAVE_OPTIONS,
    run: async (p, v) => print(await pingCommand(p, v)),
  },
  leave: {
    summary: "leave NODE                            hand a node's ranges to the others, then stop it",
    options: LEAVE_OPTIONS,
    run: async (p, v) => print(await leaveCommand(p, v)),
  },
  faults: {
    summary: 'faults partition n1,n2 n3 | drop 0.1 | delay 50 | heal   inject faults (nodes started with --allow-faults)',
    options: FAULTS_OPTIONS,
    run: async (p, v) => print(await faultsCommand(p, v)),
  },
  bench: {
    summary:
      'bench [--seconds 10] [--concurrency 64] [--rounds 1] [--breakdown] [--json]   this store against NATS JetStream KV and the floor of its message pattern',
    options: {
      seconds: { type: 'string', help: 'seconds per row', default: '10' },
      concurrency: { type: 'string', help: 'callers in the closed loop (a second run uses 1)', default: '64' },
      rounds: { type: 'string', help: 'measure every row this many times, turn about, and keep the median', default: '1' },
      json: { type: 'boolean', help: 'print JSON instead of a table' },
      breakdown: { type: 'boolean', help: 'add CPU µs per op of each kind of server process (nats-server, redis-server, node)' },
    },
    run: async (p, v) => {
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
      if (!(seconds > 0) || !Number.isInteger(concurrency) || concurrency < 1 || !Number.isInteger(rounds) || rounds < 1) {
        throw new UsageError('--seconds must be positive, --concurrency and --rounds positive integers');
      }
      const progress = bench.progressPrinter();
      const rows = await bench.runBench(seconds, concurrency, progress.say, rounds);
      progress.done();
      return print({
        out: v['json']
          ? JSON.stringify({ seconds, concurrency, rounds, rows })
          : bench.benchReport(rows, seconds, rounds, concurrency, v['breakdown'] === true),
        code: 0,
      });
    },
  },
  ring: {
    summary: 'ring simulate [--nodes 10] [--keys 100000] [--vnodes 128]   compare key placement strategies',
    options: RING_OPTIONS,
    run: async (p, v) => print(await ringCommand(p, v)),
  },
};

function usage(command?: string): string {
  if (command && COMMANDS[command]) {
    return `usage: dynamo ${COMMANDS[command].summary}\n\noptions (each also read from the environment variable shown):\n${optionsHelp(COMMANDS[command].options)}`;
  }
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
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${usage(name)}\n`);
    return 0;
  }
  try {
    const { values, positionals } = parseFlags(rest, command.options);
    return await command.run(positionals, values);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`dynamo ${name}: ${e.message}\n\n${usage(name)}\n`);
      return 2;
    }
    process.stderr.write(`dynamo ${name}: ${(e as Error).message}\n`);
    return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: Error) => {
    process.stderr.write(`dynamo: ${e.stack ?? e.message}\n`);
    process.exitCode = 1;
  },
);
