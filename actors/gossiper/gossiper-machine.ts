import { assign, fromPromise, setup } from 'xstate';
import { notProvided } from '../not-provided.js';
import { currentRingMembers, futureRingMembers, inTransition, reconcile, type Member, type MemberTable } from '../../src/membership/member.js';
import { removedEntry } from '../../src/membership/removal.js';
import { choosePeers, NEW_PEER_CYCLE, type PeerCycle } from '../../src/membership/peers.js';
import { Ring } from '../../src/ring/index.js';

export interface GossiperInput {
  readonly self: Member;
  readonly seeds: readonly string[];
  readonly intervalMs: number;
  /** silence after which a member counts as down (it is then gossiped with only now and then) */
  readonly downAfterMs: number;
  /** peers contacted each round */
  readonly fanout: number;
  readonly monotonic: () => number;
  readonly random: () => number;
  readonly log: (message: string) => void;
}

export interface GossipMetrics {
  readonly rounds: number;
  readonly exchanges: number;
  readonly failedExchanges: number;
  readonly droppedMalformed: number;
  readonly droppedForeignCluster: number;
  readonly staleEntries: number;
}

export interface GossiperContext {
  readonly input: GossiperInput;
  readonly self: string;
  table: MemberTable;
  /** monotonic ms at which each member's entry last advanced in our view */
  seenAt: Readonly<Record<string, number>>;
  /** changes whenever a member's weights change: readers rebuild their rings on a new key */
  ringKey: string;
  announceAttempts: number;
  metrics: GossipMetrics;
  /** where the rounds are in their pass over the live members (choosePeers) */
  cycle: PeerCycle;
  /** the peers of the round under way, chosen as it begins */
  roundPeers: readonly string[];
}

/**
 * A peer's table, with how long ago (ms) the peer last saw each entry advance. An
 * entry learned second-hand is dated by that age, not by its arrival: otherwise a
 * member's last heartbeat, relayed for a few rounds after the member went quiet,
 * would look fresh and delay the verdict that it is down.
 */
export interface TableMessage {
  readonly members: readonly Member[];
  readonly ages?: Readonly<Record<string, number>>;
}

export type GossiperEvent =
  | ({ type: 'GOSSIP.RECEIVED' } & TableMessage)
  | { type: 'GOSSIP.DROPPED'; reason: 'malformed' | 'foreignCluster' }
  | { type: 'SET_WEIGHTS'; weight: number; ringWeight: number }
  /** an operator removed a member that is down for good (see src/membership/removal.ts) */
  | { type: 'REMOVE_MEMBER'; id: string };

/** Result of one exchange round: the tables the reachable peers sent back. */
export interface ExchangeOutput {
  readonly replies: readonly TableMessage[];
  readonly failed: number;
}

/** Longest wait between attempts to reach a seed. */
export const MAX_ANNOUNCE_BACKOFF_MS = 5000;

function ringsOf(table: MemberTable): Pick<GossiperContext, 'ringKey'> {
  const key = Object.values(table)
    .map((m) => `${m.id}:${m.ringWeight}:${m.weight}`)
    .sort()
    .join(',');
  return { ringKey: key };
}

/** What this node tells a peer: its table, each entry dated by how long ago it last advanced here. */
export function tableMessage(context: GossiperContext): TableMessage {
  const now = context.input.monotonic();
  const ages: Record<string, number> = {};
  for (const id in context.table) ages[id] = id === context.self ? 0 : Math.max(0, Math.round(now - (context.seenAt[id] ?? now)));
  return { members: Object.values(context.table), ages };
}

/** The next round's peers, and where that leaves the pass over the live members. */
function nextRound(context: GossiperContext): { roundPeers: string[]; cycle: PeerCycle } {
  const now = context.input.monotonic();
  const live: string[] = [];
  const down: string[] = [];
  for (const m of Object.values(context.table)) {
    if (m.weight === 0 && m.ringWeight === 0) continue; // left for good
    if (now - (context.seenAt[m.id] ?? -Infinity) >= context.input.downAfterMs) down.push(m.id);
    else live.push(m.id);
  }
  const { peers, cycle } = choosePeers(context.cycle, live, down, context.self, context.input.fanout, context.input.random);
  return { roundPeers: peers, cycle };
}

/** The rings a table describes: now, and once the transitions in progress complete (null if none). */
export function ringsFor(table: MemberTable): { ring: Ring; futureRing: Ring | null } {
  return { ring: new Ring(currentRingMembers(table)), futureRing: inTransition(table) ? new Ring(futureRingMembers(table)) : null };
}

function merge(context: GossiperContext, { members, ages = {} }: TableMessage): Partial<GossiperContext> {
  const { table, advanced } = reconcile(context.table, members, context.self);
  if (advanced.length === 0) {
    const stale = members.filter((m) => m.id !== context.self && context.table[m.id] !== undefined && m.generation < context.table[m.id].generation).length;
    return stale ? { metrics: { ...context.metrics, staleEntries: context.metrics.staleEntries + stale } } : {};
  }
  const now = context.input.monotonic();
  const seenAt = { ...context.seenAt };
  for (const id of advanced) seenAt[id] = Math.max(seenAt[id] ?? -Infinity, now - Math.max(0, ages[id] ?? 0));
  const next = ringsOf(table);
  return next.ringKey === context.ringKey ? { table, seenAt } : { table, seenAt, ...next };
}

function bumpSelf(context: GossiperContext, change: Partial<Member> = {}): Partial<GossiperContext> {
  const me = context.table[context.self];
  const table = { ...context.table, [context.self]: { ...me, ...change, heartbeat: me.heartbeat + 1 } };
  const next = ringsOf(table);
  return next.ringKey === context.ringKey ? { table } : { table, ...next };
}

