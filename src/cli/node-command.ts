import 'reflect-metadata';
import { DEFAULTS, NODE_ID, nodeConfig } from '../config.js';
import { createNode } from '../di/container.js';
import { UsageError } from '../errors.js';
import { MAX_WEIGHT, type RingMember } from '../ring/index.js';
import { RedisStorage } from '../storage/redis-storage.js';
import { NatsTransport } from '../transport/nats-transport.js';
import { intFlag, numberFlag, type OptionSpecs } from './args.js';

export const NODE_OPTIONS: OptionSpecs = {
  id: { type: 'string', help: 'this node\'s id (letters, digits, "_", "-")' },
  nats: { type: 'string', help: 'NATS URL', default: 'nats://127.0.0.1:4222' },
  redis: { type: 'string', help: 'this node\'s own Redis URL', default: 'redis://127.0.0.1:6379' },
  seeds: { type: 'string', help: 'the other members: n2,n3 (or n2:2 for weight 2)' },
  weight: { type: 'string', help: 'this node\'s weight (tokens = 256 x weight)', default: '1' },
  prefix: { type: 'string', help: 'subject prefix', default: DEFAULTS.prefix },
  n: { type: 'string', help: 'replicas per key', default: String(DEFAULTS.n) },
  r: { type: 'string', help: 'default read quorum', default: String(DEFAULTS.r) },
  w: { type: 'string', help: 'default write quorum', default: String(DEFAULTS.w) },
};

/** `--seeds n2,n3:2` → members with weights. */
export function parseSeeds(text: string | undefined): RingMember[] {
  if (!text) return [];
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const [id, w] = s.split(':');
      if (!id || !NODE_ID.test(id)) throw new UsageError(`--seeds: "${s}" is not a node id`);
      const weight = w === undefined ? 1 : Number(w);
      if (!(weight > 0 && weight <= MAX_WEIGHT)) throw new UsageError(`--seeds: weight of ${id} must be a number in (0, ${MAX_WEIGHT}]`);
      return { id, weight };
    });
}

export async function nodeCommand(positionals: string[], values: Record<string, unknown>): Promise<number> {
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const id = values['id'] as string | undefined;
  if (!id) throw new UsageError('--id is required');
  const weight = numberFlag(values, 'weight', Number.MIN_VALUE, MAX_WEIGHT)!;
  const peers = parseSeeds(values['seeds'] as string | undefined).filter((m) => m.id !== id);
  let config;
  try {
    config = nodeConfig({
      nodeId: id,
      natsUrl: values['nats'] as string,
      redisUrl: values['redis'] as string,
      prefix: values['prefix'] as string,
      members: [{ id, weight }, ...peers],
      n: intFlag(values, 'n', 1, 16)!,
      r: intFlag(values, 'r', 1, 16)!,
      w: intFlag(values, 'w', 1, 16)!,
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }

  let transport: NatsTransport;
  try {
    transport = await NatsTransport.connect(config.natsUrl, `dynamo-node-${id}`);
  } catch (e) {
    process.stderr.write(`node ${id}: cannot connect to NATS at ${config.natsUrl}: ${(e as Error).message}\n`);
    return 1;
  }
  const node = createNode(config, { transport, storage: new RedisStorage(config.redisUrl) });
  try {
    await node.start();
  } catch (e) {
    process.stderr.write(`${(e as Error).message} (Redis at ${config.redisUrl})\n`);
    return 1;
  }

  await new Promise<void>((resolve) => {
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
  await node.stop();
  process.stdin.pause();
  return 0;
}
