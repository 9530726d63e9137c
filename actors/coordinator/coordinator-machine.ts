import { assign, createActor, setup, type ActorOptions, type AnyActorRef, type AnyActorScope, type ExecutableActionObject } from 'xstate';
import type { Clock } from '../../src/clock/clock.js';
import { ConflictError, errorReply, errorText, type ErrorReply } from '../../src/errors.js';
import type { ClientRequest } from '../../src/protocol/requests.js';
import { planReadRepair, reconcileReplies } from '../../src/quorum/read.js';
import type { CrdtOp, Resolver } from '../../src/resolvers/index.js';
import { addAck, addFailure, allAnswered, createTally, status, type Tally } from '../../src/quorum/tally.js';
import type { CoordinatedResult, CoordinatedWrite } from '../../src/storage/storage.js';
import { encodeContext, fullClock, prune, type Version } from '../../src/versioning/index.js';
import { present } from '../../src/invariant.js';
import { notProvidedAction } from '../not-provided.js';

/** What the replicas answer (sent back to the coordinator by its I/O actions). */
export type ReplicaEvent =
  | { type: 'REPLICA.ACK'; node: string }
  | { type: 'REPLICA.READ'; node: string; versions: Version[] }
  | { type: 'REPLICA.FAIL'; node: string; reason: string };

/** Every event a coordinator run takes: the replicas' answers, its own write's outcome, the deadline, the repair's end. */
export type CoordinatorEvent =
  | ReplicaEvent
  | { type: 'LOCAL.DONE'; output: CoordinatedResult }
  | { type: 'LOCAL.FAIL'; error: unknown }
  | { type: 'TIMEOUT' }
  | { type: 'REPAIR.DONE' };

export interface CoordinatorInput {
  readonly request: ClientRequest;
  /** the key's top-N preference list; includes `self` */
  readonly replicas: readonly string[];
  /** future replicas (a join or leave is moving the key's range): written to, not counted towards W */
  readonly extras: readonly string[];
  /** fallback replica → the down node it stands in for: its write is a hint for that node */
  readonly hints: ReadonlyMap<string, string>;
  readonly self: string;
  /** wall-clock ms for the new version's timestamp */
  readonly nowMs: number;
  /** ms left of the request's timeout (the node sends TIMEOUT when none is left) */
  readonly remainingMs: () => number;
  readonly reply: (text: string) => void;
  /** a write was acknowledged (after its reply): the request, the new version and the reply's context (null for a delete) */
  readonly acknowledged?: (request: Exclude<ClientRequest, { op: 'get' }>, version: Version, context: string | null) => void;
  /** the reply to a get, from the merged siblings (the bucket's resolver decides what it holds) */
  readonly render: (merged: readonly Version[]) => string;
}

/** The local write: what the storage is asked, plus what the bucket's resolver makes of it. */
export interface LocalWrite extends CoordinatedWrite {
  readonly resolver: Resolver;
  /** a put's op, for a CRDT bucket */
  readonly crdt: CrdtOp | undefined;
}

export interface ReplicateWriteInput {
  readonly replicas: readonly string[];
  /** also sent the write, fire and forget */
  readonly extras: readonly string[];
  readonly hints: ReadonlyMap<string, string>;
  readonly bucket: string;
  readonly key: string;
  /** the key's sibling set on the coordinator after the write, as JSON */
  readonly siblingsText: string;
  readonly timeoutMs: number;
}

export interface ReadReplicasInput {
  readonly replicas: readonly string[];
  readonly bucket: string;
  readonly key: string;
  readonly timeoutMs: number;
}

export interface RepairInput {
  readonly bucket: string;
  readonly key: string;
  readonly plan: ReadonlyMap<string, Version[]>;
}

interface Context {
  readonly input: CoordinatorInput;
  tally: Tally;
  version?: Version;
  siblingsText?: string;
  replies: Map<string, Version[]>;
  repairPlan?: Map<string, Version[]>;
}

/** How long a read-repair may take after the client has its answer. */
export const READ_REPAIR_TIMEOUT_MS = 1000;

