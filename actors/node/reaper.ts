import { inject, injectable } from 'tsyringe';
import { createActor, fromPromise, type ActorRefFrom } from 'xstate';
import type { Clock } from '../../src/clock/clock.js';
import type { NodeConfig } from '../../src/config.js';
import { TOKENS, type Logger } from '../../src/di/tokens.js';
import { Inspection } from '../../src/inspect/inspection.js';
import type { Storage } from '../../src/storage/storage.js';
import { REAP_KEYS_PER_PASS, reaperMachine } from './reaper-machine.js';
import { StaleCopies } from './stale-copies.js';
import { AwayRepair } from './away-repair.js';
import { RetiredTags } from './retired-tags.js';
import { TombstoneReaper } from './tombstones.js';

/**
 * The node's housekeeping, every second: stale copies of ranges it no longer owns
 * (StaleCopies), tombstones past their grace (TombstoneReaper), OR-Sets' retired tags
 * (RetiredTags), and expired values, at
 * most REAP_KEYS_PER_PASS keys a pass. A value past its expiry already reads as gone everywhere (the expiry is in
 * its version); the reaper turns it into a tombstone of the same dot, which frees the
 * value's bytes and keeps superseding what the version superseded, so anti-entropy and
 * read repair cannot bring an older version back.
 */
@injectable()
export class Reaper {
  private actor: ActorRefFrom<typeof reaperMachine> | null = null;
  /** values turned into tombstones since start */
  reaped = 0;
  private failing = false;

  constructor(
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Storage) private readonly storage: Storage,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    private readonly inspection: Inspection,
    private readonly stale: StaleCopies,
    readonly tombstones: TombstoneReaper,
    readonly retiredTags: RetiredTags,
    private readonly away: AwayRepair,
  ) {}

  start(): void {
    this.actor = createActor(reaperMachine.provide({ actors: { reap: fromPromise(() => this.reapOnce()) } }), {
      id: `reaper-${this.config.nodeId}`,
      clock: this.clock,
      inspect: this.inspection.observer('reaper'),
    });
    this.actor.start();
  }

  stop(): void {
    this.actor?.stop();
  }

  get state(): string {
    return this.actor ? String(this.actor.getSnapshot().value) : 'stopped';
  }

  /** One pass; a failure is logged once until a pass succeeds again. */
  async reapOnce(): Promise<number> {
    try {
      await this.away.step();
      const n = await this.storage.reapExpired(this.clock.now(), REAP_KEYS_PER_PASS);
      this.reaped += n;
      await this.stale.step();
      await this.tombstones.step();
      await this.retiredTags.step();
      this.failing = false;
      return n;
    } catch (e) {
      if (!this.failing) this.logger.warn(`housekeeping (expired values, stale copies, tombstones, retired tags) failed: ${(e as Error).message}`);
      this.failing = true;
      return 0;
    }
  }
}
