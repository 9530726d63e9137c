import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { subjects } from '../protocol/subjects.js';
import { NatsTransport } from '../transport/nats-transport.js';
import { decodeJson } from '../transport/transport.js';
import { NATS_SECURITY_OPTIONS, requiredIntFlag, securityFlags, type OptionSpecs } from './args.js';
import { describeSecurity, redactUrl, securityEnv, withoutSecurityEnv, type NatsSecurity } from '../transport/nats-security.js';
import { prepareSecureCluster, type SecureCluster } from './secure-cluster.js';
import { clusterFilePath, commandLine, DEFAULT_STATE_DIR, isAlive, readClusterFile, writeClusterFile } from './cluster-file.js';
import { freePort, requireBinary, startNatsServer, startRedisServer, stopProcess, type ServerProcess } from './servers.js';
import { startInspectorRelay, type InspectorRelay } from '../inspect/relay-server.js';
import { startConsole, type ConsoleServer } from '../console/server.js';
import { consoleToken, consoleUrl } from './console-command.js';
import { present } from '../invariant.js';

export const UP_OPTIONS: OptionSpecs = {
  nodes: { type: 'string', help: 'number of nodes', default: '3' },
  nats: { type: 'string', help: 'use this NATS instead of starting one (with the login flags below, for up and its nodes)' },
  ...NATS_SECURITY_OPTIONS,
  secure: {
    type: 'boolean',
    help: 'start NATS with TLS and users (node, client, operator) holding the shipped permissions; logins kept in <dir>/secure',
  },
  prefix: { type: 'string', help: 'subject prefix', default: 'dynamo' },
  dir: { type: 'string', help: 'where data, logs and cluster.json live', default: DEFAULT_STATE_DIR },
  'allow-faults': { type: 'boolean', help: 'let `dynamo faults` partition, slow or drop node-to-node traffic' },
  inspect: {
    type: 'boolean',
    help: "nodes trace their actors (<prefix>.trace.*, the console's live views) and report to a Stately inspector relay started here",
  },
  'console-port': { type: 'string', help: 'port of the web console (taken: any free one)', default: '8080' },
  'no-console': { type: 'boolean', help: 'do not serve the web console' },
  'relay-host': { type: 'string', help: 'with --inspect: the address the Stately inspector relay listens on', default: '127.0.0.1' },
  'console-token': { type: 'string', help: 'what a browser must show to see the console (default: a random one, in the printed URL)' },
};

const NODE_READY_TIMEOUT_MS = 30_000;
const CLI_PATH = fileURLToPath(new URL('./main.js', import.meta.url));

interface Supervised {
  readonly name: string;
  readonly child: ChildProcess;
}

/** Kill what a previous `up` in this directory left behind when it was killed itself. */
function cleanUpAfterCrashedRun(dir: string, say: (s: string) => void): void {
  const old = readClusterFile(dir);
  if (!old) return;
  if (isAlive(old.pid) && old.pid !== process.pid) {
    throw new UsageError(`a cluster started from ${dir} is already running (pid ${old.pid}); stop it with Ctrl-C or kill ${old.pid}`);
  }
  for (const c of old.children) {
    const cmd = commandLine(c.pid);
    if (isAlive(c.pid) && /nats-server|redis-server|dynamo|main\.js/.test(cmd)) {
      say(`stopping ${c.name} (pid ${c.pid}) left over from an earlier run`);
      process.kill(c.pid, 'SIGKILL');
    }
  }
  rmSync(clusterFilePath(dir), { force: true });
}

async function waitUntilServing(t: NatsTransport, prefix: string, id: string, child: ChildProcess, logPath: string): Promise<void> {
  const deadline = Date.now() + NODE_READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`node ${id} exited while starting; see ${logPath}`);
    try {
      const reply = decodeJson<{ state: string }>(await t.request(subjects(prefix).ping(id), '', 500));
      if (reply.state === 'serving') return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`node ${id} did not start serving within ${NODE_READY_TIMEOUT_MS} ms; see ${logPath}`);
}

interface UpOptions {
  readonly count: number;
  readonly prefix: string;
  readonly dir: string;
  /** null: no console */
  readonly consolePort: number | null;
  readonly inspect: boolean;
  readonly consoleToken: string;
  readonly relayHost: string;
  /** use this NATS instead of starting one */
  readonly natsUrl: string | undefined;
  /** how up and its nodes log in to the NATS given with --nats */
  readonly security: NatsSecurity;
  readonly secure: boolean;
  readonly allowFaults: boolean;
}

