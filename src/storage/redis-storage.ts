import { Redis, type RedisOptions } from 'ioredis';
import { StorageError } from '../errors.js';
import type { Version } from '../versioning/index.js';
import { APPLY_LUA, COORDINATE_LUA } from './redis-scripts.js';
import { dataKey, type CoordinatedResult, type CoordinatedWrite, type Storage } from './storage.js';

type ScriptedRedis = Redis & {
  dynamoApply(key: string, version: string): Promise<number>;
  dynamoCoordinate(key: string, counterKey: string, node: string, ts: string, context: string, value: string, tombstone: string): Promise<string>;
};

/** Redis key holding the highest dot counter this node has issued. */
const DOT_COUNTER_KEY = 'm:dot';

/**
 * The production replica store: one Redis per node. Each write is a single
 * EVALSHA, so it pipelines and never interleaves with another write to the key.
 */
export class RedisStorage implements Storage {
  private readonly redis: ScriptedRedis;

  constructor(url: string, options: RedisOptions = {}) {
    const redis = new Redis(url, {
      // A replica that cannot reach its Redis should fail the request quickly;
      // the coordinator's quorum logic decides what that means for the client.
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      lazyConnect: true,
      ...options,
    });
    redis.defineCommand('dynamoApply', { numberOfKeys: 1, lua: APPLY_LUA });
    redis.defineCommand('dynamoCoordinate', { numberOfKeys: 2, lua: COORDINATE_LUA });
    // Connection errors surface through the commands that fail; without a listener
    // ioredis would print every reconnect attempt.
    redis.on('error', () => {});
    this.redis = redis as ScriptedRedis;
  }

  async connect(): Promise<void> {
    try {
      if (this.redis.status === 'wait') await this.redis.connect();
      await this.redis.ping();
    } catch (e) {
      throw new StorageError(`cannot reach Redis: ${(e as Error).message}`, { cause: e });
    }
  }

  async read(bucket: string, key: string): Promise<Version[]> {
    const raw = await this.readRaw(bucket, key);
    return raw === null ? [] : (JSON.parse(raw) as Version[]);
  }

  async readRaw(bucket: string, key: string): Promise<string | null> {
    try {
      return await this.redis.get(dataKey(bucket, key));
    } catch (e) {
      throw new StorageError(`read failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async apply(bucket: string, key: string, versions: readonly Version[]): Promise<boolean> {
    try {
      return (await this.redis.dynamoApply(dataKey(bucket, key), JSON.stringify(versions))) === 1;
    } catch (e) {
      throw new StorageError(`write failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async coordinate(w: CoordinatedWrite): Promise<CoordinatedResult> {
    let text: string;
    try {
      text = await this.redis.dynamoCoordinate(
        dataKey(w.bucket, w.key),
        DOT_COUNTER_KEY,
        w.node,
        String(w.ts),
        JSON.stringify(w.context),
        w.value ?? '',
        w.value === undefined ? '1' : '0',
      );
    } catch (e) {
      throw new StorageError(`write failed: ${(e as Error).message}`, { cause: e });
    }
    const siblings = JSON.parse(text) as Version[];
    return { version: siblings[siblings.length - 1]!, siblingsText: text };
  }

  async keyCount(): Promise<number> {
    const [size, meta] = await Promise.all([this.redis.dbsize(), this.redis.exists(DOT_COUNTER_KEY)]);
    return size - meta;
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}
