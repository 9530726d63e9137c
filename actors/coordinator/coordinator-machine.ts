import { assign, fromCallback, fromPromise, setup, type ActorRefFrom } from 'xstate';
import { ConflictError, errorReply, type ErrorReply } from '../../src/errors.js';
import type { ClientRequest } from '../../src/protocol/requests.js';
import { planReadRepair, reconcileReplies } from '../../src/quorum/read.js';
import type { CrdtOp, Resolver } from '../../src/resolvers/index.js';
import { addAck, addFailure, allAnswered, createTally, status, type Tally } from '../../src/quorum/tally.js';
import type { CoordinatedResult, CoordinatedWrite } from '../../src/storage/storage.js';
import { encodeContext, fullClock, prune, type Version } from '../../src/versioning/index.js';

/** Events the replica fan-out actors send back to the coordinator. */
export type ReplicaEvent =
  | { type: 'REPLICA.ACK'; node: string }
  | { type: 'REPLICA.READ'; node: string; versions: Version[] }
  | { type: 'REPLICA.FAIL'; node: string; reason: string };

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
  /** monotonic ms, for what is left of the request's timeout (injected so tests can run on a simulated clock) */
  readonly monotonic: () => number;
  readonly reply: (text: string) => void;
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
  readonly startedAt: number;
  tally: Tally;
  version?: Version;
  siblingsText?: string;
  replies: Map<string, Version[]>;
  merged: Version[];
  repairPlan?: Map<string, Version[]>;
  failure?: string;
}

/** How long a read-repair may take after the client has its answer. */
export const REPAIR_TIMEOUT_MS = 1000;

const notProvided = (name: string) => () => {
  throw new Error(`coordinator actor "${name}" was not provided`);
};

/**
 * One machine per client request, after Riak's get/put FSMs. The machine only moves
 * between protocol phases; the quorum arithmetic is the pure tally, and every bit of
 * I/O is an actor supplied with `provide()` by the node that runs it.
 */
