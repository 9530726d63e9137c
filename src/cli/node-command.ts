import 'reflect-metadata';
import { ACTORS, DEFAULTS, NODE_ID, nodeConfig, type ActorName, type NodeConfig } from '../config.js';
import { createNode } from '../di/container.js';
import type { DynamoNode } from '../../actors/node/dynamo-node.js';
import { UsageError } from '../errors.js';
import { MAX_WEIGHT } from '../ring/index.js';
import { pathToFileURL } from 'node:url';
import { resolve as resolvePath } from 'node:path';
import { appResolver, BUILTIN_RESOLVERS, RESOLVER_NAME, type Resolver } from '../resolvers/index.js';
import { RedisStorage } from '../storage/redis-storage.js';
import { NatsTransport } from '../transport/nats-transport.js';
import { durationFlag, intFlag, NATS_SECURITY_OPTIONS, requiredIntFlag, requiredNumberFlag, securityFlags, type OptionSpecs } from './args.js';
import { describeSecurity, redactUrl, type NatsSecurity } from '../transport/nats-security.js';
import { serveMetrics, type MetricsEndpoint } from '../metrics/serve.js';

export const NODE_OPTIONS: OptionSpecs = {
  id: { type: 'string', help: 'this node\'s id (letters, digits, "_", "-")' },
  nats: { type: 'string', help: 'NATS URL', default: 'nats://127.0.0.1:4222' },
  ...NATS_SECURITY_OPTIONS,
  redis: { type: 'string', help: "this node's own Redis URL", default: 'redis://127.0.0.1:6379' },
  seeds: { type: 'string', help: 'members to contact to join: n1,n2 (none: start a new cluster)' },
  weight: { type: 'string', help: 'share of the ring (256 tokens per unit)', default: '1' },
  prefix: { type: 'string', help: 'subject prefix', default: DEFAULTS.prefix },
  cluster: { type: 'string', help: 'cluster name; gossip from other clusters is dropped', default: DEFAULTS.cluster },
  n: { type: 'string', help: 'replicas per key', default: String(DEFAULTS.n) },
  r: { type: 'string', help: 'default read quorum', default: String(DEFAULTS.r) },
  w: { type: 'string', help: 'default write quorum', default: String(DEFAULTS.w) },
  'gossip-interval': { type: 'string', help: 'ms between gossip rounds', default: String(DEFAULTS.gossipIntervalMs) },
  'suspect-after': { type: 'string', help: 'ms of silence before a member is suspect', default: String(DEFAULTS.suspectAfterMs) },
  'down-after': { type: 'string', help: 'ms of silence before a member is down', default: String(DEFAULTS.downAfterMs) },
  'anti-entropy-interval': { type: 'string', help: 'ms between anti-entropy exchanges of one range (0: off)', default: String(DEFAULTS.antiEntropyIntervalMs) },
  'anti-entropy-keys-per-second': { type: 'string', help: 'keys anti-entropy repairs per second, at most', default: String(DEFAULTS.antiEntropyKeysPerSecond) },
  'anti-entropy-max-message-bytes': { type: 'string', help: 'bytes per anti-entropy message, at most', default: String(DEFAULTS.antiEntropyMaxMessageBytes) },
  'stale-copy-settle': {
    type: 'string',
    help: 'ms the ring must stay unchanged before this node drops copies of keys it no longer replicates, once their replicas hold them (0: keep them)',
    default: String(DEFAULTS.staleCopySettleMs),
  },
  'tombstone-grace': {
    type: 'string',
    help: "how long a deleted key's tombstone is kept at least before it may be reaped, for buckets without their own (30s, 2h, 10d; 0: never reap)",
    default: '10d',
  },
  'change-log-size': {
    type: 'string',
    help: 'change events kept for watchers to resume from (about; 0: none recorded, watch sees nothing from this node)',
    default: String(DEFAULTS.changeLogSize),
  },
  'anti-entropy-max-exchanges': {
    type: 'string',
    help: 'exchanges other nodes may run against this one at once',
    default: String(DEFAULTS.antiEntropyMaxExchanges),
  },
  actors: { type: 'string', help: `the actors of this node this process hosts: some of ${ACTORS.join(',')}`, default: ACTORS.join(',') },
  'check-config': { type: 'boolean', help: 'check the flags and that NATS and Redis answer, then exit (0 fine, 2 not)' },
  resolver: { type: 'string', help: 'application resolvers: NAME=FILE[,NAME=FILE] (a module exporting merge(values))' },
  'rebuild-tree': { type: 'boolean', help: 'rebuild the anti-entropy tree from the data before serving' },
  'leave-on-exit': { type: 'boolean', help: "on SIGTERM, hand this node's ranges over and leave the cluster" },
  'allow-faults': { type: 'boolean', help: 'answer the fault-injection subjects (tests and demos only)' },
  inspect: { type: 'boolean', help: 'trace actor transitions and sampled coordinator runs on <prefix>.trace.<node>.<actor>, and to --inspect-url' },
  'inspect-url': { type: 'string', help: "with --inspect: the Stately inspector's WebSocket relay (dynamo up --inspect starts one), e.g. ws://127.0.0.1:8081" },
  'inspect-runs-per-second': {
    type: 'string',
    help: 'with --inspect: coordinator runs traced per second, at most',
    default: String(DEFAULTS.inspectRunsPerSecond),
  },
  'metrics-port': { type: 'string', help: 'serve Prometheus metrics at http://HOST:PORT/metrics (0: any free port)' },
  'metrics-host': { type: 'string', help: 'address the metrics endpoint listens on', default: '127.0.0.1' },
};

