import { validateTiming } from './membership/failure-detector.js';
import { MAX_WEIGHT } from './ring/index.js';
import { DEFAULT_RUNS_PER_SECOND } from './inspect/trace.js';

export const NODE_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** The actors of a node; a process hosts any of them (`--actors`), all by default. */
export const ACTORS = ['node', 'coordinator', 'gossiper', 'anti-entropy'] as const;
export type ActorName = (typeof ACTORS)[number];
export const PREFIX = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** Everything one node needs to know; built by the CLI from flags and environment. */
export interface NodeConfig {
  readonly nodeId: string;
  /** subject prefix, `dynamo` unless told otherwise */
  readonly prefix: string;
  /** gossip from another cluster name is dropped */
  readonly cluster: string;
  readonly natsUrl: string;
  readonly redisUrl: string;
  /** members to contact first; the rest of the cluster is learned by gossip */
  readonly seeds: readonly string[];
  /** this node's share of the ring: 256 tokens per unit */
  readonly weight: number;
  /** replicas per key */
  readonly n: number;
  readonly r: number;
  readonly w: number;
  readonly defaultTimeoutMs: number;
  readonly maxTimeoutMs: number;
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  /** requests this node coordinates at once before answering UNAVAILABLE */
  readonly maxInFlight: number;
  readonly gossipIntervalMs: number;
  /** peers contacted each gossip round */
  readonly gossipFanout: number;
  /** a member silent this long is suspect */
  readonly suspectAfterMs: number;
  /** a member silent this long is down and leaves preference lists */
  readonly downAfterMs: number;
  /** keys per batch when ranges move between nodes */
  readonly transferBatchKeys: number;
  /** answer the fault-injection subjects (tests and demos only) */
  readonly allowFaults: boolean;
  /** anti-entropy: ms between exchanges of one range (the keys shared with one peer); 0 turns it off */
  readonly antiEntropyIntervalMs: number;
  /** anti-entropy: keys this node repairs per second, at most (both directions together) */
  readonly antiEntropyKeysPerSecond: number;
  /** anti-entropy: bytes in one message of an exchange, at most (a single larger key still goes, alone) */
  readonly antiEntropyMaxMessageBytes: number;
  /** anti-entropy: exchanges other nodes may run against this one at once */
  readonly antiEntropyMaxExchanges: number;
  /**
   * ms the ring must stay unchanged before this node drops its copies of keys it no longer
   * replicates (once their replicas hold them); 0 keeps them
   */
  readonly staleCopySettleMs: number;
  /**
   * ms a tombstone is kept at least before it may be reaped, for buckets without a
   * tombstoneGraceMs of their own (0: never reap); a store last alive longer ago than
   * the shortest grace starts empty
   */
  readonly tombstoneGraceMs: number;
  /** change events this node's log keeps (about; the latest), for watchers to resume from; 0 records none */
  readonly changeLogSize: number;
  /** re-derive the anti-entropy tree from the data before serving (it is kept up to date otherwise) */
  readonly rebuildTree: boolean;
  /** the actors of this node this process hosts */
  readonly actors: readonly ActorName[];
  /** trace actors' transitions and sampled coordinator runs on `<p>.trace.*` (and to inspectUrl) */
  readonly inspect: boolean;
  /** the Stately inspector's WebSocket relay, e.g. ws://127.0.0.1:8081 (with inspect) */
  readonly inspectUrl: string | null;
  /** coordinator runs traced per second, at most (the sampling rate) */
  readonly inspectRunsPerSecond: number;
}

