import { Redis, type RedisOptions } from 'ioredis';
import { ConflictError, StorageError } from '../errors.js';
import type { Version } from '../versioning/index.js';
import { APPLY_LUA, COORDINATE_LUA } from './redis-scripts.js';
import { dataKey, parseDataKey, type CoordinatedResult, type CoordinatedWrite, type Storage, type StoredKey } from './storage.js';

type ScriptedRedis = Redis & {
  dynamoApply(key: string, version: string): Promise<number>;
  dynamoCoordinate(key: string, counterKey: string, node: string, ts: string, context: string, value: string, tombstone: string, conditional: string): Promise<string>;
};

/** Redis key holding the highest dot counter this node has issued. */
const DOT_COUNTER_KEY = 'm:dot';
/** Redis hash of node-local bookkeeping. */
const META_KEY = 'm:meta';

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
        w.ifNotModified ? '1' : '0',
      );
    } catch (e) {
      if ((e as Error).message.startsWith('CONFLICT')) throw new ConflictError((e as Error).message.slice('CONFLICT '.length), { cause: e });
      throw new StorageError(`write failed: ${(e as Error).message}`, { cause: e });
    }
    const siblings = JSON.parse(text) as Version[];
    return { version: siblings[siblings.length - 1]!, siblingsText: text };
  }

  async scan(cursor: string, count: number): Promise<{ cursor: string; keys: StoredKey[] }> {
    try {
      const [next, names] = await this.redis.scan(cursor, 'MATCH', 'v:*', 'COUNT', count);
      return { cursor: next, keys: names.map(parseDataKey).filter((k): k is StoredKey => k !== null) };
    } catch (e) {
      throw new StorageError(`scan failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async readRawMany(keys: readonly StoredKey[]): Promise<(string | null)[]> {
    if (keys.length === 0) return [];
    try {
      return await this.redis.mget(keys.map((k) => dataKey(k.bucket, k.key)));
    } catch (e) {
      throw new StorageError(`read failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async getMeta(name: string): Promise<string | null> {
    return this.redis.hget(META_KEY, name);
  }

  async setMeta(name: string, value: string | null): Promise<void> {
    if (value === null) await this.redis.hdel(META_KEY, name);
    else await this.redis.hset(META_KEY, name, value);
  }

  async keyCount(): Promise<number> {
    const [size, meta] = await Promise.all([this.redis.dbsize(), this.redis.exists(DOT_COUNTER_KEY, META_KEY)]);
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