/**
 * `--resolver cart=./cart-resolver.js,other=./other.js`: load each module and take its
 * `merge(values)` as the resolver of that name.
 */
export async function loadResolvers(text: string | undefined): Promise<Map<string, Resolver>> {
  const out = new Map<string, Resolver>();
  if (!text) return out;
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = part.indexOf('=');
    const name = eq < 0 ? '' : part.slice(0, eq);
    const file = part.slice(eq + 1);
    if (!RESOLVER_NAME.test(name) || !file) throw new UsageError(`--resolver: "${part}" is not NAME=FILE`);
    if (BUILTIN_RESOLVERS.has(name)) throw new UsageError(`--resolver: "${name}" is a built-in resolver; choose another name`);
    let mod: { merge?: unknown; default?: { merge?: unknown } };
    try {
      mod = (await import(pathToFileURL(resolvePath(file)).href)) as typeof mod;
    } catch (e) {
      throw new UsageError(`--resolver ${name}: cannot load ${file}: ${(e as Error).message}`);
    }
    const merge = mod.merge ?? mod.default?.merge;
    if (typeof merge !== 'function') throw new UsageError(`--resolver ${name}: ${file} does not export a function merge(values)`);
    out.set(name, appResolver(name, merge as (values: unknown[]) => unknown));
  }
  return out;
}

/** `--actors node,coordinator` → actor names. */
export function parseActors(text: string): ActorName[] {
  const names = text
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  for (const a of names) if (!(ACTORS as readonly string[]).includes(a)) throw new UsageError(`--actors: "${a}" is not an actor (${ACTORS.join(', ')})`);
  if (names.length === 0) throw new UsageError('--actors: name at least one actor');
  if (new Set(names).size !== names.length) throw new UsageError('--actors: an actor is named twice');
  return names as ActorName[];
}

/** `--check-config`: the flags parsed; now NATS and Redis must answer. */
async function checkConnectivity(natsUrl: string, security: NatsSecurity, redisUrl: string): Promise<string | null> {
  try {
    const t = await NatsTransport.connect(natsUrl, 'dynamo-check-config', security);
    await t.close();
  } catch (e) {
    return `cannot connect to NATS at ${redactUrl(natsUrl)} (${describeSecurity(security)}): ${(e as Error).message}`;
  }
  const storage = new RedisStorage(redisUrl);
  try {
    await storage.connect();
  } catch (e) {
    return `cannot reach Redis at ${redisUrl}: ${(e as Error).message}`;
  } finally {
    await storage.close();
  }
  return null;
}

/** `--seeds n1,n2` → ids. */
export function parseSeeds(text: string | undefined): string[] {
  if (!text) return [];
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((id) => {
      if (!NODE_ID.test(id)) throw new UsageError(`--seeds: "${id}" is not a node id`);
      return id;
    });
}

interface NodeOptions {
  readonly config: NodeConfig;
  readonly security: NatsSecurity;
  readonly metricsPort: number | undefined;
  readonly metricsHost: string;
  readonly resolverFiles: string | undefined;
  readonly checkConfig: boolean;
  readonly leaveOnExit: boolean;
}

