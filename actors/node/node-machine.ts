import { assign, fromCallback, fromPromise, setup } from 'xstate';

export type NodeEvent = { type: 'STOP' };

const notProvided = (name: string) => () => {
  throw new Error(`node actor "${name}" was not provided`);
};

/** Longest a node waits for its in-flight requests when stopping. */
export const STOP_TIMEOUT_MS = 15_000;

/**
 * A node's lifecycle. Booting connects its storage; serving holds the subscriptions
 * (the `serve` actor subscribes on entry and unsubscribes on exit); stopping lets
 * in-flight requests finish before the storage and the connection close.
 * Joining and leaving arrive with gossip membership.
 */
export const nodeMachine = setup({
  types: {
    context: {} as { error?: string },
    events: {} as NodeEvent,
  },
  actors: {
    boot: fromPromise<void>(notProvided('boot')),
    serve: fromCallback<NodeEvent>(notProvided('serve')),
    shutdown: fromPromise<void>(notProvided('shutdown')),
  },
}).createMachine({
  id: 'node',
  context: {},
  initial: 'booting',
  states: {
    booting: {
      invoke: {
        src: 'boot',
        onDone: 'serving',
        onError: { target: 'stopping', actions: assign({ error: ({ event }) => (event.error as Error).message }) },
      },
      on: { STOP: 'stopping' },
    },
    serving: {
      invoke: { src: 'serve' },
      on: { STOP: 'stopping' },
    },
    stopping: {
      invoke: { src: 'shutdown', onDone: 'stopped', onError: 'stopped' },
      after: { [STOP_TIMEOUT_MS + 5000]: 'stopped' },
    },
    stopped: { type: 'final' },
  },
});
