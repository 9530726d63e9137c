import { assign, fromCallback, fromPromise, setup } from 'xstate';

export type NodeEvent = { type: 'STOP' } | { type: 'LEAVE' } | { type: 'REJOIN' };

const notProvided = (name: string) => () => {
  throw new Error(`node actor "${name}" was not provided`);
};

/** Longest a node waits for its in-flight requests when stopping. */
export const STOP_TIMEOUT_MS = 15_000;
/** Wait before retrying a join whose transfer failed. */
export const JOIN_RETRY_MS = 2000;

/**
 * A node's lifecycle (README, *How it works*): booting (connect Redis, find the cluster
 * by gossip) → joining (pull the ranges it gains) → serving → leaving (hand its
 * ranges over) → stopped. While online (joining, serving, leaving) the `serve` actor
 * holds the node's subscriptions; a joining node forwards client requests, since it
 * is not in the ring yet, and takes the writes routed to it as a future replica.
 */
export const nodeMachine = setup({
  types: {
    context: {} as { error?: string },
    events: {} as NodeEvent,
  },
  actors: {
    boot: fromPromise<void>(notProvided('boot')),
    serve: fromCallback<NodeEvent>(notProvided('serve')),
    join: fromPromise<void>(notProvided('join')),
    leave: fromPromise<void>(notProvided('leave')),
    shutdown: fromPromise<void>(notProvided('shutdown')),
  },
  actions: {
    recordError: assign({ error: ({ event }) => ((event as unknown as { error: Error }).error ?? new Error('unknown')).message }),
  },
}).createMachine({
  id: 'node',
  context: {},
  initial: 'booting',
  on: { STOP: '.stopping' },
  states: {
    booting: {
      invoke: { src: 'boot', onDone: 'online', onError: { target: 'stopping', actions: 'recordError' } },
    },
    online: {
      invoke: { src: 'serve' },
      initial: 'joining',
      states: {
        joining: {
          invoke: { src: 'join', onDone: 'serving', onError: { target: 'joinBackoff', actions: 'recordError' } },
        },
        joinBackoff: {
          after: { [JOIN_RETRY_MS]: 'joining' },
        },
        serving: {
          // REJOIN: this node's entry lost its place in the ring (a gossiper in another process restarted on a wiped store).
          on: { LEAVE: 'leaving', REJOIN: 'joining' },
        },
        leaving: {
          invoke: { src: 'leave', onDone: '#node.stopping', onError: { target: 'serving', actions: 'recordError' } },
        },
      },
    },
    stopping: {
      on: { STOP: {} },
      invoke: { src: 'shutdown', onDone: 'stopped', onError: 'stopped' },
      after: { [STOP_TIMEOUT_MS + 5000]: 'stopped' },
    },
    stopped: { type: 'final' },
  },
});

/** The node's state as one word: booting, joining, serving, leaving, stopping or stopped. */
export function stateName(value: unknown): string {
  if (typeof value === 'string') return value;
  const inner = (value as Record<string, unknown>)['online'];
  return inner === 'joinBackoff' ? 'joining' : String(inner);
}
