import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nodeConfig, type NodeConfig } from '../../src/config.js';
import { createNode } from '../../src/di/container.js';
import { silentLogger } from '../../src/di/tokens.js';
import { startNatsServer, startRedisServer, type ServerProcess } from '../../src/cli/servers.js';
import { RedisStorage } from '../../src/storage/redis-storage.js';
import { NatsTransport } from '../../src/transport/nats-transport.js';
import { decodeJson } from '../../src/transport/transport.js';
import type { DynamoNode } from '../../actors/node/dynamo-node.js';
import { FAST_GOSSIP } from './memory-cluster.js';

/**
 * A real cluster for integration tests: one nats-server and a redis-server per node,
 * all on free loopback ports under a temporary folder, with the nodes in this process.
 */
export class RealCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'dynamo-test-'));
  nats!: ServerProcess;
  readonly redis = new Map<string, ServerProcess>();
  readonly nodes = new Map<string, DynamoNode>();
  client!: NatsTransport;

  constructor(
    readonly ids: string[],
    private readonly overrides: Partial<NodeConfig> = {},
  ) {}

  /** Start everything; if any part fails, stop what did start before throwing. */
  async start(): Promise<this> {
    try {
      this.nats = await startNatsServer(join(this.dir, 'nats'));
      await Promise.all(this.ids.map(async (id) => this.redis.set(id, await startRedisServer(join(this.dir, id)))));
      for (const id of this.ids) await this.startNode(id);
      this.client = await NatsTransport.connect(this.nats.url, 'test-client');
    } catch (e) {
      await this.stop();
      throw e;
    }
    return this;
  }

  config(id: string): NodeConfig {
    return nodeConfig({
      nodeId: id,
      natsUrl: this.nats.url,
      redisUrl: this.redis.get(id)!.url,
      seeds: id === this.ids[0] ? [] : [this.ids[0]!],
      ...FAST_GOSSIP,
      ...this.overrides,
    });
  }

  startNode(id: string): Promise<DynamoNode> {
    return this.launch(this.config(id));
  }

  /** Start a redis-server and a node that joins the running cluster through the first node. */
  async addNode(id: string, overrides: Partial<NodeConfig> = {}): Promise<DynamoNode> {
    if (!this.redis.has(id)) this.redis.set(id, await startRedisServer(join(this.dir, id)));
    return this.launch(nodeConfig({ ...this.config(id), seeds: [this.ids[0]!], ...overrides }));
  }

  private async launch(config: NodeConfig): Promise<DynamoNode> {
    const node = createNode(config, {
      transport: await NatsTransport.connect(config.natsUrl, `node-${config.nodeId}`),
      storage: new RedisStorage(config.redisUrl),
      logger: silentLogger,
    });
    this.nodes.set(config.nodeId, node);
    await node.start();
    return node;
  }

  async stopNode(id: string): Promise<void> {
    await this.nodes.get(id)?.stop();
    this.nodes.delete(id);
  }

  /** Keys held by one node's Redis. */
  async keyCount(id: string): Promise<number> {
    const s = this.storage(id);
    try {
      return await s.keyCount();
    } finally {
      await s.close();
    }
  }

  /** A direct connection to one node's Redis, to look at what a replica holds (close it after). */
  storage(id: string): RedisStorage {
    return new RedisStorage(this.redis.get(id)!.url);
  }

  async request<T = Record<string, unknown>>(subject: string, body: unknown, timeoutMs = 5000): Promise<T> {
    const data = typeof body === 'string' ? body : JSON.stringify(body);
    return decodeJson<T>(await this.client.request(subject, data, timeoutMs));
  }

  async stop(): Promise<void> {
    await this.client?.close();
    await Promise.all([...this.nodes.keys()].map((id) => this.stopNode(id)));
    await Promise.all([...this.redis.values()].map((r) => r.stop()));
    await this.nats?.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
