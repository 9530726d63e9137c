import { inject, injectable } from 'tsyringe';
import { Inspection } from '../../src/inspect/inspection.js';
import { createActor, fromPromise, setup, type ActorRefFrom } from 'xstate';
import type { Clock } from '../../src/clock/clock.js';
import type { NodeConfig } from '../../src/config.js';
import { TOKENS, type Logger } from '../../src/di/tokens.js';
import { subjects, type Subjects } from '../../src/protocol/subjects.js';
import type { Storage } from '../../src/storage/storage.js';
import { decodeJson, type Transport } from '../../src/transport/transport.js';
import type { NodeMembership } from '../../src/membership/membership.js';

/** Hints sent to an owner per message. */
export const HINT_BATCH = 128;
/** How often a node looks for hints it can deliver. */
export const HINT_INTERVAL_MS = 1000;
const DELIVERY_TIMEOUT_MS = 5000;

/**
 * Delivery of hints, as a machine: idle → (every interval) delivering → idle, with a
 * timeout on delivering so a stuck owner cannot stall the loop.
 */
export const hintedHandoffMachine = setup({
  actors: { deliver: fromPromise<number>(() => Promise.reject(new Error('deliver not provided'))) },
}).createMachine({
  id: 'hintedHandoff',
  initial: 'idle',
  states: {
    idle: { after: { [HINT_INTERVAL_MS]: 'delivering' } },
    delivering: {
      invoke: { src: 'deliver', onDone: 'idle', onError: 'idle' },
      after: { [DELIVERY_TIMEOUT_MS * 2]: 'idle' },
    },
  },
});

/**
 * Hands hints to their owners once the failure detector sees them up again: a batch
 * at a time, each hint deleted only after the owner acknowledged it and only if it did
 * not change meanwhile.
 */
@injectable()
export class HintedHandoff {
  private actor: ActorRefFrom<typeof hintedHandoffMachine> | null = null;
  private readonly subjects: Subjects;
  delivered = 0;

  constructor(
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Transport) private readonly transport: Transport,
    @inject(TOKENS.Storage) private readonly storage: Storage,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Membership) private readonly membership: NodeMembership,
    private readonly inspection: Inspection,
  ) {
    this.subjects = subjects(config.prefix);
  }

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
      if (m === undefined || m.liveness !== 'alive' || m.status === 'left') continue;
      count += await this.deliver(owner);
    }
    this.delivered += count;
    return count;
  }

  private async deliver(owner: string): Promise<number> {
    const hints = await this.storage.readHints(owner, HINT_BATCH);
    if (hints.length === 0) return 0;
    const items = hints.map((h) => `{"b":${JSON.stringify(h.bucket)},"k":${JSON.stringify(h.key)},"x":${h.raw}}`);
    try {
      const reply = decodeJson<{ ok: boolean }>(
        await this.transport.request(this.subjects.replicaPut(owner), `{"items":[${items.join(',')}]}`, DELIVERY_TIMEOUT_MS),
      );
      if (!reply.ok) return 0;
    } catch (e) {
      this.logger.warn(`handing ${hints.length} hints to ${owner} failed: ${(e as Error).message}`);
      return 0;
    }
    for (const h of hints) await this.storage.deleteHint(owner, h.bucket, h.key, h.raw);
    return hints.length;
  }
}