/**
 * One machine per client request, after Riak's get and put FSMs (riak_kv_get_fsm,
 * riak_kv_put_fsm): the same setup, two charts. The machines only move between protocol
 * phases; the quorum arithmetic is the pure tally, and every bit of I/O is an action
 * supplied with `provide()` by the node that runs it, which sends the outcome back as
 * events (LOCAL.DONE, REPLICA.ACK, ...). The node also sends TIMEOUT when the
 * request's time is up (startRun).
 *
 * A run has no child actors and no timers of its own but the repair's. Child actors and
 * delayed transitions per request were the largest part of a node's CPU per request; a run
 * now costs tens of microseconds. Sampled runs are XState actors (the inspector watches
 * them); the rest are stepped by XState without an actor around them (see startRun).
 */
/** Action params that are the event itself: no object made per replica answer on the request path. */
const eventParams = <E>({ event }: { event: E }) => event;

const coordinator = setup({
  types: {
    context: {} as Context,
    input: {} as CoordinatorInput,
    events: {} as CoordinatorEvent,
  },
  actions: {
    /** Write locally (this node issues the new version's dot); answer LOCAL.DONE or LOCAL.FAIL. */
    writeLocal: notProvidedAction<LocalWrite>('coordinator action', 'writeLocal'),
    /** Send the coordinator's sibling set to the other replicas; each answers REPLICA.ACK or REPLICA.FAIL. */
    replicateWrite: notProvidedAction<ReplicateWriteInput>('coordinator action', 'replicateWrite'),
    /** Ask every replica (this node too) for its versions; each answers REPLICA.READ or REPLICA.FAIL. */
    readReplicas: notProvidedAction<ReadReplicasInput>('coordinator action', 'readReplicas'),
    /** Send each replica what it lacks; answer REPAIR.DONE. */
    repair: notProvidedAction<RepairInput>('coordinator action', 'repair'),
    countAck: assign({ tally: ({ context }, p: { node: string }) => addAck(context.tally, p.node) }),
    countFailure: assign({ tally: ({ context }, p: { node: string }) => addFailure(context.tally, p.node) }),
    recordRead: assign(({ context }, p: { node: string; versions: Version[] }) => ({
      replies: new Map(context.replies).set(p.node, p.versions),
      tally: addAck(context.tally, p.node),
    })),
    replyRead: ({ context }) => context.input.reply(context.input.render(reconcileReplies(context.replies))),
    replyWrite: ({ context }) => {
      const r = context.input.request;
      const version = present(context.version, 'a write is acknowledged after its local write');
      // A delete's reply carries no context: the change log works it out only if it records events.
      const clock = r.op === 'delete' ? null : encodeContext(fullClock(version));
      context.input.reply(clock === null ? '{"ok":true}' : `{"ok":true,"context":${JSON.stringify(clock)}}`);
      if (r.op !== 'get') context.input.acknowledged?.(r, version, clock);
    },
    replyQuorumNotMet: ({ context }) => context.input.reply(JSON.stringify(quorumError(context, 'QUORUM_NOT_MET'))),
    replyTimeout: ({ context }) => context.input.reply(JSON.stringify(quorumError(context, 'TIMEOUT'))),
    replyLocalFailure: ({ context }, { error }: { error: unknown }) => {
      const message = error instanceof Error ? error.message : 'unknown error';
      if (error instanceof ConflictError) context.input.reply(errorText('CONFLICT', `conditional ${context.input.request.op} refused: ${message}`));
      else context.input.reply(errorText('UNAVAILABLE', `the coordinating node could not write locally: ${message}`));
    },
  },
  guards: {
    quorumMet: ({ context }) => status(context.tally) === 'met',
    quorumLost: ({ context }) => status(context.tally) === 'failed',
    allAnswered: ({ context }) => allAnswered(context.tally),
    nothingToRepair: ({ context }) => present(context.repairPlan, 'a repair plan is made on entry').size === 0,
  },
});

function initialContext({ input }: { input: CoordinatorInput }): Context {
  const needed = input.request.op === 'get' ? input.request.r : input.request.w;
  return { input, tally: createTally(needed, input.replicas.length), replies: new Map() };
}

