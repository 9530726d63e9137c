import { inject, injectable } from 'tsyringe';
import { sleep, type Clock } from '../../src/clock/clock.js';
import type { NodeConfig } from '../../src/config.js';
import { TOKENS, type Logger } from '../../src/di/tokens.js';
import type { Member } from '../../src/membership/member.js';
import type { MemberView, NodeMembership } from '../../src/membership/membership.js';
import type { Subjects } from '../../src/protocol/subjects.js';
import type { Ring } from '../../src/ring/index.js';
import { decodeJson, tryDecodeJson, type Subscription, type Transport } from '../../src/transport/transport.js';
import { Buckets } from '../node/buckets.js';
import { CONTROL_TOKEN, isTable, type MembershipView } from './gossiper.js';
import type { Storage } from '../../src/storage/storage.js';
import { randomBytes } from 'node:crypto';
import { ringsFor } from './gossiper-machine.js';

const LIVENESS = new Set(['alive', 'suspect', 'down']);

function isView(x: unknown): x is MembershipView {
  if (typeof x !== 'object' || x === null) return false;
  const v = x as Record<string, unknown>;
  const members = v['members'];
  return (
    isTable(v['table']) &&
    Array.isArray(members) &&
    members.every((m) => typeof m === 'object' && m !== null && typeof (m as MemberView).id === 'string' && LIVENESS.has((m as MemberView).liveness)) &&
    typeof v['metrics'] === 'object'
  );
}

/** How long a request to the node's gossiper process may take. */
const CONTROL_TIMEOUT_MS = 5000;

/**
 * Membership for a process that hosts some of a node's actors but not its gossiper
 * (`--actors`): it follows the view the node's gossiper publishes each round. When the
 * gossiper process is gone the last view stays, so the actors here keep serving with
 * it until the gossiper is back.
 */
@injectable()
export class GossipMirror implements NodeMembership {
  readonly self: string;
  private current: MembershipView | null = null;
  private rings: { key: string; ring: Ring; futureRing: Ring | null } | null = null;
  private subscription: Subscription | null = null;
  private stopped = false;

  constructor(
    @inject(TOKENS.Subjects) private readonly subjects: Subjects,
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Transport) private readonly transport: Transport,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    private readonly buckets: Buckets,
    @inject(TOKENS.Storage) private readonly storage: Storage,
  ) {
    this.self = config.nodeId;
  }

  /** Follow the gossiper; resolves once a first view has arrived (asking for one until it does). */
  async start(): Promise<void> {
    this.subscription = this.transport.subscribe(this.subjects.membershipView(this.self), (m) => this.take(tryDecodeJson(m.data)));
    for (let attempt = 0; this.current === null && !this.stopped; attempt++) {
      try {
        this.take(decodeJson<unknown>(await this.transport.request(this.subjects.membershipGet(this.self), '', this.config.gossipIntervalMs)));
      } catch {
        if (attempt === 3) this.logger.warn(`waiting for the gossiper of ${this.self} (a process started with --actors gossiper)`);
        await sleep(this.clock, this.config.gossipIntervalMs);
      }
    }
  }

  stop(): void {
    this.stopped = true;
    this.subscription?.unsubscribe();
  }

  /** Take a view, if it is one: anything else published on the subject is ignored. */
  private take(x: unknown): void {
    if (!isView(x)) return;
    this.current = x;
    if (x.buckets !== undefined) this.buckets.merge(x.buckets);
  }

  private get view(): MembershipView {
    if (this.current === null) throw new Error(`no membership view from the gossiper of ${this.self} yet`);
    return this.current;
  }

  ring(): Ring {
    return this.currentRings().ring;
  }

  futureRing(): Ring | null {
    return this.currentRings().futureRing;
  }

  private currentRings(): { ring: Ring; futureRing: Ring | null } {
    const table = this.view.table;
    const key = JSON.stringify(table.map((m) => [m.id, m.weight, m.ringWeight, m.generation]));
    if (this.rings?.key !== key) this.rings = { key, ...ringsFor(Object.fromEntries(table.map((m) => [m.id, m]))) };
    return this.rings;
  }

  isDown(id: string): boolean {
    if (id === this.self) return false;
    const m = this.view.members.find((x) => x.id === id);
    return m === undefined || m.liveness === 'down';
  }

  silentForMs(id: string): number {
    if (id === this.self) return 0;
    return this.view.members.find((x) => x.id === id)?.heartbeatAgeMs ?? Number.POSITIVE_INFINITY;
  }

  members(): MemberView[] {
    return this.view.members;
  }

  table(): Member[] {
    return this.view.table;
  }

  entry(id: string): Member | undefined {
    return this.view.table.find((m) => m.id === id);
  }

  get metrics(): object {
    return this.current?.metrics ?? {};
  }

  private async control(body: object): Promise<Record<string, unknown>> {
    const token = await this.storage.metaOnce(CONTROL_TOKEN, randomBytes(16).toString('hex'));
    const reply = decodeJson<Record<string, unknown> & { ok: boolean; error?: { message: string } }>(
      await this.transport.request(this.subjects.membershipControl(this.self), JSON.stringify({ ...body, token }), CONTROL_TIMEOUT_MS),
    );
    if (!reply.ok) throw new Error(`the gossiper of ${this.self} refused: ${reply.error?.message}`);
    return reply;
  }

  async setWeights(weight: number, ringWeight: number): Promise<void> {
    const reply = await this.control({ op: 'setWeights', weight, ringWeight });
    this.take(reply['view']);
  }

  async announceToAll(): Promise<number> {
    return (await this.control({ op: 'announce' }))['failed'] as number;
  }

  async removeMember(id: string): Promise<void> {
    const reply = await this.control({ op: 'remove', id });
    this.take(reply['view']);
  }
}