export const DEFAULTS = {
  prefix: 'dynamo',
  cluster: 'dynamo',
  seeds: [] as readonly string[],
  weight: 1,
  n: 3,
  r: 2,
  w: 2,
  defaultTimeoutMs: 1000,
  maxTimeoutMs: 60_000,
  maxKeyBytes: 1024,
  maxValueBytes: 1024 * 1024,
  maxInFlight: 10_000,
  gossipIntervalMs: 1000,
  gossipFanout: 1,
  suspectAfterMs: 3000,
  downAfterMs: 5000,
  transferBatchKeys: 256,
  allowFaults: false,
  antiEntropyIntervalMs: 10_000,
  antiEntropyKeysPerSecond: 2000,
  antiEntropyMaxMessageBytes: 256 * 1024,
  antiEntropyMaxExchanges: 2,
  changeLogSize: 10_000,
  staleCopySettleMs: 60_000,
  tombstoneGraceMs: 10 * 86_400_000,
  rebuildTree: false,
  actors: ACTORS,
  inspect: false,
  inspectUrl: null,
  inspectRunsPerSecond: DEFAULT_RUNS_PER_SECOND,
} as const;

export function nodeConfig(partial: Partial<NodeConfig> & Pick<NodeConfig, 'nodeId' | 'natsUrl' | 'redisUrl'>): NodeConfig {
  const config: NodeConfig = { ...DEFAULTS, ...partial };
  validateConfig(config);
  return config;
}

export function validateConfig(c: NodeConfig): void {
  if (!NODE_ID.test(c.nodeId)) throw new Error(`node id "${c.nodeId}" must be 1-64 letters, digits, "_" or "-"`);
  if (!PREFIX.test(c.prefix)) throw new Error(`prefix "${c.prefix}" is not a valid NATS subject prefix`);
  for (const s of c.seeds) if (!NODE_ID.test(s)) throw new Error(`seed "${s}" is not a node id`);
  if (!(c.weight > 0 && c.weight <= MAX_WEIGHT)) throw new Error(`weight must be a number in (0, ${MAX_WEIGHT}]`);
  for (const [name, v] of [
    ['n', c.n],
    ['r', c.r],
    ['w', c.w],
    ['gossip fanout', c.gossipFanout],
    ['transfer batch', c.transferBatchKeys],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
  }
  if (c.r > c.n || c.w > c.n) throw new Error('r and w cannot exceed n');
  if (!Number.isInteger(c.antiEntropyIntervalMs) || c.antiEntropyIntervalMs < 0)
    throw new Error('anti-entropy interval must be a whole number of ms (0 turns it off)');
  if (!Number.isInteger(c.antiEntropyKeysPerSecond) || c.antiEntropyKeysPerSecond < 1)
    throw new Error('anti-entropy keys per second must be a positive integer');
  if (!Number.isInteger(c.antiEntropyMaxMessageBytes) || c.antiEntropyMaxMessageBytes < 4096)
    throw new Error('anti-entropy message bytes must be an integer of at least 4096');
  if (!Number.isInteger(c.antiEntropyMaxExchanges) || c.antiEntropyMaxExchanges < 1) throw new Error('anti-entropy exchanges must be a positive integer');
  if (!Number.isInteger(c.staleCopySettleMs) || c.staleCopySettleMs < 0) throw new Error('the stale-copy settle time must be an integer of at least 0 ms');
  if (!Number.isInteger(c.tombstoneGraceMs) || c.tombstoneGraceMs < 0)
    throw new Error('the tombstone grace must be an integer of at least 0 ms (0: never reap)');
  if (!Number.isInteger(c.changeLogSize) || c.changeLogSize < 0) throw new Error('the change log size must be an integer of at least 0');
  if (c.actors.length === 0 || c.actors.some((a) => !ACTORS.includes(a)) || new Set(c.actors).size !== c.actors.length) {
    throw new Error(`actors must be some of ${ACTORS.join(', ')}, each at most once`);
  }
  if (!Number.isInteger(c.inspectRunsPerSecond) || c.inspectRunsPerSecond < 0 || c.inspectRunsPerSecond > 10_000)
    throw new Error('inspect runs per second must be an integer from 0 to 10000');
  if (c.inspectUrl !== null && !/^wss?:\/\/\S+$/.test(c.inspectUrl)) throw new Error(`inspect url "${c.inspectUrl}" must be a ws:// or wss:// URL`);
  validateTiming(c.gossipIntervalMs, c);
}
