import { inject, injectable } from 'tsyringe';
import type { InspectionEvent, Observer } from 'xstate';
import type { Clock } from '../clock/clock.js';
import type { NodeConfig } from '../config.js';
import { TOKENS } from '../di/tokens.js';
import { subjects } from '../protocol/subjects.js';
import type { Transport } from '../transport/transport.js';
import { StatelyRelay } from './stately-relay.js';
import {
  Budget,
  MAX_STATELY_EVENTS_PER_SECOND,
  MAX_TRACE_MESSAGES_PER_SECOND,
  outcomeOf,
  STATELY_RUNS_PER_SECOND,
  RunRecorder,
  TransitionTracker,
  type Trace,
  type TransitionTrace,
} from './trace.js';

/** What a sampled coordinator run is given: the observer for its actor, and the calls that mark its reply and its end. */
export interface RunInspection {
  readonly inspect: Observer<InspectionEvent>;
  replied(reply: string): void;
  /** the run failed without a final snapshot (a bug): publish what it has. Runs that end normally publish themselves. */
  finish(): void;
}

type Observe = (event: InspectionEvent) => void;

/** Only these reach the Stately inspector: the rest (actions, microsteps) are many and add little. */
const FORWARDED = new Set(['@xstate.actor', '@xstate.event', '@xstate.snapshot']);

/**
 * A node's window onto its actors, with `--inspect`: each long-lived actor's
 * transitions, and sampled coordinator runs, go to `<p>.trace.<node>.<actor>` and to
 * the Stately inspector's relay when one is named. Without `--inspect` it hands out no
 * observers at all, so actors are created exactly as they would be without it.
 */
@injectable()
export class Inspection {
  readonly enabled: boolean;
  private readonly runs: Budget;
  private readonly messages = new Budget(MAX_TRACE_MESSAGES_PER_SECOND);
  private readonly relayRuns = new Budget(STATELY_RUNS_PER_SECOND);
  private readonly relayEvents = new Budget(MAX_STATELY_EVENTS_PER_SECOND);
  private readonly relay: StatelyRelay | null;
  private readonly prefix: string;
  published = 0;

  constructor(
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Transport) private readonly transport: Transport,
    @inject(TOKENS.Clock) private readonly clock: Clock,
  ) {
    this.enabled = config.inspect;
    this.runs = new Budget(config.inspectRunsPerSecond);
    this.relay = config.inspect && config.inspectUrl ? new StatelyRelay(config.inspectUrl) : null;
    this.prefix = subjects(config.prefix).trace(config.nodeId, '');
  }

  /** Trace messages refused by the per-second bound, and coordinator runs not sampled. */
  get dropped(): { messages: number; runsNotSampled: number; failures: number; relayDropped: number } {
    return { messages: this.messages.refused, runsNotSampled: this.runs.refused, failures: this.failures, relayDropped: this.relay?.dropped ?? 0 };
  }

  private publish(trace: Trace): void {
    if (!this.messages.take(this.clock.monotonic())) return;
    this.published++;
    this.transport.publish(`${this.prefix}${trace.actor}`, JSON.stringify(trace));
  }

  /**
   * Pass an event on to the Stately relay: the root actor's own (a child promise's
   * registration and snapshots add little), within the per-second bound.
   */
  private toRelay(ev: InspectionEvent): void {
    if (FORWARDED.has(ev.type) && ev.actorRef.sessionId === ev.rootId && this.relayEvents.take(this.clock.monotonic())) this.relay?.send(ev);
  }

  /** The `inspect` option for a long-lived actor of this node; undefined when inspection is off. */
  observer(actor: TransitionTrace['actor']): Observe | undefined {
    if (!this.enabled) return undefined;
    const tracker = new TransitionTracker(this.config.nodeId, actor);
    const relayed = this.relay !== null;
    return this.guarded((ev) => {
      if (relayed) this.toRelay(ev);
      if (ev.type !== '@xstate.snapshot' || ev.actorRef.sessionId !== ev.rootId) return;
      const t = tracker.next((ev.snapshot as { value?: unknown }).value, ev.event.type, this.clock.now());
      if (t !== null) this.publish(t);
    });
  }

  /** Inspection failures (a bug in tracing): counted, never allowed to reach the actor that reported. */
  failures = 0;

  private guarded(observe: Observe): Observe {
    return (ev) => {
      try {
        observe(ev);
      } catch {
        this.failures++;
      }
    };
  }

  /**
   * A coordinator run to trace, or null: inspection off, or this node has already
   * traced its share of runs this second (`--inspect-runs-per-second`).
   */
  sampleRun(request: { op: string; bucket: string; key: string }, replicas: readonly string[], seq: number): RunInspection | null {
    if (!this.enabled || !this.runs.take(this.clock.monotonic())) return null;
    const started = this.clock.monotonic();
    const requestId = `${this.config.nodeId}-${seq}`;
    const recorder = new RunRecorder(
      { node: this.config.nodeId, requestId, at: this.clock.now(), op: request.op, bucket: request.bucket, key: request.key, replicas },
      started,
    );
    const relayed = this.relay !== null && this.relayRuns.take(started);
    let published = false;
    const finish = () => {
      if (published) return;
      published = true;
      this.publish(recorder.finish(this.clock.monotonic()));
    };
    return {
      inspect: {
        next: this.guarded((ev) => {
          if (relayed) this.toRelay(ev);
          if (ev.type !== '@xstate.snapshot' || ev.actorRef.sessionId !== ev.rootId) return;
          const snapshot = ev.snapshot as { value?: unknown; status?: string };
          recorder.snapshot(snapshot.value, ev.event as { type: string }, this.clock.monotonic());
          // XState tells `complete` observers before it reports the final snapshot here: end the trace on that snapshot.
          if (snapshot.status !== 'active') finish();
        }),
      },
      replied: (reply) => recorder.replied(outcomeOf(reply), this.clock.monotonic()),
      finish,
    };
  }

  stop(): void {
    this.relay?.stop();
  }
}