/**
 * Membership by gossip. First it announces itself to its seeds (retrying with
 * backoff while none answers); then every interval it advances its heartbeat and
 * swaps tables, push-pull, with peers taken in turn from a random pass over the live
 * members (SWIM's round-robin, src/membership/peers.ts), merging with the pure `reconcile`.
 * Inbound exchanges arrive as GOSSIP.RECEIVED events from the node's subscription.
 */
/** The params of the guards and actions that read an exchange's result. */
const outputOf = ({ event }: { event: { output: ExchangeOutput } }) => ({ output: event.output });

export const gossiperMachine = setup({
  types: {
    context: {} as GossiperContext,
    input: {} as GossiperInput,
    events: {} as GossiperEvent,
  },
  actors: {
    announce: fromPromise<ExchangeOutput, { seeds: readonly string[] }>(notProvided('gossiper actor', 'announce')),
    exchange: fromPromise<ExchangeOutput, { peers: readonly string[] }>(notProvided('gossiper actor', 'exchange')),
  },
  delays: {
    interval: ({ context }) => context.input.intervalMs,
    backoff: ({ context }) => Math.min(MAX_ANNOUNCE_BACKOFF_MS, 250 * 2 ** Math.min(context.announceAttempts, 10)),
  },
  guards: {
    hasSeeds: ({ context }) => context.input.seeds.some((s) => s !== context.self),
    anySeedAnswered: (_, p: { output: ExchangeOutput }) => p.output.replies.length > 0,
  },
  actions: {
    mergeReceived: assign(({ context }, p: TableMessage) => merge(context, p)),
    mergeReplies: assign(({ context }, { output: out }: { output: ExchangeOutput }) => {
      let ctx: GossiperContext = context;
      for (const reply of out.replies) ctx = { ...ctx, ...merge(ctx, reply) };
      return {
        ...ctx,
        metrics: { ...ctx.metrics, exchanges: ctx.metrics.exchanges + out.replies.length, failedExchanges: ctx.metrics.failedExchanges + out.failed },
      };
    }),
    countDropped: assign({
      metrics: ({ context }, p: { reason: 'malformed' | 'foreignCluster' }) => {
        const m = context.metrics;
        return p.reason === 'malformed' ? { ...m, droppedMalformed: m.droppedMalformed + 1 } : { ...m, droppedForeignCluster: m.droppedForeignCluster + 1 };
      },
    }),
    setWeights: assign(({ context }, p: { weight: number; ringWeight: number }) => bumpSelf(context, p)),
    removeMember: assign(({ context }, p: { id: string }) => {
      const m = context.table[p.id];
      if (m === undefined || p.id === context.self) return {};
      const table = { ...context.table, [p.id]: removedEntry(m) };
      return { table, ...ringsOf(table) };
    }),
    beat: assign(({ context }) => ({ ...bumpSelf(context), ...nextRound(context), metrics: { ...context.metrics, rounds: context.metrics.rounds + 1 } })),
    noteAnnounceFailure: assign(({ context }) => {
      context.input.log(`no seed (${context.input.seeds.join(', ')}) answered; retrying`);
      return { announceAttempts: context.announceAttempts + 1 };
    }),
  },
}).createMachine({
  id: 'gossiper',
  context: ({ input }) => {
    const table = { [input.self.id]: input.self };
    return {
      input,
      self: input.self.id,
      table,
      seenAt: { [input.self.id]: input.monotonic() },
      ...ringsOf(table),
      announceAttempts: 0,
      metrics: { rounds: 0, exchanges: 0, failedExchanges: 0, droppedMalformed: 0, droppedForeignCluster: 0, staleEntries: 0 },
      cycle: NEW_PEER_CYCLE,
      roundPeers: [],
    };
  },
  on: {
    'GOSSIP.RECEIVED': { actions: { type: 'mergeReceived', params: ({ event }) => event } },
    'GOSSIP.DROPPED': { actions: { type: 'countDropped', params: ({ event }) => ({ reason: event.reason }) } },
    SET_WEIGHTS: { actions: { type: 'setWeights', params: ({ event }) => ({ weight: event.weight, ringWeight: event.ringWeight }) } },
    REMOVE_MEMBER: { actions: { type: 'removeMember', params: ({ event }) => ({ id: event.id }) } },
  },
  initial: 'starting',
  states: {
    starting: {
      always: [{ guard: 'hasSeeds', target: 'announcing' }, { target: 'running' }],
    },
    announcing: {
      // No timeout here: announce is an exchange whose requests carry their own timeout (two gossip intervals).
      invoke: {
        src: 'announce',
        input: ({ context }) => ({ seeds: context.input.seeds.filter((s) => s !== context.self) }),
        onDone: [
          { guard: { type: 'anySeedAnswered', params: outputOf }, target: 'running', actions: { type: 'mergeReplies', params: outputOf } },
          { target: 'backingOff', actions: 'noteAnnounceFailure' },
        ],
        onError: { target: 'backingOff', actions: 'noteAnnounceFailure' },
      },
    },
    backingOff: {
      after: { backoff: 'announcing' },
    },
    running: {
      initial: 'waiting',
      states: {
        waiting: {
          after: { interval: 'exchanging' },
        },
        exchanging: {
          // beat chooses the round's peers; the invocation, started after it, reads them.
          entry: 'beat',
          invoke: {
            src: 'exchange',
            input: ({ context }) => ({ peers: context.roundPeers }),
            onDone: { target: 'waiting', actions: { type: 'mergeReplies', params: outputOf } },
            onError: 'waiting',
          },
          // A round never outlasts its interval: a peer that does not answer in time is
          // given up on, and the next round starts at once.
          after: { interval: { target: 'exchanging', reenter: true } },
        },
      },
    },
  },
});
