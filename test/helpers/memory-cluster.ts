import 'reflect-metadata';
import { nodeConfig, type NodeConfig } from '../../src/config.js';
import { createNode, type NodeParts } from '../../src/di/container.js';
import { silentLogger } from '../../src/di/tokens.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import type { Transport } from '../../src/transport/transport.js';
import { decodeJson } from '../../src/transport/transport.js';
import type { DynamoNode } from '../../actors/node/dynamo-node.js';

/** Gossip timing for tests: quick rounds so membership settles fast. */
export const FAST_GOSSIP = { gossipIntervalMs: 50, suspectAfterMs: 300, downAfterMs: 600 } as const;

/** A cluster on the in-memory network and storage: for unit tests, never for integration. */
export class MemoryCluster {
  readonly network = new MemoryNetwork();
  readonly storages = new Map<string, MemoryStorage>();
  readonly nodes = new Map<string, DynamoNode>();
  readonly client: Transport;

  constructor(
    readonly ids: string[],
    private readonly overrides: Partial<NodeConfig> = {},
    private readonly parts: Pick<NodeParts, 'resolvers'> = {},
  ) {
    this.client = this.network.transport();
  }

  /** Start every node; if one fails, stop the others before throwing, so no timer outlives the test. */
  async start(): Promise<this> {
    try {
      await this.startAll();
    } catch (e) {
      await this.stop();
      throw e;
    }
    return this;
  }

  private async startAll(): Promise<void> {
    for (const id of this.ids) {
      const storage = new MemoryStorage();
      this.storages.set(id, storage);
      const node = createNode(
        nodeConfig({ nodeId: id, natsUrl: 'memory', redisUrl: 'memory', seeds: id === this.ids[0] ? [] : [this.ids[0]!], ...FAST_GOSSIP, ...this.overrides }),
        {
          transport: this.network.transport(),
          storage,
          logger: silentLogger,
          ...this.parts,
        },
      );
      this.nodes.set(id, node);
      await node.start();
    }
  }

  async request<T = Record<string, unknown>>(subject: string, body: unknown, timeoutMs = 2000): Promise<T> {
    const data = typeof body === 'string' ? body : JSON.stringify(body);
    return decodeJson<T>(await this.client.request(subject, data, timeoutMs));
  }

  async stop(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((n) => n.stop()));
  }
}
