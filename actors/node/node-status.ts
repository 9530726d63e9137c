import { inject, injectable } from 'tsyringe';
import type { ActorName, NodeConfig } from '../../src/config.js';
import { TOKENS } from '../../src/di/tokens.js';
import { Inspection } from '../../src/inspect/inspection.js';
import { memberState, type NodeMembership } from '../../src/membership/membership.js';
import type { MetricSources } from '../../src/metrics/metrics.js';
import type { Storage } from '../../src/storage/storage.js';
import { AntiEntropy } from '../anti-entropy/anti-entropy.js';
import type { AntiEntropyStatus, TraceStatus } from './admin-server.js';
import { CoordinatorRunner } from '../coordinator/coordinator-runner.js';
import { Gossiper } from '../gossiper/gossiper.js';
import { ClientServer } from './client-server.js';
import { HintedHandoff } from './hinted-handoff.js';
import { AwayRepair } from './away-repair.js';
import { Reaper } from './reaper.js';
import { StaleCopies } from './stale-copies.js';
import { ChangeLog } from './change-log.js';
import { ReplicaServer } from './replica-server.js';
import { Transfers, type TransferProgress } from './transfers.js';

/** What NodeStatus needs of the node's lifecycle actor (DynamoNode). */
export interface NodeLifecycle {
  /** booting, joining, serving, leaving, stopping or stopped */
  readonly state: string;
  /** the lifecycle machine's full state, as text */
  readonly stateText: string;
  /** ask the lifecycle actor to leave the ring */
  requestLeave(): void;
}

/** A node's own report of itself: what `ping` answers, and what the metrics read at scrape time. */
export interface NodeProbe {
  state: string;
  inFlight: number;
  transfer: TransferProgress | null;
  requests: ClientServer['received'];
  hints: { stored: number; refused: number; delivered: number };
  siblingsFolded: number;
  /** expired values the reaper turned into tombstones since start */
  expiredReaped: number;
  /** copies of keys this node no longer replicates: dropped, and sent to the replicas first, since start */
  staleCopies: { dropped: number; sent: number };
  /**
   * tombstone-only keys this node reaped as their first replica, and copies or hints it
   * dropped when another node reaped, since start; why tombstones past their grace wait, or
   * null; OR-Set keys whose retired tags it collected as first replica, since start
   */
  tombstoneReaping: { reaped: number; dropped: number; waiting: string | null; retiredTagsCollected: number };
  /** back after longer than the tombstone grace: since when (store clock) it serves no reads, and the live peers anti-entropy has yet to compare it with; null while it serves */
  awayRepair: { since: number; pending: string[] } | null;
  /** change events published since start, and acknowledged writes whose event could not be logged */
  changes: { published: number; lost: number };
  antiEntropy: AntiEntropyStatus;
  actors: Record<string, string>;
  trace: TraceStatus;
}

/**
 * The one place that reads the node's parts to report on them: AdminServer (ping,
 * leave) and NodeMetrics (scrapes) ask it, instead of callbacks assigned onto them.
 * The lifecycle is DynamoNode, which itself depends on AdminServer: the container
 * hands over a lookup, called on use, once the node is assembled.
 */
@injectable()
export class NodeStatus implements MetricSources {
  constructor(
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Storage) private readonly storage: Storage,
    @inject(TOKENS.Membership) private readonly membership: NodeMembership,
    @inject(TOKENS.Lifecycle) private readonly lifecycleOf: () => NodeLifecycle,
    private readonly client: ClientServer,
    private readonly replica: ReplicaServer,
    private readonly handoff: HintedHandoff,
    private readonly coordinator: CoordinatorRunner,
    private readonly ae: AntiEntropy,
    private readonly gossiper: Gossiper,
    private readonly transfers: Transfers,
    private readonly inspection: Inspection,
    private readonly reaper: Reaper,
    private readonly changes: ChangeLog,
    private readonly stale: StaleCopies,
    private readonly away: AwayRepair,
  ) {}

  private hosts(actor: ActorName): boolean {
    return this.config.actors.includes(actor);
  }

  probe(): NodeProbe {
    return {
      state: this.lifecycleOf().state,
      inFlight: this.client.inFlight,
      transfer: this.transfers.progress,
      requests: this.client.received,
      hints: this.hints(),
      siblingsFolded: this.coordinator.siblingsFolded,
      expiredReaped: this.reaper.reaped,
      staleCopies: { dropped: this.stale.dropped, sent: this.stale.sent },
      tombstoneReaping: {
        reaped: this.reaper.tombstones.reaped,
        dropped: this.replica.reapDropped,
        waiting: this.reaper.tombstones.waiting ?? this.reaper.retiredTags.waiting,
        retiredTagsCollected: this.reaper.retiredTags.compacted,
      },
      awayRepair: this.away.since === null ? null : { since: this.away.since, pending: this.away.pending },
      changes: { published: this.changes.published, lost: this.changes.lost },
      antiEntropy: {
        enabled: this.hosts('anti-entropy') && this.ae.enabled,
        state: this.ae.state,
        ...this.ae.metrics,
        ranges: this.ae.rangeStatus(),
      },
      actors: this.actorStates(),
      trace: { enabled: this.inspection.enabled, published: this.inspection.published, ...this.inspection.dropped },
    };
  }

  /** The state of each actor this process hosts. */
  actorStates(): Record<string, string> {
    const states: Record<string, string> = { node: this.lifecycleOf().stateText };
    if (this.hosts('gossiper')) states['gossiper'] = this.gossiper.state;
    if (this.hosts('anti-entropy')) states['anti-entropy'] = this.ae.state;
    if (this.hosts('node')) {
      states['hinted-handoff'] = this.handoff.state;
      states['reaper'] = this.reaper.state;
    }
    return states;
  }

  /** Why this node may not leave now (it is the last one, or a transfer is under way), or null. */
  leaveRefusal(): string | null {
    return this.transfers.leaveRefusal();
  }

  requestLeave(): void {
    this.lifecycleOf().requestLeave();
  }

  // MetricSources: read when Prometheus scrapes.
  hintsPending(): Promise<number> {
    return this.storage.hintCount();
  }

  hints(): { stored: number; refused: number; delivered: number } {
    return { stored: this.replica.hintsStored, refused: this.replica.hintsRefused, delivered: this.handoff.delivered };
  }

  antiEntropy(): { exchanges: number; failures: number; keysRepaired: number; bytesSent: number } {
    return this.ae.metrics;
  }

  gossip(): { rounds: number; exchanges: number; failedExchanges: number } {
    return this.membership.metrics as { rounds: number; exchanges: number; failedExchanges: number };
  }

  memberStates(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const m of this.membership.members()) {
      const state = memberState(m);
      counts[state] = (counts[state] ?? 0) + 1;
    }
    return counts;
  }

  inFlight(): number {
    return this.client.inFlight;
  }
}
