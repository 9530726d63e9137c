import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, chmodSync, chownSync, constants, createWriteStream, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { UsageError } from '../errors.js';
import { present } from '../invariant.js';

/** Largest NATS message of a cluster we start: a 1 MiB value escaped inside a replica message, with room to spare. */
export const NATS_MAX_PAYLOAD = 8 * 1024 * 1024;
const READY_TIMEOUT_MS = 15_000;

/** Find an executable on PATH or in the sbin folders where Debian puts servers; null if absent. */
export function findBinary(name: string): string | null {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return null;
}

/** The binary, or a UsageError that tells the user which package to install. */
export function requireBinary(name: 'nats-server' | 'redis-server'): string {
  // DYNAMO_NATS_SERVER / DYNAMO_REDIS_SERVER name a binary explicitly (a custom build, or a test).
  const override = process.env[`DYNAMO_${name.replace('-', '_').toUpperCase()}`];
  let p: string | null = override ?? findBinary(name);
  if (override !== undefined) {
    try {
      accessSync(override, constants.X_OK);
    } catch {
      p = null;
    }
  }
  if (p === null)
    throw new UsageError(`${name} not found${override !== undefined ? ` at ${override}` : ' on PATH'}. Install it: sudo apt-get install -y ${name}`);
  return p;
}

/** A free TCP port on the loopback interface (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** A server process we started and must stop. */
export interface ServerProcess {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly child: ChildProcess;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited(child);
  clearTimeout(timer);
}

async function waitForPort(name: string, child: ChildProcess, port: number, logPath: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let gone = false;
  child.once('exit', () => (gone = true));
  while (Date.now() < deadline) {
    if (gone) throw new Error(`${name} exited while starting; see ${logPath}`);
    if (await canConnect(port)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`${name} did not listen on port ${port} within ${READY_TIMEOUT_MS} ms; see ${logPath}`);
}

function spawnServer(
  name: string,
  bin: string,
  args: string[],
  port: number,
  logPath: string,
  env: NodeJS.ProcessEnv = process.env,
  uid?: number,
): ServerProcess & { ready: Promise<void> } {
  const log = createWriteStream(logPath, { flags: 'a' });
  // With setpriv (util-linux) the kernel sends the server SIGTERM if its parent dies,
  // even by SIGKILL, so a killed `dynamo up` or test run leaves no server behind.
  // A process group of its own keeps a terminal's Ctrl-C from reaching the server
  // directly: whoever started it stops it, in order.
  const setpriv = process.platform === 'linux' ? findBinary('setpriv') : null;
  const options = { stdio: ['ignore', 'pipe', 'pipe'] as ('ignore' | 'pipe')[], detached: true, env };
  const as = uid === undefined ? [] : ['--reuid', String(uid), '--regid', String(uid), '--clear-groups'];
  if (uid !== undefined && !setpriv) throw new Error(`${name}: running as uid ${uid} needs setpriv (util-linux)`);
  const child = setpriv ? spawn(setpriv, [...as, '--pdeathsig', 'TERM', '--', bin, ...args], options) : spawn(bin, args, options);
  present(child.stdout, 'stdout is piped').pipe(log);
  present(child.stderr, 'stderr is piped').pipe(log);
  const url = name.startsWith('nats') ? `nats://127.0.0.1:${port}` : `redis://127.0.0.1:${port}`;
  return {
    name,
    url,
    port,
    child,
    stop: (graceMs) => stopProcess(child, graceMs),
    ready: waitForPort(name, child, port, logPath),
  };
}

/** Retry on a port lost between choosing it and the server binding it. */
async function startOnFreePort(start: (port: number) => ServerProcess & { ready: Promise<void> }, fixedPort?: number): Promise<ServerProcess> {
  let lastError: unknown;
  for (let attempt = 0; attempt < (fixedPort ? 1 : 3); attempt++) {
    const server = start(fixedPort ?? (await freePort()));
    try {
      await server.ready;
      return server;
    } catch (e) {
      lastError = e;
      await server.stop(1000);
    }
  }
  throw lastError;
}

/**
 * Start a nats-server on a loopback port, its config and log in `dir`. `extraConfig`
 * is appended to the config (TLS, authorization); `env` is the server's environment,
 * for a config that reads passwords as `$VARIABLE`s.
 */
export async function startNatsServer(dir: string, port?: number, extraConfig = '', env: NodeJS.ProcessEnv = process.env): Promise<ServerProcess> {
  const bin = requireBinary('nats-server');
  mkdirSync(dir, { recursive: true });
  return startOnFreePort((p) => {
    const conf = join(dir, 'nats.conf');
    // The config may hold passwords: readable by its owner only.
    writeFileSync(conf, `host: 127.0.0.1\nport: ${p}\nmax_payload: ${NATS_MAX_PAYLOAD}\n${extraConfig}`, { mode: 0o600 });
    chmodSync(conf, 0o600);
    return spawnServer('nats-server', bin, ['-c', conf], p, join(dir, 'nats-server.log'), env);
  }, port);
}

/** Start a redis-server on a loopback port with append-only persistence in `dir`. */
export async function startRedisServer(dir: string, port?: number): Promise<ServerProcess> {
  const bin = requireBinary('redis-server');
  mkdirSync(dir, { recursive: true });
  return startOnFreePort(
    (p) =>
      spawnServer(
        'redis-server',
        bin,
        ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec', '--dir', dir],
        p,
        join(dir, 'redis-server.log'),
      ),
    port,
  );
}

/** How to start a routed cluster of nats-servers (startNatsCluster). */
export interface NatsClusterOptions {
  /** Cluster name, and the prefix of each server's name (`<name>1`, ...). */
  name: string;
  count: number;
  jetstream?: boolean;
  /** Appended to every server's config: ping_interval, write_deadline and the like. */
  extraConfig?: string;
  /**
   * Run server i (0-based) as this user id: a test can then tell its packets apart with
   * iptables' owner match. Its directory is handed to that user.
   */
  uid?: (i: number) => number;
}

/** A server of a routed cluster: its client port, and the port its routes listen on. */
export type ClusterServer = ServerProcess & { clusterPort: number };

/**
 * A cluster of nats-servers routed to each other, on loopback ports: JetStream KV for
 * `npm run bench`, or one server per node for the fault tests' real partitions.
 * Resolves once every server listens for clients (routes connect shortly after).
 */
export async function startNatsCluster(dir: string, options: NatsClusterOptions): Promise<ClusterServer[]> {
  const bin = requireBinary('nats-server');
  // As startOnFreePort does for one server: a port can be lost between choosing it and binding
  // it, here most likely to the outgoing route connections of the servers that started first.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startNatsClusterOnce(bin, dir, options);
    } catch (e) {
      lastError = e;
    }
  }
  throw lastError;
}

