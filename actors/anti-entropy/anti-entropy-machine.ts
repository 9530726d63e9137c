import { assign, fromPromise, setup } from 'xstate';
import { present } from '../../src/invariant.js';
import { notProvided } from '../not-provided.js';

/** Longest a tree compare may take (five round trips, each with its own request timeout). */
export const COMPARE_TIMEOUT_MS = 15_000;
/** Longest one exchange repairs for; what is left is found again by the next exchange. */
export const AE_REPAIR_TIMEOUT_MS = 60_000;

/** One exchange being run: which peer, and whatever the runner needs to carry between steps. */
export interface ExchangePlan {
  readonly peer: string;
  /** ms to wait before choosing the next exchange (the interval spread over the ranges) */
  readonly nextInMs: number;
}

export interface AntiEntropyContext {
  readonly tickMs: number;
  readonly plan: ExchangePlan | null;
  /** leaves found to differ by the compare */
  readonly leaves: readonly number[];
}

/**
 * Anti-entropy as a machine: every tick it chooses a range (the keys this node shares
 * with one peer), compares trees with that peer and, when leaves differ, repairs the
 * keys under them, then waits again. Every waiting state has a timeout; a timed-out
 * step is stopped (its AbortSignal fires) and the next exchange picks up from there.
 * The runner (anti-entropy.ts) provides the three steps. PEER_BACK (a peer this node
 * saw down is up again) ends the wait at once: the writes it missed are found now
 * rather than up to a tick later.
 */
export const antiEntropyMachine = setup({
  types: {
    context: {} as AntiEntropyContext,
    input: {} as { intervalMs: number },
    events: {} as { type: 'PEER_BACK' },
  },
  actors: {
    choose: fromPromise<ExchangePlan | null>(notProvided('anti-entropy actor', 'choose')),
    compare: fromPromise<number[], ExchangePlan>(notProvided('anti-entropy actor', 'compare')),
    repair: fromPromise<void, { plan: ExchangePlan; leaves: readonly number[] }>(notProvided('anti-entropy actor', 'repair')),
  },
  delays: {
    tick: ({ context }) => context.tickMs,
    compareTimeout: COMPARE_TIMEOUT_MS,
    repairTimeout: AE_REPAIR_TIMEOUT_MS,
  },
}).createMachine({
  id: 'antiEntropy',
  initial: 'idle',
  context: ({ input }) => ({ tickMs: input.intervalMs, plan: null, leaves: [] }),
  states: {
    idle: { after: { tick: 'choosingExchange' }, on: { PEER_BACK: 'choosingExchange' } },
    choosingExchange: {
      invoke: {
        src: 'choose',
        onDone: [
          { guard: ({ event }) => event.output === null, target: 'idle' },
          {
            target: 'comparing',
            actions: assign({ plan: ({ event }) => event.output, tickMs: ({ event }) => present(event.output, 'a chosen exchange').nextInMs }),
          },
        ],
        onError: 'idle',
      },
      after: { compareTimeout: 'idle' },
    },
    comparing: {
      invoke: {
        src: 'compare',
        input: ({ context }) => present(context.plan, 'comparing has a plan'),
        onDone: [
          { guard: ({ event }) => event.output.length === 0, target: 'idle' },
          { target: 'repairing', actions: assign({ leaves: ({ event }) => event.output }) },
        ],
        onError: 'idle',
      },
      after: { compareTimeout: 'idle' },
    },
    repairing: {
      invoke: {
        src: 'repair',
        input: ({ context }) => ({ plan: present(context.plan, 'repairing has a plan'), leaves: context.leaves }),
        onDone: 'idle',
        onError: 'idle',
      },
      after: { repairTimeout: 'idle' },
      exit: assign({ leaves: [] }),
    },
  },
});
