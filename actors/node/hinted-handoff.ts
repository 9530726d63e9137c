import { inject, injectable } from 'tsyringe';
import { replicaCount } from '../../src/membership/placement.js';
import { Inspection } from '../../src/inspect/inspection.js';
import { createActor, fromPromise, type ActorRefFrom } from 'xstate';
import type { Clock } from '../../src/clock/clock.js';
import type { NodeConfig } from '../../src/config.js';
import { TOKENS, type Logger } from '../../src/di/tokens.js';
import type { Subjects } from '../../src/protocol/subjects.js';
import type { Storage } from '../../src/storage/storage.js';
import { decodeJson, type Transport } from '../../src/transport/transport.js';
import type { NodeMembership } from '../../src/membership/membership.js';
import { BatchFill, itemsBody } from '../../src/protocol/batch-fill.js';
import { MAX_REPLICA_BATCH, replicaPutItem } from '../../src/protocol/replica.js';
import { DELIVERY_TIMEOUT_MS, hintedHandoffMachine } from './hinted-handoff-machine.js';
import { keyPosition } from '../../src/ring/index.js';
import type { Version } from '../../src/versioning/index.js';

/** Hints read from storage per owner per pass; they go out in messages bounded by count and bytes. */
export const HINT_BATCH = 128;

/**
 * Hands hints to their owners once the failure detector sees them up again: a batch
 * at a time, each hint deleted only after the owner acknowledged it and only if it did
 * not change meanwhile.
 */
@injectable()
export class HintedHandoff {
  private actor: ActorRefFrom<typeof hintedHandoffMachine> | null = null;
  delivered = 0;

  constructor(
    @inject(TOKENS.Subjects) private readonly subjects: Subjects,
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Transport) private readonly transport: Transport,
    @inject(TOKENS.Storage) private readonly storage: Storage,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Membership) private readonly membership: NodeMembership,
    private readonly inspection: Inspection,
  ) {}

  start(): void {
    this.actor = createActor(hintedHandoffMachine.provide({ actors: { deliver: fromPromise(() => this.deliverAll()) } }), {
      id: `hints-${this.config.nodeId}`,
      clock: this.clock,
      inspect: this.inspection.observer('hinted-handoff'),
    });
    this.actor.start();
  }

  stop(): void {
    this.actor?.stop();
  }

  /** The delivery machine's state (stopped while the node is offline). */
  get state(): string {
    return this.actor ? String(this.actor.getSnapshot().value) : 'stopped';
  }

  /** One pass: a batch to every owner that is back. Returns the hints delivered. */
  async deliverAll(): Promise<number> {
    let count = 0;
    const members = new Map(this.membership.members().map((m) => [m.id, m]));
    for (const owner of await this.storage.hintOwners()) {
      const m = members.get(owner);
      // An owner that left the ring (or was removed) never takes them: they go to the keys' replicas now.
      if (m === undefined) continue;
      if (m.status === 'left') count += await this.reroute(owner);
      else if (m.liveness === 'alive') count += await this.deliver(owner);
    }
    this.delivered += count;
    return count;
  }

  /**
   * Hints for an owner that is gone: each to every live replica of its key in the ring as
   * it is now, and deleted once all of them took it. Returns the hints settled.
   */
  private async reroute(owner: string): Promise<number> {
    const ring = this.membership.ring();
    if (ring.size === 0) return 0;
    const n = replicaCount(this.config.n, ring);
    const hints = await this.storage.readHints(owner, HINT_BATCH);
    let settled = 0;
    for (const hint of hints) {
      const targets = ring.walk(keyPosition(hint.bucket, hint.key), n).filter((id) => !this.membership.isDown(id));
      const results = await Promise.all(
        targets.map(async (target) => {
          if (target === this.config.nodeId) return this.storage.apply(hint.bucket, hint.key, JSON.parse(hint.raw) as Version[]).then(() => true);
          try {
            const body = itemsBody([replicaPutItem(hint.bucket, hint.key, hint.raw)]);
            return decodeJson<{ ok: boolean }>(await this.transport.request(this.subjects.replicaPut(target), body, DELIVERY_TIMEOUT_MS)).ok;
          } catch {
            return false;
          }
        }),
      );
      if (targets.length === 0 || results.includes(false)) continue;
      await this.storage.deleteHint(owner, hint.bucket, hint.key, hint.raw);
      settled++;
    }
    return settled;
  }

  private async deliver(owner: string): Promise<number> {
    const hints = await this.storage.readHints(owner, HINT_BATCH);
    const fill = new BatchFill<{ hint: (typeof hints)[number]; item: string }>(MAX_REPLICA_BATCH, Math.floor(this.transport.maxPayload / 2));
    let delivered = 0;
    const send = async (): Promise<boolean> => {
      const batch = fill.take();
      try {
        const reply = decodeJson<{ ok: boolean }>(
          await this.transport.request(this.subjects.replicaPut(owner), itemsBody(batch.map((b) => b.item)), DELIVERY_TIMEOUT_MS),
        );
        if (!reply.ok) return false;
      } catch (e) {
        this.logger.warn(`handing ${batch.length} hints to ${owner} failed: ${(e as Error).message}`);
        return false;
      }
      for (const { hint: h } of batch) await this.storage.deleteHint(owner, h.bucket, h.key, h.raw);
      delivered += batch.length;
      return true;
    };
    for (const hint of hints) {
      const item = replicaPutItem(hint.bucket, hint.key, hint.raw);
      // The owner refused or did not answer: the rest waits for the next pass.
      if (fill.wouldOverflow(item.length) && !(await send())) return delivered;
      fill.add({ hint, item }, item.length);
    }
    if (fill.length > 0) await send();
    return delivered;
  }
}
