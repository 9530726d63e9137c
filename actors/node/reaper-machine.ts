import { fromPromise, setup } from 'xstate';
import { notProvided } from '../not-provided.js';

/** How often a node reclaims expired values. */
export const REAP_INTERVAL_MS = 1000;
/** Keys one pass reaps at most: the bound on the reaper's work per second. */
export const REAP_KEYS_PER_PASS = 1000;
/** The longest one pass may take before the loop moves on. */
const REAP_TIMEOUT_MS = 10_000;

/**
 * The reaper, as a machine: idle → (every interval) reaping → idle, with a timeout on
 * reaping so a stuck Redis cannot stall the loop. `reap` is the runner's (Reaper).
 */
export const reaperMachine = setup({
  actors: { reap: fromPromise<number>(notProvided('reaper actor', 'reap')) },
}).createMachine({
  id: 'reaper',
  initial: 'idle',
  states: {
    idle: { after: { [REAP_INTERVAL_MS]: 'reaping' } },
    reaping: {
      invoke: { src: 'reap', onDone: 'idle', onError: 'idle' },
      after: { [REAP_TIMEOUT_MS]: 'idle' },
    },
  },
});
