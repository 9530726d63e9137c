import 'reflect-metadata';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import { AntiEntropy } from '../../actors/anti-entropy/anti-entropy.js';
import { ExchangeServer } from '../../actors/anti-entropy/exchange-server.js';
import { CoordinatorRunner } from '../../actors/coordinator/coordinator-runner.js';
import { AdminServer } from '../../actors/node/admin-server.js';
import { Buckets } from '../../actors/node/buckets.js';
import { ClientServer } from '../../actors/node/client-server.js';
import { Gossiper } from '../../actors/gossiper/gossiper.js';
import { GossipMirror } from '../../actors/gossiper/gossip-mirror.js';
import { DynamoNode } from '../../actors/node/dynamo-node.js';
import { HandoffServer } from '../../actors/node/handoff-server.js';
import { FaultsServer } from '../../actors/node/faults-server.js';
import { HintedHandoff } from '../../actors/node/hinted-handoff.js';
import { Reaper } from '../../actors/node/reaper.js';
import { TombstoneReaper } from '../../actors/node/tombstones.js';
import { RetiredTags } from '../../actors/node/retired-tags.js';
import { AwayRepair } from '../../actors/node/away-repair.js';
import { StaleCopies } from '../../actors/node/stale-copies.js';
import { ChangeLog } from '../../actors/node/change-log.js';
import { KeysServer } from '../../actors/node/keys-server.js';
import { BackupServer } from '../../actors/node/backup-server.js';
import { FaultyTransport } from '../faults/faulty-transport.js';
import { ReplicaServer } from '../../actors/node/replica-server.js';
import { Transfers } from '../../actors/node/transfers.js';
import { NodeStatus } from '../../actors/node/node-status.js';
import { systemClock, type Clock } from '../clock/clock.js';
import type { NodeConfig } from '../config.js';
import type { Resolver } from '../resolvers/index.js';
import type { Storage } from '../storage/storage.js';
import type { Transport } from '../transport/transport.js';
import { Inspection } from '../inspect/inspection.js';
import { subjects } from '../protocol/subjects.js';
import { NodeMetrics } from '../metrics/metrics.js';
import { jsonLogger, TOKENS, type Logger, type Random } from './tokens.js';

export interface NodeParts {
  readonly transport: Transport;
  readonly storage: Storage;
  readonly clock?: Clock;
  readonly random?: Random;
  readonly logger?: Logger;
  /** application resolvers by name (`--resolver NAME=FILE`) */
  readonly resolvers?: ReadonlyMap<string, Resolver>;
}

/**
 * One child container per node: its own singletons for every boundary, so several
 * nodes can share a process (tests) without sharing state.
 */
export function createNodeContainer(config: NodeConfig, parts: NodeParts): DependencyContainer {
  const c = rootContainer.createChildContainer();
  c.register(TOKENS.Config, { useValue: config });
  c.register(TOKENS.Subjects, { useValue: subjects(config.prefix) });
  const faulty = config.allowFaults ? new FaultyTransport(parts.transport, config.nodeId, config.prefix, parts.random, parts.clock) : null;
  c.register(TOKENS.Transport, { useValue: faulty ?? parts.transport });
  // Wrapped: tsyringe will not inject a bare null.
  c.register(TOKENS.Faults, { useValue: { injector: faulty } });
  c.register(TOKENS.Storage, { useValue: parts.storage });
  c.register(TOKENS.Clock, { useValue: parts.clock ?? systemClock });
  c.register(TOKENS.Random, { useValue: parts.random ?? Math.random });
  c.register(TOKENS.Logger, { useValue: parts.logger ?? jsonLogger(config.nodeId) });
  c.register(NodeMetrics, { useValue: new NodeMetrics(config.nodeId, () => c.resolve(NodeStatus)) });
  c.register(TOKENS.Lifecycle, { useValue: () => c.resolve(DynamoNode) });
  c.register(TOKENS.Resolvers, { useValue: parts.resolvers ?? new Map() });
  for (const cls of [
    Inspection,
    Buckets,
    Gossiper,
    ExchangeServer,
    AntiEntropy,
    Transfers,
    HintedHandoff,
    Reaper,
    TombstoneReaper,
    RetiredTags,
    AwayRepair,
    StaleCopies,
    ChangeLog,
    KeysServer,
    BackupServer,
    FaultsServer,
    CoordinatorRunner,
    ClientServer,
    ReplicaServer,
    HandoffServer,
    AdminServer,
    NodeStatus,
    DynamoNode,
  ])
    c.registerSingleton(cls as never);
  // Membership comes from the gossiper in this process, or, when another process hosts it, from following that one.
  c.registerSingleton(GossipMirror);
  c.register(TOKENS.Membership, { useFactory: (dc) => (config.actors.includes('gossiper') ? dc.resolve(Gossiper) : dc.resolve(GossipMirror)) });
  return c;
}

/** Assemble a node from its parts (not started). */
export function createNode(config: NodeConfig, parts: NodeParts): DynamoNode {
  return createNodeContainer(config, parts).resolve(DynamoNode);
}
