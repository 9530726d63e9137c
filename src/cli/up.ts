import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { subjects } from '../protocol/subjects.js';
import { NatsTransport } from '../transport/nats-transport.js';
import { decodeJson } from '../transport/transport.js';
import { intFlag, type OptionSpecs } from './args.js';
import { clusterFilePath, commandLine, DEFAULT_STATE_DIR, isAlive, readClusterFile, writeClusterFile } from './cluster-file.js';
import { freePort, requireBinary, startNatsServer, startRedisServer, stopProcess, type ServerProcess } from './servers.js';
import { createInspectorServer } from '@statelyai/inspect/server';
import { startConsole, type ConsoleServer } from '../console/server.js';
import { consoleUrl } from './console-command.js';

export const UP_OPTIONS: OptionSpecs = {
  nodes: { type: 'string', help: 'number of nodes', default: '3' },
  nats: { type: 'string', help: 'use this NATS instead of starting one' },
  prefix: { type: 'string', help: 'subject prefix', default: 'dynamo' },
  dir: { type: 'string', help: 'where data, logs and cluster.json live', default: DEFAULT_STATE_DIR },
  'allow-faults': { type: 'boolean', help: 'let `dynamo faults` partition, slow or drop node-to-node traffic' },
  inspect: { type: 'boolean', help: "nodes trace their actors (<prefix>.trace.*, the console's live views) and report to a Stately inspector relay started here" },
  'console-port': { type: 'string', help: 'port of the web console (taken: any free one)', default: '8080' },
  'no-console': { type: 'boolean', help: 'do not serve the web console' },
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

/**
 * `dynamo up`: a local cluster of real processes. Everything it starts is recorded
 * and stopped on Ctrl-C or SIGTERM, or by the next `up` if this one is killed.
 */
export async function upCommand(positionals: string[], values: Record<string, unknown>): Promise<number> {
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const count = intFlag(values, 'nodes', 1, 16)!;
  const prefix = values['prefix'] as string;
  const dir = values['dir'] as string;
  const consolePort = values['no-console'] === true ? null : intFlag(values, 'console-port', 0, 65_535)!;
  const inspect = values['inspect'] === true;
  const say = (s: string) => process.stdout.write(`${s}\n`);
  if (!values['nats']) requireBinary('nats-server');
  requireBinary('redis-server');
  mkdirSync(join(dir, 'logs'), { recursive: true });
  cleanUpAfterCrashedRun(dir, say);

  const servers: ServerProcess[] = [];
  const nodes: Supervised[] = [];
  let console_: ConsoleServer | null = null;
  let relay: { stop(): void } | null = null;
  let transport: NatsTransport | undefined;
  let stopping = false;
  const record = (natsUrl: string, redis: { id: string; redisUrl: string }[]) =>
    writeClusterFile(dir, {
      pid: process.pid,
      natsUrl,
      prefix,
      nodes: redis,
      children: [...servers.map((s) => ({ name: s.name, pid: s.child.pid! })), ...nodes.map((n) => ({ name: n.name, pid: n.child.pid! }))],
    });

  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    say('\nstopping the cluster...');
    await console_?.close().catch(() => {});
    await transport?.close().catch(() => {});
    await Promise.all(nodes.map((n) => stopProcess(n.child, 20_000)));
    relay?.stop();
    // Redis last among the data holders: SIGTERM lets it flush its append-only file.
    await Promise.all(servers.filter((s) => s.name !== 'nats-server').map((s) => s.stop()));
    await Promise.all(servers.filter((s) => s.name === 'nats-server').map((s) => s.stop()));
    rmSync(clusterFilePath(dir), { force: true });
    say('stopped; data kept in ' + dir);
  };
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const onSignal = () => void shutdown().then(resolveDone);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    let natsUrl = values['nats'] as string | undefined;
    if (!natsUrl) {
      const nats = await startNatsServer(dir);
      servers.push(nats);
      natsUrl = nats.url;
      say(`nats-server     ${natsUrl}`);
    }
    const ids = Array.from({ length: count }, (_, i) => `n${i + 1}`);
    const redis: { id: string; redisUrl: string }[] = [];
    for (const id of ids) {
      const r = await startRedisServer(join(dir, id));
      servers.push(r);
      redis.push({ id, redisUrl: r.url });
      say(`redis-server    ${r.url}  (${id}, append-only file in ${join(dir, id)})`);
      record(natsUrl, redis);
    }
    transport = await NatsTransport.connect(natsUrl, 'dynamo-up');
    let inspectArgs: string[] = [];
    let relayUrl = '';
    if (inspect) {
      // The Stately inspector's relay: nodes send it their actors' inspection events; its page embeds the Stately UI.
      const port = await freePort();
      relay = createInspectorServer({ port, autoOpen: false });
      relayUrl = `http://localhost:${port}`;
      inspectArgs = ['--inspect', '--inspect-url', `ws://127.0.0.1:${port}`];
    }
    const metricsUrls: string[] = [];
    for (const { id, redisUrl } of redis) {
      const logPath = join(dir, 'logs', `${id}.log`);
      const log = createWriteStream(logPath, { flags: 'a' });
      // n1 starts the cluster; the others join it (and learn each other by gossip).
      const seeds = id === ids[0] ? '' : ids.slice(0, ids.indexOf(id)).join(',');
      const metricsPort = await freePort();
      metricsUrls.push(`${id} http://127.0.0.1:${metricsPort}/metrics`);
      const args = [
        CLI_PATH, 'node', '--id', id, '--nats', natsUrl, '--redis', redisUrl, '--prefix', prefix, '--metrics-port', String(metricsPort),
        ...(seeds ? ['--seeds', seeds] : []), ...(values['allow-faults'] ? ['--allow-faults'] : []), ...inspectArgs,
      ];
      // Own process group (Ctrl-C reaches only `up`, which stops nodes before servers); stdin ties the node's life to ours.
      const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: { ...process.env, DYNAMO_SUPERVISED: '1' } });
      child.stdout!.pipe(log);
      child.stderr!.pipe(log);
      child.once('exit', (code, signal) => {
        if (!stopping) say(`node ${id} exited unexpectedly (${signal ?? `code ${code}`}); see ${logPath}`);
      });
      nodes.push({ name: id, child });
      record(natsUrl, redis);
    }
    await Promise.all(nodes.map((n) => waitUntilServing(transport!, prefix, n.name, n.child, join(dir, 'logs', `${n.name}.log`))));
    if (consolePort !== null) console_ = await startConsole({ transport, prefix, port: consolePort, host: '127.0.0.1', anyPortIfTaken: true });
    const extras = [
      ...(console_ ? [`Web console: ${consoleUrl(console_)}${inspect ? '' : '  (with --inspect it also shows actor transitions and coordinator runs)'}`] : []),
      ...(inspect ? [`Stately inspector (its UI needs the internet): ${relayUrl}`] : []),
      `Prometheus metrics: ${metricsUrls.join(', ')}`,
    ];
    say(`
${count} node(s) serving. Try:
  npx dynamo put cart:alice '["book"]'
  npx dynamo get cart:alice
  npx dynamo status
or publish requests on NATS at ${natsUrl}:
  ${prefix}.kv.put  {"key":"cart:alice","value":["book"]}
  ${prefix}.kv.get  {"key":"cart:alice"}
For programs using the client library, in another terminal:
  export DYNAMO_NATS_URL=${natsUrl}
${extras.join('\n')}
Logs in ${join(dir, 'logs')}. Ctrl-C stops the cluster.`);
  } catch (e) {
    await transport?.close().catch(() => {});
    await shutdown();
    throw e;
  }
  await done;
  return 0;
}
