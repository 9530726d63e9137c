import { fromPromise, setup } from 'xstate';
import { notProvided } from '../not-provided.js';

/** How often a node looks for hints it can deliver. */
export const HINT_INTERVAL_MS = 1000;
/** The longest one delivery message waits for its owner's answer. */
export const DELIVERY_TIMEOUT_MS = 5000;

/**
 * Delivery of hints, as a machine: idle → (every interval) delivering → idle, with a
 * timeout on delivering so a stuck owner cannot stall the loop. `deliver` is the
 * runner's (HintedHandoff): a pass over every owner that is back.
 */
export const hintedHandoffMachine = setup({
  actors: { deliver: fromPromise<number>(notProvided('hinted-handoff actor', 'deliver')) },
}).createMachine({
  id: 'hintedHandoff',
  initial: 'idle',
  states: {
    idle: { after: { [HINT_INTERVAL_MS]: 'delivering' } },
    delivering: {
      invoke: { src: 'deliver', onDone: 'idle', onError: 'idle' },
      after: { [DELIVERY_TIMEOUT_MS * 2]: 'idle' },
    },
  },
});