const endings = {
  done: { type: 'final' },
  failed: { type: 'final' },
  timedOut: { type: 'final' },
} as const;

/** A put or delete: write locally first (this node issues the dot), then the other replicas. */
export const putCoordinatorMachine = coordinator.createMachine({
  id: 'putCoordinator',
  context: initialContext,
  initial: 'executingLocal',
  states: {
    executingLocal: {
      entry: {
        type: 'writeLocal',
        params: ({ context }) => {
          const r = context.input.request as Exclude<ClientRequest, { op: 'get' }>;
          return {
            bucket: r.bucket,
            key: r.key,
            context: prune(r.context),
            node: context.input.self,
            ts: context.input.nowMs,
            value: r.op === 'put' ? r.value : undefined,
            condition: r.condition,
            resolver: r.resolver,
            crdt: r.op === 'put' ? r.crdt : undefined,
            expiresAt: r.op === 'put' && r.ttlMs !== undefined ? context.input.nowMs + r.ttlMs : undefined,
          };
        },
      },
      on: {
        'LOCAL.DONE': {
          target: 'waitingRemote',
          actions: assign(({ context, event }) => ({
            version: event.output.version,
            siblingsText: event.output.siblingsText,
            tally: addAck(context.tally, context.input.self),
          })),
        },
        'LOCAL.FAIL': { target: 'failed', actions: { type: 'replyLocalFailure', params: eventParams } },
        TIMEOUT: { target: 'timedOut', actions: 'replyTimeout' },
      },
    },
    waitingRemote: {
      entry: {
        type: 'replicateWrite',
        params: ({ context }) => ({
          replicas: context.input.replicas.filter((n) => n !== context.input.self),
          extras: context.input.extras,
          hints: context.input.hints,
          bucket: context.input.request.bucket,
          key: context.input.request.key,
          siblingsText: present(context.siblingsText, 'replicating follows the local write'),
          timeoutMs: Math.max(1, context.input.remainingMs()),
        }),
      },
      always: [
        { guard: 'quorumMet', target: 'done', actions: 'replyWrite' },
        { guard: 'quorumLost', target: 'failed', actions: 'replyQuorumNotMet' },
      ],
      on: {
        'REPLICA.ACK': { actions: { type: 'countAck', params: eventParams } },
        'REPLICA.FAIL': { actions: { type: 'countFailure', params: eventParams } },
        TIMEOUT: { target: 'timedOut', actions: 'replyTimeout' },
      },
    },

    ...endings,
  },
});

/** A get: ask all N, answer at R, keep listening to repair the rest. */
export const getCoordinatorMachine = coordinator.createMachine({
  id: 'getCoordinator',
  context: initialContext,
  initial: 'reading',
  states: {
    reading: {
      entry: {
        type: 'readReplicas',
        params: ({ context }) => ({
          replicas: context.input.replicas,
          bucket: context.input.request.bucket,
          key: context.input.request.key,
          timeoutMs: context.input.request.timeoutMs,
        }),
      },
      always: [
        { guard: 'quorumMet', target: 'readingRest', actions: 'replyRead' },
        { guard: 'quorumLost', target: 'failed', actions: 'replyQuorumNotMet' },
      ],
      on: {
        'REPLICA.READ': { actions: { type: 'recordRead', params: eventParams } },
        'REPLICA.FAIL': { actions: { type: 'countFailure', params: eventParams } },
        TIMEOUT: { target: 'timedOut', actions: 'replyTimeout' },
      },
    },
    // The client has its answer; the last replicas' answers decide the read repair.
    readingRest: {
      always: { guard: 'allAnswered', target: 'readRepair' },
      on: {
        'REPLICA.READ': { actions: { type: 'recordRead', params: eventParams } },
        'REPLICA.FAIL': { actions: { type: 'countFailure', params: eventParams } },
        TIMEOUT: 'readRepair',
      },
    },
    readRepair: {
      entry: assign({ repairPlan: ({ context }) => planReadRepair(context.replies, reconcileReplies(context.replies)) }),
      always: [{ guard: 'nothingToRepair', target: 'done' }, { target: 'repairing' }],
    },
    repairing: {
      entry: {
        type: 'repair',
        params: ({ context }) => ({
          bucket: context.input.request.bucket,
          key: context.input.request.key,
          plan: present(context.repairPlan, 'repairing follows planning'),
        }),
      },
      on: { 'REPAIR.DONE': 'done' },
      // Repairs are best effort; a stuck replica must not keep the machine alive.
      after: { [READ_REPAIR_TIMEOUT_MS]: 'done' },
    },

    ...endings,
  },
});

