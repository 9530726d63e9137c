import { inject, injectable } from 'tsyringe';
import { Inspection } from '../../src/inspect/inspection.js';
import { NodeMetrics } from '../../src/metrics/metrics.js';
import { stateText } from '../../src/inspect/trace.js';
import { createActor, fromCallback, fromPromise, waitFor, type ActorRefFrom } from 'xstate';
import { sleep, type Clock } from '../../src/clock/clock.js';
import type { ActorName, NodeConfig } from '../../src/config.js';
import { TOKENS, type Logger, type Random } from '../../src/di/tokens.js';
import type { Subjects } from '../../src/protocol/subjects.js';
import type { Storage } from '../../src/storage/storage.js';
import { decodeJson, type Subscription, type Transport } from '../../src/transport/transport.js';
import { AntiEntropy } from '../anti-entropy/anti-entropy.js';
import { Gossiper } from '../gossiper/gossiper.js';
import { GossipMirror } from '../gossiper/gossip-mirror.js';
import type { NodeMembership } from '../../src/membership/membership.js';
import { AdminServer } from './admin-server.js';
import { Buckets } from './buckets.js';
import { ClientServer } from './client-server.js';
import { FaultsServer } from './faults-server.js';
import { HandoffServer } from './handoff-server.js';
import { HintedHandoff } from './hinted-handoff.js';
import { AwayRepair } from './away-repair.js';
import { Reaper } from './reaper.js';
import { nodeMachine, stateName, STOP_TIMEOUT_MS } from './node-machine.js';
import { ReplicaServer } from './replica-server.js';
import { KeysServer } from './keys-server.js';
import { ChangeLog } from './change-log.js';
import { BackupServer } from './backup-server.js';
import { Transfers } from './transfers.js';
import type { NodeLifecycle } from './node-status.js';

/** A process's hold on an actor of its node lasts this long unless renewed (every LEASE_RENEW_MS). */
export const LEASE_TTL_MS = 6000;
const LEASE_RENEW_MS = 2000;

/** How long a starting node waits for another process to answer on its id. */
const DUPLICATE_CHECK_MS = 300;

export class DuplicateNodeError extends Error {
  override readonly name = 'DuplicateNodeError';
}

/**
 * One node of the cluster: its lifecycle machine, its gossiper, and the servers that
 * answer on its subjects while it is online. Assembled by the node's DI container.
 */
@injectable()
export class DynamoNode implements NodeLifecycle {
  readonly actor: ActorRefFrom<typeof nodeMachine>;
  private readonly done: Promise<void>;