function parseUpOptions(positionals: string[], values: Record<string, unknown>): UpOptions {
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const natsUrl = (values['nats'] as string | undefined) || undefined;
  const secure = values['secure'] === true;
  if (secure && natsUrl !== undefined)
    throw new UsageError('--secure starts its own NATS; with --nats, give its login with --user, --creds, --tls-ca and the like');
  return {
    count: requiredIntFlag(values, 'nodes', 1, 16),
    prefix: values['prefix'] as string,
    dir: values['dir'] as string,
    consolePort: values['no-console'] === true ? null : requiredIntFlag(values, 'console-port', 0, 65_535),
    inspect: values['inspect'] === true,
    consoleToken: consoleToken(values),
    relayHost: values['relay-host'] as string,
    natsUrl,
    // The login flags are for a NATS given with --nats; the NATS up starts has none, or the --secure ones.
    security: natsUrl !== undefined ? securityFlags(values) : {},
    secure,
    allowFaults: values['allow-faults'] === true,
  };
}

const say = (s: string) => process.stdout.write(`${s}\n`);

/**
 * The processes of one `dynamo up`: nats-server (unless one was given), a redis-server
 * per node, the nodes, and optionally the console and the inspector relay. Each is
 * recorded in cluster.json as soon as it runs, so that the next `up` can clean up
 * after this one if it is killed.
 */
class LocalCluster {
  private readonly servers: ServerProcess[] = [];
  private readonly nodes: Supervised[] = [];
  private readonly redis: { id: string; redisUrl: string }[] = [];
  private console_: ConsoleServer | null = null;
  private relay: InspectorRelay | null = null;
  private transport: NatsTransport | undefined;
  private natsUrl = '';
  private secured: SecureCluster | null = null;
  private stopping = false;

  constructor(private readonly o: UpOptions) {}

  private record(): void {
    writeClusterFile(this.o.dir, {
      pid: process.pid,
      natsUrl: this.natsUrl,
      prefix: this.o.prefix,
      nodes: this.redis,
      ...(this.secured ? { clientEnvFile: this.secured.clientEnvFile } : {}),
      children: [
        ...this.servers.map((s) => ({ name: s.name, pid: present(s.child.pid, 'a started server has a pid') })),
        ...this.nodes.map((n) => ({ name: n.name, pid: present(n.child.pid, 'a started node has a pid') })),
      ],
    });
  }

  /** Start everything and wait until every node serves; returns what to print. */
  async start(): Promise<string> {
    const { dir, prefix } = this.o;
    if (this.o.natsUrl === undefined) {
      this.secured = this.o.secure ? prepareSecureCluster(dir, prefix) : null;
      const nats = await startNatsServer(dir, undefined, this.secured?.natsConfig ?? '');
      this.servers.push(nats);
      this.natsUrl = nats.url;
      say(`nats-server     ${this.natsUrl}${this.secured ? '  (TLS, users node, client and operator)' : ''}`);
    } else {
      this.natsUrl = this.o.natsUrl;
    }
    const ids = Array.from({ length: this.o.count }, (_, i) => `n${i + 1}`);
    for (const id of ids) {
      const r = await startRedisServer(join(dir, id));
      this.servers.push(r);
      this.redis.push({ id, redisUrl: r.url });
      say(`redis-server    ${r.url}  (${id}, append-only file in ${join(dir, id)})`);
      this.record();
    }
    let transport: NatsTransport;
    try {
      transport = await NatsTransport.connect(this.natsUrl, 'dynamo-up', this.login('operator'));
    } catch (e) {
      throw new Error(`cannot connect to NATS at ${redactUrl(this.natsUrl)} (${describeSecurity(this.login('operator'))}): ${(e as Error).message}`);
    }
    this.transport = transport;
    const relayPort = this.o.inspect ? await this.startRelay() : null;
    const metricsUrls: string[] = [];
    for (const { id, redisUrl } of this.redis) {
      // n1 starts the cluster; the others join it (and learn each other by gossip).
      const seeds = ids.slice(0, ids.indexOf(id)).join(',');
      const metricsPort = await freePort();
      metricsUrls.push(`${id} http://127.0.0.1:${metricsPort}/metrics`);
      this.startNode(id, redisUrl, seeds, metricsPort, relayPort);
    }
    await Promise.all(this.nodes.map((n) => waitUntilServing(transport, prefix, n.name, n.child, join(dir, 'logs', `${n.name}.log`))));
    if (this.o.consolePort !== null) {
      this.console_ = await startConsole({ transport, prefix, port: this.o.consolePort, host: '127.0.0.1', anyPortIfTaken: true, token: this.o.consoleToken });
    }
    return this.banner(metricsUrls);
  }

  /** How `role` logs in: the --secure user of that role, else the login given with --nats (the same for all). */
  private login(role: 'node' | 'operator'): NatsSecurity {
    return this.secured ? this.secured.login[role] : this.o.security;
  }