function quorumError(context: Context, code: 'QUORUM_NOT_MET' | 'TIMEOUT'): ErrorReply {
  const { acks, needed } = context.tally;
  const what = context.input.request.op === 'get' ? 'read' : 'write';
  const message =
    code === 'TIMEOUT'
      ? `the ${what} timed out after ${context.input.request.timeoutMs} ms with ${acks} of ${needed} required replicas answering`
      : `only ${acks} of ${needed} required replicas answered the ${what}`;
  return errorReply(code, message, { acks, needed });
}

type CoordinatorLogic = typeof putCoordinatorMachine | typeof getCoordinatorMachine;

/** The I/O both machines are given: what a node provides to run them. */
export type CoordinatorIo = Parameters<typeof putCoordinatorMachine.provide>[0]['actions'];

/** A coordinator run as the node and the tests see it: its snapshot, and where its I/O sends outcomes. */
export interface CoordinatorRun {
  getSnapshot(): { readonly value: unknown; readonly status: string };
  send(event: CoordinatorEvent): void;
}

interface RunEnded {
  complete?: () => void;
  error?: (e: unknown) => void;
}

/**
 * Start one run of `machine` (the coordinator machine with its I/O provided), with the
 * run's one timer: TIMEOUT once the request's `timeoutMs` is up, cleared when the run ends.
 *
 * A run that is inspected (`options.inspect`: the sampled runs the console and the Stately
 * inspector show) is an XState actor. Every other run is a MachineRun: the same machine,
 * each step taken by XState's own `transition`, without an actor around it. An actor per
 * request (its system, mailbox, scheduler, observers and a dozen closures) was about a quarter
 * of the machine's cost, and the machine a fifth to a quarter of a node's CPU per request.
 */
export function startRun<M extends CoordinatorLogic>(
  machine: M,
  input: CoordinatorInput,
  clock: Pick<Clock, 'setTimeout' | 'clearTimeout'>,
  ended: RunEnded = {},
  options: Omit<ActorOptions<M>, 'input' | 'clock'> = {},
): CoordinatorRun {
  if (options.inspect === undefined) return new MachineRun(machine, input, clock, ended);
  const actor = createActor(machine, { ...options, clock, input } as ActorOptions<M>);
  const timer = clock.setTimeout(() => tell(actor, { type: 'TIMEOUT' }), input.request.timeoutMs);
  actor.subscribe({
    complete: () => {
      clock.clearTimeout(timer);
      ended.complete?.();
    },
    error: (e) => {
      clock.clearTimeout(timer);
      ended.error?.(e);
    },
  });
  actor.start();
  return actor;
}

const noop = () => {};

/**
 * What XState asks of a run's system while it steps the machine: an inspection hook (off), and
 * a scheduler for delayed events, which XState hands the run as their source. One for all runs.
 */
const RUN_SYSTEM = {
  _sendInspectionEvent: noop,
  scheduler: {
    schedule: (source: MachineRun, _target: unknown, event: CoordinatorEvent, delay: number, id: string) => source.schedule(event, delay, id),
    cancel: (source: MachineRun, id: string) => source.cancel(id),
  },
} as unknown as AnyActorScope['system'];

type RunSnapshot = ReturnType<CoordinatorLogic['transition']>;