async function startNatsClusterOnce(bin: string, dir: string, options: NatsClusterOptions): Promise<ClusterServer[]> {
  const ports: { client: number; cluster: number }[] = [];
  for (let i = 0; i < options.count; i++) ports.push({ client: await freePort(), cluster: await freePort() });
  const routes = ports.map((p) => `nats-route://127.0.0.1:${p.cluster}`).join(', ');
  const servers = ports.map((p, i) => {
    const name = `${options.name}${i + 1}`;
    const home = join(dir, name);
    // A failed attempt's store and log go: this attempt's servers start afresh.
    rmSync(home, { recursive: true, force: true });
    mkdirSync(home, { recursive: true });
    const conf = join(home, 'nats.conf');
    writeFileSync(
      conf,
      [
        `server_name: ${name}`,
        'host: 127.0.0.1',
        `port: ${p.client}`,
        `max_payload: ${NATS_MAX_PAYLOAD}`,
        ...(options.jetstream ? [`jetstream { store_dir: "${join(home, 'store')}" }`] : []),
        `cluster { name: ${options.name}, host: 127.0.0.1, port: ${p.cluster}, routes: [${routes}] }`,
        options.extraConfig ?? '',
      ].join('\n'),
    );
    const uid = options.uid?.(i);
    if (uid !== undefined) {
      chownSync(home, uid, uid);
      chownSync(conf, uid, uid);
    }
    const server = spawnServer(`nats-server ${name}`, bin, ['-c', conf], p.client, join(home, 'nats-server.log'), process.env, uid);
    return Object.assign(server, { clusterPort: p.cluster });
  });
  try {
    await Promise.all(servers.map((s) => s.ready));
  } catch (e) {
    await Promise.all(servers.map((s) => s.stop(1000)));
    throw e;
  }
  return servers;
}
