import { inject, injectable } from 'tsyringe';
import { mergeBucketTables, parseBucketTable, sameTable, type BucketProps, type BucketTable } from '../../src/buckets/buckets.js';
import type { Clock } from '../../src/clock/clock.js';
import type { NodeConfig } from '../../src/config.js';
import { TOKENS, type Logger } from '../../src/di/tokens.js';
import { BUILTIN_RESOLVERS, type Resolver } from '../../src/resolvers/index.js';
import type { Storage } from '../../src/storage/storage.js';

const META_NAME = 'buckets';

/**
 * This node's view of the bucket table: props set at run time (`admin.bucket.set`),
 * kept in the node's Redis and spread by gossip (the later setting of a bucket wins
 * everywhere), and the resolvers this node knows: the built-ins and the application
 * resolvers it was started with.
 */
@injectable()
export class Buckets {
  private current: BucketTable = {};
  private readonly resolvers: ReadonlyMap<string, Resolver>;

  constructor(
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Storage) private readonly storage: Storage,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.Resolvers) appResolvers: ReadonlyMap<string, Resolver>,
  ) {
    this.resolvers = new Map([...BUILTIN_RESOLVERS, ...appResolvers]);
  }

  get table(): BucketTable {
    return this.current;
  }

  /** Props of a bucket: as set, or the cluster's defaults with lww. */
  props(bucket: string): BucketProps {
    return this.current[bucket]?.props ?? { n: this.config.n, r: this.config.r, w: this.config.w, resolver: 'lww' };
  }

  isSet(bucket: string): boolean {
    return this.current[bucket] !== undefined;
  }

  resolver(name: string): Resolver | undefined {
    return this.resolvers.get(name);
  }

  knows(name: string): boolean {
    return this.resolvers.has(name);
  }

  /** Load the table this node saved (before it gossips). */
  async load(): Promise<void> {
    const saved = await this.storage.getMeta(META_NAME);
    const table = saved === null ? null : parseBucketTable(JSON.parse(saved));
    if (table) this.current = table;
  }

  /** Take a table heard by gossip; save it when anything changed. */
  merge(received: unknown): void {
    const table = parseBucketTable(received);
    if (table === null) return;
    const next = mergeBucketTables(this.current, table);
    if (sameTable(next, this.current)) return;
    for (const [name, e] of Object.entries(next)) {
      const was = this.current[name];
      if (was === undefined || was.at !== e.at || was.by !== e.by) this.warnIfUnknown(name, e.props.resolver);
    }
    this.current = next;
    this.save();
  }

  /** Set a bucket's props here (the caller spreads them by gossip). */
  set(bucket: string, props: BucketProps): void {
    const was = this.current[bucket];
    const at = Math.max(this.clock.now(), (was?.at ?? 0) + 1);
    this.current = { ...this.current, [bucket]: { props, at, by: this.config.nodeId } };
    this.save();
  }

  private warnIfUnknown(bucket: string, resolver: string): void {
    if (!this.resolvers.has(resolver))
      this.logger.warn(
        `bucket "${bucket}" uses resolver "${resolver}", which this node was not started with (--resolver ${resolver}=FILE); its requests here fail`,
      );
  }

  private save(): void {
    this.storage.setMeta(META_NAME, JSON.stringify(this.current)).catch((e: Error) => this.logger.warn(`could not save the bucket table: ${e.message}`));
  }
}
