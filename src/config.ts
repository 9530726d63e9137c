import type { RingMember } from './ring/index.js';

export const NODE_ID = /^[A-Za-z0-9_-]{1,64}$/;
export const PREFIX = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** Everything one node needs to know; built by the CLI from flags and environment. */
export interface NodeConfig {
  readonly nodeId: string;
  /** subject prefix, `dynamo` unless told otherwise */
  readonly prefix: string;
  readonly natsUrl: string;
  readonly redisUrl: string;
  /** every member of the cluster, this node included */
  readonly members: readonly RingMember[];
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
}

export const DEFAULTS = {
  prefix: 'dynamo',
  n: 3,
  r: 2,
  w: 2,
  defaultTimeoutMs: 1000,
  maxTimeoutMs: 60_000,
  maxKeyBytes: 1024,
  maxValueBytes: 1024 * 1024,
  maxInFlight: 10_000,
} as const;

export function nodeConfig(partial: Partial<NodeConfig> & Pick<NodeConfig, 'nodeId' | 'natsUrl' | 'redisUrl'>): NodeConfig {
  const members = partial.members ?? [{ id: partial.nodeId, weight: 1 }];
  const config: NodeConfig = { ...DEFAULTS, ...partial, members };
  validateConfig(config);
  return config;
}

export function validateConfig(c: NodeConfig): void {
  if (!NODE_ID.test(c.nodeId)) throw new Error(`node id "${c.nodeId}" must be 1-64 letters, digits, "_" or "-"`);
  if (!PREFIX.test(c.prefix)) throw new Error(`prefix "${c.prefix}" is not a valid NATS subject prefix`);
  for (const m of c.members) if (!NODE_ID.test(m.id)) throw new Error(`member id "${m.id}" must be 1-64 letters, digits, "_" or "-"`);
  for (const [name, v] of [['n', c.n], ['r', c.r], ['w', c.w]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`);
  }
  if (c.r > c.n || c.w > c.n) throw new Error('r and w cannot exceed n');
}
