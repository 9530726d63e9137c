import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ClusterServer, exited, startNatsCluster, startNatsServer, startRedisServer, stopProcess, type ServerProcess } from '../../src/cli/servers.js';
import { NatsTransport } from '../../src/transport/nats-transport.js';
import { decodeJson } from '../../src/transport/transport.js';
import { waitFor } from './wait.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** Fast failure detection and the fault subjects: what the fault tests start every node with. */
export const FAULT_NODE_ARGS: readonly string[] = ['--gossip-interval', '100', '--suspect-after', '300', '--down-after', '600', '--allow-faults'];

/**
 * How the nodes reach NATS: one server for all (the default), or `routed`: one
 * nats-server per node, joined by routes, node i a client of server i, as nodes on
 * separate machines run. Server i runs as uid `ROUTED_UID_BASE + i`, so that iptables
 * can tell its packets apart (test/helpers/iptables.ts). The test's own client is on
 * the first server.
 */
export interface ProcessClusterOptions {
  routed?: { extraConfig?: string };
}

export const ROUTED_UID_BASE = 47_000;

/**
 * A cluster of real processes, as users run it: nats-server, and per node a
 * redis-server and a `dynamo node` process, all on free loopback ports. For fault
 * tests that kill, pause and partition them.
 */
export class ProcessCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'dynamo-fault-'));
  /** The server the test's client uses; with `routed`, the first of `natsServers`. */
  nats!: ServerProcess;
  natsServers: ClusterServer[] = [];
  readonly redis = new Map<string, ServerProcess>();
  readonly nodes = new Map<string, ChildProcess>();
  client!: NatsTransport;

  constructor(
    readonly ids: string[],
    private readonly nodeArgs: readonly string[] = FAULT_NODE_ARGS,
    private readonly options: ProcessClusterOptions = {},
  ) {}

  async start(): Promise<this> {
    try {
      if (this.options.routed) {
        // The servers run as users of their own, who must reach their config in here.
        chmodSync(this.dir, 0o711);
        this.natsServers = await startNatsCluster(this.dir, {
          name: 'route',
          count: this.ids.length,
          extraConfig: this.options.routed.extraConfig,
          uid: (i) => ROUTED_UID_BASE + i,
        });
        this.nats = this.natsServers[0]!;
      } else {
        this.nats = await startNatsServer(join(this.dir, 'nats'));
      }
      for (const id of this.ids) this.redis.set(id, await startRedisServer(join(this.dir, id)));
      this.client = await NatsTransport.connect(this.nats.url, 'fault-test');
      for (const id of this.ids) await this.startNode(id);
    } catch (e) {
      await this.stop();
      throw e;
    }
    return this;
  }

  async startNode(id: string): Promise<void> {
    const seeds = id === this.ids[0] ? [] : ['--seeds', this.ids[0]!];
    const child = spawn(
      process.execPath,
      [CLI, 'node', '--id', id, '--nats', this.natsUrl(id), '--redis', this.redis.get(id)!.url, ...seeds, ...this.nodeArgs],
      {
        stdio: ['pipe', 'ignore', 'ignore'],
        env: { ...process.env, DYNAMO_SUPERVISED: '1' },
      },
    );
    this.nodes.set(id, child);
    await waitFor(() => this.ping(id).then((p) => p?.state === 'serving'), 20_000, `${id} serving`);
  }

  /** The nats-server node `id` connects to. */
  natsUrl(id: string): string {
    return (this.natsServers[this.ids.indexOf(id)] ?? this.nats).url;
  }

  /** A new node, with a redis-server of its own, that joins through the first node. */
  async addNode(id: string): Promise<void> {
    if (!this.redis.has(id)) this.redis.set(id, await startRedisServer(join(this.dir, id)));
    await this.startNode(id);
  }

  async ping(id: string): Promise<{ state: string; hints: { pending: number } } | null> {
    try {
      return decodeJson(await this.client.request(`dynamo.node.${id}.admin.ping`, '', 500));
    } catch {
      return null;
    }
  }

  async killNode(id: string): Promise<void> {
    const child = this.nodes.get(id)!;
    child.kill('SIGKILL');
    await exited(child);
  }

  async killRedis(id: string): Promise<void> {
    const r = this.redis.get(id)!;
    r.child.kill('SIGKILL');
    await exited(r.child);
  }

  async restartRedis(id: string): Promise<void> {
    const old = this.redis.get(id)!;
    this.redis.set(id, await startRedisServer(join(this.dir, id), old.port));
  }

  async request<T>(subject: string, body: unknown, timeoutMs = 2000): Promise<T> {
    return decodeJson<T>(await this.client.request(subject, JSON.stringify(body), timeoutMs));
  }

  async stop(): Promise<void> {
    await this.client?.close().catch(() => {});
    for (const child of this.nodes.values()) {
      if (child.signalCode === 'SIGSTOP') child.kill('SIGCONT');
      await stopProcess(child, 5000);
    }
    for (const r of this.redis.values()) {
      // A redis-server left stopped by a failed fault test would take SIGTERM only once continued.
      if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGCONT');
      await r.stop();
    }
    // A server left stopped by a failed fault test would take SIGTERM only once continued.
    for (const s of this.natsServers) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGCONT');
    if (this.natsServers.length) await Promise.all(this.natsServers.map((s) => s.stop()));
    else await this.nats?.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