/** The flags as a node's config; every bad flag is a UsageError (exit code 2). */
function parseNodeOptions(positionals: string[], values: Record<string, unknown>): NodeOptions {
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const id = values['id'] as string | undefined;
  if (!id) throw new UsageError('--id is required');
  let config: NodeConfig;
  try {
    config = nodeConfig({
      nodeId: id,
      natsUrl: values['nats'] as string,
      redisUrl: values['redis'] as string,
      prefix: values['prefix'] as string,
      cluster: values['cluster'] as string,
      seeds: parseSeeds(values['seeds'] as string | undefined).filter((s) => s !== id),
      weight: requiredNumberFlag(values, 'weight', Number.MIN_VALUE, MAX_WEIGHT),
      n: requiredIntFlag(values, 'n', 1, 16),
      r: requiredIntFlag(values, 'r', 1, 16),
      w: requiredIntFlag(values, 'w', 1, 16),
      gossipIntervalMs: requiredIntFlag(values, 'gossip-interval', 10, 60_000),
      suspectAfterMs: requiredIntFlag(values, 'suspect-after', 10, 600_000),
      downAfterMs: requiredIntFlag(values, 'down-after', 10, 600_000),
      allowFaults: values['allow-faults'] === true,
      antiEntropyIntervalMs: requiredIntFlag(values, 'anti-entropy-interval', 0, 86_400_000),
      antiEntropyKeysPerSecond: requiredIntFlag(values, 'anti-entropy-keys-per-second', 1, 1_000_000),
      antiEntropyMaxMessageBytes: requiredIntFlag(values, 'anti-entropy-max-message-bytes', 4096, 64 * 1024 * 1024),
      antiEntropyMaxExchanges: requiredIntFlag(values, 'anti-entropy-max-exchanges', 1, 64),
      changeLogSize: requiredIntFlag(values, 'change-log-size', 0, 10_000_000),
      staleCopySettleMs: requiredIntFlag(values, 'stale-copy-settle', 0, 365 * 24 * 3600 * 1000),
      tombstoneGraceMs: durationFlag(values, 'tombstone-grace', 0, 365 * 24 * 3600 * 1000) ?? DEFAULTS.tombstoneGraceMs,
      rebuildTree: values['rebuild-tree'] === true,
      actors: parseActors(values['actors'] as string),
      inspect: values['inspect'] === true,
      inspectUrl: (values['inspect-url'] as string | undefined) || null,
      inspectRunsPerSecond: requiredIntFlag(values, 'inspect-runs-per-second', 0, 10_000),
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (config.inspectUrl !== null && !config.inspect) throw new UsageError('--inspect-url needs --inspect');
  return {
    config,
    security: securityFlags(values),
    metricsPort: intFlag(values, 'metrics-port', 0, 65_535),
    metricsHost: values['metrics-host'] as string,
    resolverFiles: values['resolver'] as string | undefined,
    checkConfig: values['check-config'] === true,
    leaveOnExit: values['leave-on-exit'] === true,
  };
}

interface RunningNode {
  readonly node: DynamoNode;
  readonly endpoint: MetricsEndpoint | null;
}

/** Connect, assemble and start the node, and serve its metrics; a sentence on failure (exit code 1). */
async function startNode(o: NodeOptions, resolvers: Map<string, Resolver>): Promise<RunningNode | string> {
  const { config } = o;
  const id = config.nodeId;
  let transport: NatsTransport;
  try {
    transport = await NatsTransport.connect(config.natsUrl, `dynamo-node-${id}`, o.security);
  } catch (e) {
    return `node ${id}: cannot connect to NATS at ${redactUrl(config.natsUrl)} (${describeSecurity(o.security)}): ${(e as Error).message}`;
  }
  const node = createNode(config, { transport, storage: new RedisStorage(config.redisUrl), resolvers });
  let endpoint: MetricsEndpoint | null = null;
  if (o.metricsPort !== undefined) {
    try {
      endpoint = await serveMetrics(node.metrics, o.metricsPort, o.metricsHost);
    } catch (e) {
      await transport.close();
      return `node ${id}: cannot serve metrics on ${o.metricsHost}:${o.metricsPort}: ${(e as Error).message}`;
    }
  }
  try {
    await node.start();
  } catch (e) {
    await endpoint?.close();
    return `${(e as Error).message} (Redis at ${config.redisUrl})`;
  }
  return { node, endpoint };
}

/** Serve until SIGTERM or SIGINT (or, under `dynamo up`, until the parent goes), then leave or stop. */
async function runUntilStopped({ node, endpoint }: RunningNode, leaveOnExit: boolean): Promise<void> {
  const stopped = new Promise<void>((resolve) => node.actor.subscribe({ complete: () => resolve() }));
  await new Promise<void>((resolve) => {
    void stopped.then(resolve);
    const stop = () => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    // Under `dynamo up` the parent holds our stdin: if it dies, even by SIGKILL, we stop too.
    if (process.env['DYNAMO_SUPERVISED'] === '1') {
      process.stdin.on('end', stop);
      process.stdin.on('close', stop);
      process.stdin.resume();
    }
  });
  if (leaveOnExit && node.state === 'serving') {
    try {
      await node.leave();
    } catch (e) {
      // Refused (last node) or failed: stop rather than hang; the data stays in this node's Redis.
      process.stderr.write(`${(e as Error).message}; stopping without leaving\n`);
      await node.stop();
    }
  } else await node.stop();
  await endpoint?.close();
  process.stdin.pause();
}

export async function nodeCommand(positionals: string[], values: Record<string, unknown>): Promise<number> {
  const o = parseNodeOptions(positionals, values);
  const { config } = o;
  const resolvers = await loadResolvers(o.resolverFiles);
  if (o.checkConfig) {
    const problem = await checkConnectivity(config.natsUrl, o.security, config.redisUrl);
    if (problem) throw new UsageError(`--check-config: ${problem}`);
    process.stdout.write(
      `config ok: node ${config.nodeId} (actors: ${config.actors.join(', ')}), NATS ${redactUrl(config.natsUrl)} (${describeSecurity(o.security)}) and Redis ${config.redisUrl} answer\n`,
    );
    return 0;
  }
  const running = await startNode(o, resolvers);
  if (typeof running === 'string') {
    process.stderr.write(`${running}\n`);
    return 1;
  }
  // One line a supervisor (dynamo up) or a person reads to find the endpoint.
  if (running.endpoint !== null) process.stdout.write(`metrics ${running.endpoint.url}\n`);
  await runUntilStopped(running, o.leaveOnExit);
  return 0;
}