  constructor(
    @inject(TOKENS.Subjects) private readonly subjects: Subjects,
    @inject(TOKENS.Config) readonly config: NodeConfig,
    @inject(TOKENS.Transport) private readonly transport: Transport,
    @inject(TOKENS.Storage) private readonly storage: Storage,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.Random) random: Random,
    @inject(TOKENS.Membership) readonly membership: NodeMembership,
    readonly gossiper: Gossiper,
    private readonly mirror: GossipMirror,
    readonly transfers: Transfers,
    readonly hints: HintedHandoff,
    readonly reaper: Reaper,
    private readonly awayRepair: AwayRepair,
    readonly antiEntropy: AntiEntropy,
    readonly buckets: Buckets,
    private readonly client: ClientServer,
    private readonly replica: ReplicaServer,
    private readonly handoff: HandoffServer,
    private readonly admin: AdminServer,
    private readonly faults: FaultsServer,
    private readonly keys: KeysServer,
    readonly changes: ChangeLog,
    private readonly backup: BackupServer,
    private readonly inspection: Inspection,
    readonly metrics: NodeMetrics,
  ) {
    this.leaseOwner = `${process.pid}-${Math.floor(random() * 2 ** 32).toString(36)}`;
    const machine = nodeMachine.provide({
      actors: {
        boot: fromPromise(() => this.boot()),
        serve: fromCallback(() => {
          const subs: Subscription[] = [
            ...(this.hosts('node')
              ? [
                  ...this.replica.listen(),
                  ...this.handoff.listen(),
                  ...this.admin.listen(),
                  ...this.faults.listen(),
                  ...this.keys.listen(),
                  ...this.changes.listen(),
                  ...this.backup.listen(),
                ]
              : []),
            ...(this.hosts('anti-entropy') ? this.antiEntropy.server.listen() : []),
            ...(this.hosts('coordinator') ? this.client.listen() : []),
          ];
          if (this.hosts('node')) {
            this.hints.start();
            this.reaper.start();
          }
          if (this.hosts('anti-entropy')) this.antiEntropy.start();
          const watch = this.hosts('node') && !this.hosts('gossiper') ? this.watchOwnEntry() : () => {};
          return () => {
            // Going offline (a stop, or a crash in a simulation) ends the leases' renewal.
            this.stopRenewingLeases();
            watch();
            this.antiEntropy.stop();
            this.hints.stop();
            this.reaper.stop();
            for (const s of subs) s.unsubscribe();
          };
        }),
        // Joins and leaves move data: the work of the process hosting the node actor.
        join: fromPromise(async () => (this.hosts('node') ? this.transfers.rebalance(this.config.weight) : undefined)),
        leave: fromPromise(async () => (this.hosts('node') ? this.transfers.rebalance(0) : undefined)),
        shutdown: fromPromise(() => this.shutdown()),
      },
    });
    this.actor = createActor(machine, { id: `node-${config.nodeId}`, clock, inspect: this.inspection.observer('node') });
    this.done = new Promise((resolve) => this.actor.subscribe({ complete: () => resolve(), error: () => resolve() }));
  }

  get id(): string {
    return this.config.nodeId;
  }

  /** Client requests taken so far, by subject: any node (queue group), this node's own, forwarded. */
  get requests(): Readonly<{ queue: number; direct: number; forwarded: number }> {
    return this.client.received;
  }

  /** booting, joining, serving, leaving, stopping or stopped */
  get state(): string {
    return stateName(this.actor.getSnapshot().value);
  }

  /** NodeLifecycle: the lifecycle machine's full state, as text. */
  get stateText(): string {
    return stateText(this.actor.getSnapshot().value);
  }

  /** NodeLifecycle: leave the ring (AdminServer checks first that the node may). */
  requestLeave(): void {
    this.actor.send({ type: 'LEAVE' });
  }

  /** Client requests this node is coordinating (read repairs included). */
  get inFlight(): number {
    return this.client.inFlight;
  }

  /**
   * With the gossiper in another process: if it comes back with this node out of the
   * ring (its store was wiped with it), join again, pulling this node's ranges.
   */
  private watchOwnEntry(): () => void {
    let timer: unknown;
    const check = () => {
      const me = this.membership.entry(this.id);
      if (this.state === 'serving' && me !== undefined && me.ringWeight !== this.config.weight) {
        this.logger.warn(`this node's gossiper shows it at ring weight ${me.ringWeight}, not ${this.config.weight}; joining again`);
        this.actor.send({ type: 'REJOIN' });
      }
      timer = this.clock.setTimeout(check, this.config.gossipIntervalMs);
    };
    timer = this.clock.setTimeout(check, this.config.gossipIntervalMs);
    return () => this.clock.clearTimeout(timer);
  }

  /** Each long-lived actor this process hosts, and its current state (the console draws them). */
  private hosts(actor: ActorName): boolean {
    return this.config.actors.includes(actor);
  }

  /** This process's hold on the actors it hosts: one lease each in the node's Redis. */
  private readonly leaseOwner: string;
  private leaseTimer: unknown = null;

  private async takeLeases(): Promise<void> {
    const deadline = this.clock.monotonic() + LEASE_TTL_MS + LEASE_RENEW_MS;
    for (const actor of this.config.actors) {
      // A lease left by a process that died runs out within LEASE_TTL_MS; a live holder keeps renewing it.
      while (!(await this.storage.acquireLease(actor, this.leaseOwner, LEASE_TTL_MS))) {
        if (this.clock.monotonic() > deadline) {
          throw new DuplicateNodeError(
            `the ${actor} actor of node "${this.id}" is already running in another process (it holds the lease in this node's Redis)`,
          );
        }
        await sleep(this.clock, LEASE_RENEW_MS / 4);
      }
    }
    this.renewLeases();
  }

  /** Keep this process's leases, from boot until it goes offline. */
  private renewLeases(): void {
    const renew = () => {
      void Promise.all(this.config.actors.map((a) => this.storage.acquireLease(a, this.leaseOwner, LEASE_TTL_MS))).then(
        (held) => {
          if (held.includes(false)) this.logger.error(`lost the lease of an actor of ${this.id} to another process`);
        },
        (e: Error) => this.logger.warn(`could not renew this process's leases: ${e.message}`),
      );
      this.leaseTimer = this.clock.setTimeout(renew, LEASE_RENEW_MS);
    };
    this.leaseTimer = this.clock.setTimeout(renew, LEASE_RENEW_MS);
  }

  private stopRenewingLeases(): void {
    if (this.leaseTimer !== null) this.clock.clearTimeout(this.leaseTimer);
    this.leaseTimer = null;
  }

  private async releaseLeases(): Promise<void> {
    this.stopRenewingLeases();
    await Promise.all(this.config.actors.map((a) => this.storage.releaseLease(a, this.leaseOwner).catch(() => {})));
  }

  private async boot(): Promise<void> {
    await this.storage.connect();
    if (this.hosts('node')) {
      const taken = await this.transport.request(this.subjects.ping(this.id), '', DUPLICATE_CHECK_MS).then(
        () => true,
        () => false,
      );
      if (taken) throw new DuplicateNodeError(`another node with id "${this.id}" is already running on this cluster`);
    }
    await this.takeLeases();
    if (this.hosts('node') && (this.config.rebuildTree || !(await this.storage.treeBuilt()))) await this.rebuildTree();
    await this.buckets.load();
    // The node actor's process keeps the away-repair state itself; a process without it follows it in Redis.
    if (this.hosts('node')) {
      await this.startOverIfStale();
      await this.awayRepair.beginIfAway(this.reaper.tombstones.shortestGrace());
    } else this.awayRepair.follow();
    if (this.hosts('gossiper')) {
      const ringWeight = await this.transfers.savedRingWeight();
      await this.gossiper.start({ id: this.id, generation: this.clock.now(), heartbeat: 0, weight: this.config.weight, ringWeight });
    } else await this.mirror.start();
  }

  /**
   * A store that may hold versions whose tombstones the cluster reaped while it was away
   * must not serve them or hand them out, or deleted keys would come back. A ring member
   * cannot miss a reap (reaping waits for every member), so that is the store of a node
   * that left the ring (or never finished joining) and of one an operator removed. Such a
   * node starts empty and joins again, taking its ranges from their current replicas
   * (src/membership/reaping.ts).
   */
  private async startOverIfStale(): Promise<void> {
    if ((await this.storage.keyCount()) === 0) return;
    const ringWeight = await this.transfers.savedRingWeight();
    let why: string | null = null;
    if (ringWeight === 0 && !(await this.transfers.joinUnderWay())) why = 'it holds keys from before it left the ring';
    else if (ringWeight > 0 && (await this.removedFromRing())) why = 'an operator removed it from the ring while it was away';
    if (why === null) return;
    this.logger.warn(`${why}: deletes may have been reaped since, so this node starts empty and joins again`);
    const dropped = await this.storage.wipeData();
    await this.transfers.startOver();
    this.logger.info(`dropped ${dropped} keys; their ranges come from the current replicas`);
  }

  /** Whether a seed's membership shows this node removed (left, though it never left itself). */
  private async removedFromRing(): Promise<boolean> {
    for (const seed of this.config.seeds.filter((s) => s !== this.id)) {
      try {
        const view = decodeJson<{ members?: { id: string; status: string }[] }>(
          await this.transport.request(this.subjects.membershipGet(seed), '', DUPLICATE_CHECK_MS),
        );
        const me = view.members?.find((m) => m.id === this.id);
        return me?.status === 'left';
      } catch {
        // That seed is not up: ask the next.
      }
    }
    return false;
  }

  /** Data written before trees existed, or asked for (--rebuild-tree): derive the tree before serving, showing progress. */
  private async rebuildTree(): Promise<void> {
    const total = await this.storage.keyCount();
    this.logger.info(`building the anti-entropy tree over ${total} keys`);
    let shown = 0;
    const keys = await this.storage.rebuildTree((done) => {
      const tenth = total > 0 ? Math.floor((done / total) * 10) : 10;
      if (tenth > shown) this.logger.info(`anti-entropy tree: ${Math.min(done, total)}/${total} keys (${Math.min(100, tenth * 10)}%)`);
      shown = Math.max(shown, tenth);
    });
    this.logger.info(`anti-entropy tree built (${keys} entries checked)`);
  }

  private async shutdown(): Promise<void> {
    // Client subjects are gone (leaving `online` unsubscribed them); let running requests finish.
    const deadline = this.clock.monotonic() + STOP_TIMEOUT_MS;
    while (this.client.inFlight > 0 && this.clock.monotonic() < deadline) await sleep(this.clock, 20);
    // The last writes' change events go out before the connections close (bounded: a stuck Redis must not hold the stop).
    let timer: unknown;
    await Promise.race([this.changes.drain(), new Promise((r) => (timer = this.clock.setTimeout(r, 2000)))]);
    this.clock.clearTimeout(timer);
    this.gossiper.stop();
    this.mirror.stop();
    this.awayRepair.stop();
    this.inspection.stop();
    await this.releaseLeases();
    await this.storage.close();
    await this.transport.close();
  }

  /** Boot, join, and resolve once the node serves; rejects if it stops before that. */
  async start(): Promise<void> {
    this.actor.start();
    const snap = await waitFor(this.actor, (s) => stateName(s.value) === 'serving' || s.status === 'done' || s.value === 'stopping', { timeout: Infinity });
    if (stateName(snap.value) !== 'serving') {
      await this.done;
      throw new Error(`node ${this.id} failed to start: ${snap.context.error ?? 'stopped while starting'}`);
    }
    await this.client.ready;
    await this.transport.flush();
    const actors = this.config.actors.length === 4 ? '' : ` (actors here: ${this.config.actors.join(', ')})`;
    this.logger.info(`serving on prefix "${this.config.prefix}"; ring has ${this.membership.ring().size} member(s)${actors}`);
  }

  /** Hand this node's ranges to their new owners, then stop. */
  async leave(): Promise<void> {
    const refusal = this.transfers.leaveRefusal();
    if (refusal) throw new Error(refusal);
    this.actor.send({ type: 'LEAVE' });
    // Either the node hands over and stops, or the leave fails and it serves on.
    const snap = await waitFor(this.actor, (s) => s.status === 'done' || stateName(s.value) === 'serving', { timeout: Infinity });
    if (snap.status !== 'done') throw new Error(`node ${this.id} could not leave: ${snap.context.error ?? 'unknown error'}`);
  }

  /** Stop serving, let in-flight requests finish, then close storage and transport. */
  async stop(): Promise<void> {
    this.actor.send({ type: 'STOP' });
    await this.done;
  }
}