  /** The Stately inspector's relay: nodes send it their actors' inspection events; its page embeds the Stately UI. */
  private async startRelay(): Promise<number> {
    this.relay = await startInspectorRelay(0, this.o.relayHost);
    return this.relay.port;
  }

  private startNode(id: string, redisUrl: string, seeds: string, metricsPort: number, relayPort: number | null): void {
    const logPath = join(this.o.dir, 'logs', `${id}.log`);
    const log = createWriteStream(logPath, { flags: 'a' });
    const args = [
      CLI_PATH,
      'node',
      '--id',
      id,
      '--nats',
      this.natsUrl,
      '--redis',
      redisUrl,
      '--prefix',
      this.o.prefix,
      '--metrics-port',
      String(metricsPort),
      ...(seeds ? ['--seeds', seeds] : []),
      ...(this.o.allowFaults ? ['--allow-faults'] : []),
      ...(relayPort !== null ? ['--inspect', '--inspect-url', `ws://${this.o.relayHost === '0.0.0.0' ? '127.0.0.1' : this.o.relayHost}:${relayPort}`] : []),
    ];
    // Own process group (Ctrl-C reaches only `up`, which stops nodes before servers); stdin ties the node's life to ours.
    // The login goes in the environment, never in the arguments that ps shows.
    const env = { ...withoutSecurityEnv(process.env), ...securityEnv(this.login('node')), DYNAMO_SUPERVISED: '1' };
    const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env });
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    child.once('exit', (code, signal) => {
      if (!this.stopping) say(`node ${id} exited unexpectedly (${signal ?? `code ${code}`}); see ${logPath}`);
    });
    this.nodes.push({ name: id, child });
    this.record();
  }

  private banner(metricsUrls: string[]): string {
    const { prefix, inspect } = this.o;
    const extras = [
      ...(this.console_
        ? [`Web console: ${consoleUrl(this.console_)}${inspect ? '' : '  (with --inspect it also shows actor transitions and coordinator runs)'}`]
        : []),
      ...(this.relay !== null ? [`Stately inspector (its UI needs the internet): ${this.relay.url}`] : []),
      `Prometheus metrics: ${metricsUrls.join(', ')}`,
    ];
    const url = redactUrl(this.natsUrl);
    const login = this.secured
      ? `NATS asks for TLS and a login. In another terminal, log in as the client user (kv and read-only admin subjects):
  . ${this.secured.clientEnvFile}
or as the operator (leave, faults, bucket set, the console): . ${this.secured.operatorEnvFile}
Then try:`
      : 'Try:';
    return `
${this.o.count} node(s) serving. ${login}
  npx dynamo put cart:alice '["book"]'
  npx dynamo get cart:alice
  npx dynamo status
or publish requests on NATS at ${url}:
  ${prefix}.kv.put  {"key":"cart:alice","value":["book"]}
  ${prefix}.kv.get  {"key":"cart:alice"}
For programs using the client library, in another terminal:
  export DYNAMO_NATS_URL=${url}
${extras.join('\n')}
Logs in ${join(this.o.dir, 'logs')}. Ctrl-C stops the cluster.`;
  }

  /** Stop in order: console and client connection, nodes, relay, Redis (flushing its AOF), NATS. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    say('\nstopping the cluster...');
    await this.console_?.close().catch(() => {});
    await this.transport?.close().catch(() => {});
    await Promise.all(this.nodes.map((n) => stopProcess(n.child, 20_000)));
    await this.relay?.stop();
    await Promise.all(this.servers.filter((s) => s.name !== 'nats-server').map((s) => s.stop()));
    await Promise.all(this.servers.filter((s) => s.name === 'nats-server').map((s) => s.stop()));
    rmSync(clusterFilePath(this.o.dir), { force: true });
    say(`stopped; data kept in ${this.o.dir}`);
  }
}

/**
 * `dynamo up`: a local cluster of real processes. Everything it starts is recorded
 * and stopped on Ctrl-C or SIGTERM, or by the next `up` if this one is killed.
 */
export async function upCommand(positionals: string[], values: Record<string, unknown>): Promise<number> {
  const o = parseUpOptions(positionals, values);
  if (o.natsUrl === undefined) requireBinary('nats-server');
  requireBinary('redis-server');
  mkdirSync(join(o.dir, 'logs'), { recursive: true });
  cleanUpAfterCrashedRun(o.dir, say);

  const cluster = new LocalCluster(o);
  const stopped = new Promise<void>((resolve) => {
    const onSignal = () => void cluster.stop().then(resolve);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  try {
    say(await cluster.start());
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  await stopped;
  return 0;
}