/**
 * One run of a coordinator machine without an actor: XState computes every step
 * (`getInitialSnapshot`, `transition`) and hands the step's actions to this run, which
 * executes them once the step's snapshot is in place, as an actor does, then what the
 * step deferred (a delayed event's timer). Events that come while a step runs wait their
 * turn. A run ends as an actor does: done, or an error thrown by a step or an action.
 */
class MachineRun implements CoordinatorRun {
  /** null only when the first step threw */
  private snapshot: RunSnapshot | null = null;
  private failure: { error: unknown } | null = null;
  private readonly scope: AnyActorScope;
  private actions: ExecutableActionObject[] = [];
  private deferred: (() => void)[] = [];
  private queue: CoordinatorEvent[] = [];
  private running = false;
  /** timers of delayed events (the repair's `after`), by id */
  private readonly delayed = new Map<string, unknown>();
  private readonly timer: unknown;

  schedule(event: CoordinatorEvent, delay: number, id: string): void {
    this.delayed.set(
      id,
      this.clock.setTimeout(() => {
        this.delayed.delete(id);
        this.send(event);
      }, delay),
    );
  }

  cancel(id: string): void {
    const t = this.delayed.get(id);
    this.delayed.delete(id);
    if (t !== undefined) this.clock.clearTimeout(t);
  }

  constructor(
    private readonly machine: CoordinatorLogic,
    input: CoordinatorInput,
    private readonly clock: Pick<Clock, 'setTimeout' | 'clearTimeout'>,
    private readonly ended: RunEnded,
  ) {
    this.scope = {
      // What the machine's actions get as `self`: tell() needs only send and getSnapshot.
      self: this as unknown as AnyActorRef,
      id: 'coordinator',
      sessionId: 'coordinator',
      logger: noop,
      defer: (fn) => this.deferred.push(fn),
      emit: noop,
      system: RUN_SYSTEM,
      stopChild: noop,
      actionExecutor: (action) => this.actions.push(action),
    };
    this.timer = clock.setTimeout(() => this.send({ type: 'TIMEOUT' }), input.request.timeoutMs);
    this.running = true;
    this.step(() => machine.getInitialSnapshot(this.scope, input));
    this.drain();
  }

  getSnapshot(): { readonly value: unknown; readonly status: string } {
    if (this.failure === null && this.snapshot !== null) return this.snapshot;
    return { value: this.snapshot?.value, status: 'error' };
  }

  private get active(): boolean {
    return this.failure === null && this.snapshot?.status === 'active';
  }

  send(event: CoordinatorEvent): void {
    if (!this.active) return;
    this.queue.push(event);
    if (this.running) return;
    this.running = true;
    this.drain();
  }

  /** Take queued events one step each until none is left or the run has ended. */
  private drain(): void {
    for (;;) {
      const current = this.snapshot;
      if (!this.active || current === null) break;
      const event = this.queue.shift();
      if (event === undefined) break;
      this.step(() => this.machine.transition(current as never, event as never, this.scope));
    }
    this.running = false;
    if (!this.active) this.end();
  }

  /** One step: its snapshot put in place, then its actions and what it deferred done; a throw ends the run. */
  private step(make: () => RunSnapshot): void {
    try {
      const next = make();
      this.snapshot = next;
      const actions = this.actions;
      this.actions = [];
      for (const a of actions) a.exec?.(a.info, a.params);
      const deferred = this.deferred;
      this.deferred = [];
      for (const fn of deferred) fn();
      if (next.status === 'error') this.failure = { error: next.error };
    } catch (error) {
      this.actions = [];
      this.deferred = [];
      this.failure = { error };
    }
  }

  private end(): void {
    this.clock.clearTimeout(this.timer);
    for (const t of this.delayed.values()) this.clock.clearTimeout(t);
    this.delayed.clear();
    this.queue = [];
    if (this.failure !== null) this.ended.error?.(this.failure.error);
    else this.ended.complete?.();
  }
}

/** Send a run the outcome of its I/O; dropped once the run has finished (a late replica, a stopped node). */
export function tell(run: AnyActorRef | CoordinatorRun, event: CoordinatorEvent): void {
  if (run.getSnapshot().status === 'active') run.send(event);
}
