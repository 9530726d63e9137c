import { assign, fromCallback, fromPromise, setup } from 'xstate';
import { notProvided } from '../not-provided.js';

export type NodeEvent = { type: 'STOP' } | { type: 'LEAVE' } | { type: 'REJOIN' };

/** Longest a node waits for its in-flight requests when stopping. */
export const STOP_TIMEOUT_MS = 15_000;
/** Wait before retrying a join whose transfer failed. */
export const JOIN_RETRY_MS = 2000;

/**
 * A node's lifecycle (docs/architecture.md, *How it works*): booting (connect Redis, find the cluster
 * by gossip) → joining (pull the ranges it gains) → serving → leaving (hand its
 * ranges over) → stopped. While online (joining, serving, leaving) the `serve` actor
 * holds the node's subscriptions; a joining node forwards client requests, since it
 * is not in the ring yet, and takes the writes routed to it as a future replica.
 */
/** The params of recordError: the error an invoked actor failed with. */
const errorOf = ({ event }: { event: { error: unknown } }) => ({ error: event.error });

export const nodeMachine = setup({
  types: {
    context: {} as { error?: string },
    events: {} as NodeEvent,
  },
  actors: {
    boot: fromPromise<void>(notProvided('node actor', 'boot')),
    serve: fromCallback<NodeEvent>(notProvided('node actor', 'serve')),
    join: fromPromise<void>(notProvided('node actor', 'join')),
    leave: fromPromise<void>(notProvided('node actor', 'leave')),
    shutdown: fromPromise<void>(notProvided('node actor', 'shutdown')),
  },
  actions: {
    recordError: assign({ error: (_, p: { error: unknown }) => (p.error instanceof Error ? p.error.message : String(p.error)) }),
  },
}).createMachine({
  id: 'node',
  context: {},
  initial: 'booting',
  on: { STOP: '.stopping' },
  states: {
    booting: {
      // No timeout: each step of boot is bounded (Redis's connect timeout, the duplicate-id check, a rebuild with progress), and STOP always ends it.
      invoke: { src: 'boot', onDone: 'online', onError: { target: 'stopping', actions: { type: 'recordError', params: errorOf } } },
    },
    online: {
      invoke: { src: 'serve' },
      initial: 'joining',
      states: {
        joining: {
          // No timeout: a join moves data for as long as the ranges take; every transfer request
          // has its own timeout and retries, and a failure goes to joinBackoff.
          invoke: { src: 'join', onDone: 'serving', onError: { target: 'joinBackoff', actions: { type: 'recordError', params: errorOf } } },
        },
        joinBackoff: {
          after: { [JOIN_RETRY_MS]: 'joining' },
        },
        serving: {
          // REJOIN: this node's entry lost its place in the ring (a gossiper in another process restarted on a wiped store).
          on: { LEAVE: 'leaving', REJOIN: 'joining' },
        },
        leaving: {
          // No timeout, as for joining: the hand-over's requests time out and retry on their own; a failed leave goes back to serving.
          invoke: { src: 'leave', onDone: '#node.stopping', onError: { target: 'serving', actions: { type: 'recordError', params: errorOf } } },
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