export const coordinatorMachine = setup({
  types: {
    context: {} as Context,
    input: {} as CoordinatorInput,
    events: {} as ReplicaEvent,
  },
  actors: {
    coordinateLocal: fromPromise<CoordinatedResult, LocalWrite>(notProvided('coordinateLocal')),
    replicateWrite: fromCallback<ReplicaEvent, ReplicateWriteInput>(notProvided('replicateWrite')),
    readReplicas: fromCallback<ReplicaEvent, ReadReplicasInput>(notProvided('readReplicas')),
    repair: fromPromise<void, RepairInput>(notProvided('repair')),
  },
  delays: {
    /** what is left of the client's timeout */
    remaining: ({ context }) => remainingMs(context),
  },
  guards: {
    isRead: ({ context }) => context.input.request.op === 'get',
    quorumMet: ({ context }) => status(context.tally) === 'met',
    quorumLost: ({ context }) => status(context.tally) === 'failed',
    allAnswered: ({ context }) => allAnswered(context.tally),
  },
  actions: {
    countAck: assign({ tally: ({ context, event }) => addAck(context.tally, (event as { node: string }).node) }),
    countFailure: assign({ tally: ({ context, event }) => addFailure(context.tally, (event as { node: string }).node) }),
    recordRead: assign(({ context, event }) => {
      const e = event as Extract<ReplicaEvent, { type: 'REPLICA.READ' }>;
      const replies = new Map(context.replies).set(e.node, e.versions);
      return { replies, tally: addAck(context.tally, e.node) };
    }),
    replyRead: ({ context }) => context.input.reply(context.input.render(reconcileReplies(context.replies))),
    replyWrite: ({ context }) => {
      const r = context.input.request;
      if (r.op === 'delete') context.input.reply('{"ok":true}');
      else context.input.reply(`{"ok":true,"context":${JSON.stringify(encodeContext(fullClock(context.version!)))}}`);
    },
    replyQuorumNotMet: ({ context }) => context.input.reply(JSON.stringify(quorumError(context, 'QUORUM_NOT_MET'))),
    replyTimeout: ({ context }) => context.input.reply(JSON.stringify(quorumError(context, 'TIMEOUT'))),
    replyLocalFailure: ({ context }) =>
      context.input.reply(JSON.stringify(errorReply('UNAVAILABLE', `the coordinating node could not write locally: ${context.failure ?? 'unknown error'}`))),
  },
}).createMachine({
  id: 'coordinator',
  context: ({ input }) => {
    const needed = input.request.op === 'get' ? input.request.r : input.request.w;
    return {
      input,
      startedAt: input.monotonic(),
      tally: createTally(needed, input.replicas.length),
      replies: new Map(),
      merged: [],
    };
  },
  initial: 'prepare',
  states: {
    prepare: {
      always: [{ guard: 'isRead', target: 'reading' }, { target: 'executingLocal' }],
    },

    // --- write path: local replica first (it issues the dot), then the others ---
    executingLocal: {
      invoke: {
        src: 'coordinateLocal',
        input: ({ context }) => {
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
          };
        },
        onDone: {
          target: 'waitingRemote',
          actions: assign(({ context, event }) => ({
            version: event.output.version,
            siblingsText: event.output.siblingsText,
            tally: addAck(context.tally, context.input.self),
          })),
        },
        onError: [
          {
            guard: ({ event }) => event.error instanceof ConflictError,
            target: 'failed',
            actions: ({ context, event }) => context.input.reply(JSON.stringify(errorReply('CONFLICT', `conditional ${context.input.request.op} refused: ${(event.error as Error).message}`))),
          },
          {
            target: 'failed',
            actions: [assign({ failure: ({ event }) => (event.error as Error).message }), 'replyLocalFailure'],
          },
        ],
      },
      after: { remaining: { target: 'timedOut', actions: 'replyTimeout' } },
    },
    waitingRemote: {
      invoke: {
        src: 'replicateWrite',
        input: ({ context }) => ({
          replicas: context.input.replicas.filter((n) => n !== context.input.self),
          extras: context.input.extras,
          hints: context.input.hints,
          bucket: context.input.request.bucket,
          key: context.input.request.key,
          siblingsText: context.siblingsText!,
          timeoutMs: Math.max(1, remainingMs(context)),
        }),
      },
      always: [
        { guard: 'quorumMet', target: 'done', actions: 'replyWrite' },
        { guard: 'quorumLost', target: 'failed', actions: 'replyQuorumNotMet' },
      ],
      on: {
        'REPLICA.ACK': { actions: 'countAck' },
        'REPLICA.FAIL': { actions: 'countFailure' },
      },
      after: { remaining: { target: 'timedOut', actions: 'replyTimeout' } },
    },

    // --- read path: ask all N, answer at R, keep listening to repair the rest ---
    reading: {
      invoke: {
        src: 'readReplicas',
        input: ({ context }) => ({
          replicas: context.input.replicas,
          bucket: context.input.request.bucket,
          key: context.input.request.key,
          timeoutMs: context.input.request.timeoutMs,
        }),
      },
      on: {
        'REPLICA.READ': { actions: 'recordRead' },
        'REPLICA.FAIL': { actions: 'countFailure' },
      },
      initial: 'waitingForR',
      states: {
        waitingForR: {
          always: [
            { guard: 'quorumMet', target: 'waitingForRest', actions: 'replyRead' },
            { guard: 'quorumLost', target: '#coordinator.failed', actions: 'replyQuorumNotMet' },
          ],
          after: { remaining: { target: '#coordinator.timedOut', actions: 'replyTimeout' } },
        },
        waitingForRest: {
          always: { guard: 'allAnswered', target: '#coordinator.readRepair' },
          after: { remaining: { target: '#coordinator.readRepair' } },
        },
      },
    },
    readRepair: {
      entry: assign(({ context }) => {
        const merged = reconcileReplies(context.replies);
        return { merged, repairPlan: planReadRepair(context.replies, merged) };
      }),
      always: { guard: ({ context }) => context.repairPlan!.size === 0, target: 'done' },
      invoke: {
        src: 'repair',
        input: ({ context }) => ({ bucket: context.input.request.bucket, key: context.input.request.key, plan: context.repairPlan! }),
        onDone: 'done',
        onError: 'done',
      },
      // Repairs are best effort; a stuck replica must not keep the machine alive.
      after: { [REPAIR_TIMEOUT_MS]: 'done' },
    },

    done: { type: 'final' },
    failed: { type: 'final' },
    timedOut: { type: 'final' },
  },
});

function remainingMs(context: Context): number {
  return Math.max(0, context.startedAt + context.input.request.timeoutMs - context.input.monotonic());
}

function quorumError(context: Context, code: 'QUORUM_NOT_MET' | 'TIMEOUT'): ErrorReply {
  const { acks, needed } = context.tally;
  const what = context.input.request.op === 'get' ? 'read' : 'write';
  const message =
    code === 'TIMEOUT'
      ? `the ${what} timed out after ${context.input.request.timeoutMs} ms with ${acks} of ${needed} required replicas answering`
      : `only ${acks} of ${needed} required replicas answered the ${what}`;
  return errorReply(code, message, { acks, needed });
}

export type CoordinatorActor = ActorRefFrom<typeof coordinatorMachine>;
