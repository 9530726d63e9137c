import { expect } from 'chai';
import { createActor, fromPromise, SimulatedClock, type ActorRefFrom } from 'xstate';
import { gossiperMachine, tableMessage, type ExchangeOutput, type TableMessage } from '../../actors/gossiper/gossiper-machine.js';
import { liveness, type DetectorTiming } from '../../src/membership/failure-detector.js';
import { seededRandom } from '../helpers/prng.js';

/**
 * Gossip membership in a deterministic simulation: every gossiper machine of the
 * cluster in one process, a simulated clock, a seeded random source, and a network
 * that can cut nodes off. A failing run prints its seed.
 */
const INTERVAL_MS = 1000;
const TIMING: DetectorTiming = { suspectAfterMs: 3000, downAfterMs: 5000 };

class GossipSim {
  readonly clock = new SimulatedClock();
  readonly actors = new Map<string, ActorRefFrom<typeof gossiperMachine>>();
  /** nodes cut off from everyone */
  readonly isolated = new Set<string>();
  private readonly random: () => number;

  constructor(readonly seed: number) {
    this.random = seededRandom(seed);
  }

  private exchangeWith(from: string, peers: readonly string[]): Promise<ExchangeOutput> {
    const replies: TableMessage[] = [];
    const mine = tableMessage(this.actors.get(from)!.getSnapshot().context);
    let failed = 0;
    for (const p of peers) {
      const peer = this.actors.get(p);
      if (!peer || this.isolated.has(p) || this.isolated.has(from)) {
        failed++;
        continue;
      }
      peer.send({ type: 'GOSSIP.RECEIVED', ...mine });
      replies.push(tableMessage(peer.getSnapshot().context));
    }
    return Promise.resolve({ replies, failed });
  }

  start(id: string, seeds: string[], generation = 1): void {
    const machine = gossiperMachine.provide({
      actors: {
        announce: fromPromise(({ input }) => this.exchangeWith(id, input.seeds)),
        exchange: fromPromise(({ input }) => this.exchangeWith(id, input.peers)),
      },
    });
    const actor = createActor(machine, {
      clock: this.clock,
      input: {
        self: { id, generation, heartbeat: 0, weight: 1, ringWeight: 1 },
        seeds,
        intervalMs: INTERVAL_MS,
        downAfterMs: TIMING.downAfterMs,
        fanout: 1,
        monotonic: () => this.clock.now(),
        random: this.random,
        log: () => {},
      },
    });
    this.actors.set(id, actor);
    actor.start();
  }

  stop(id: string): void {
    this.actors.get(id)?.stop();
    this.actors.delete(id);
  }

  /** Advance one gossip interval and let every exchange of the round complete. */
  async round(): Promise<void> {
    this.clock.increment(INTERVAL_MS);
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  }

  table(id: string) {
    return this.actors.get(id)!.getSnapshot().context;
  }

  /** How `observer` judges `subject` right now. */
  liveness(observer: string, subject: string) {
    const at = this.table(observer).seenAt[subject];
    return at === undefined ? 'unknown' : liveness(at, this.clock.now(), TIMING);
  }

  converged(count: number): boolean {
    return [...this.actors.keys()].every((id) => Object.keys(this.table(id).table).length === count);
  }
}

async function roundsToConverge(nodes: number, seed: number): Promise<number> {
  const sim = new GossipSim(seed);
  const ids = Array.from({ length: nodes }, (_, i) => `n${i}`);
  for (const [i, id] of ids.entries()) sim.start(id, i === 0 ? [] : ['n0']);
  await sim.round();
  let rounds = 1;
  while (!sim.converged(nodes)) {
    if (rounds > 100) throw new Error(`seed ${seed}: ${nodes} nodes did not converge in 100 rounds`);
    await sim.round();
    rounds++;
  }
  for (const id of ids) sim.stop(id);
  return rounds;
}

/** Heartbeats of one node reach every other: the time for a rumour to spread. */
async function roundsToSpread(nodes: number, seed: number): Promise<number> {
  const sim = new GossipSim(seed);
  const ids = Array.from({ length: nodes }, (_, i) => `n${i}`);
  for (const [i, id] of ids.entries()) sim.start(id, i === 0 ? [] : ['n0']);
  while (!sim.converged(nodes)) await sim.round();
  // A fresh change at n7: count rounds until everyone has seen n7 at its new generation-0 heartbeat or later.
  const target = sim.table('n7').table['n7']!.heartbeat + 1;
  let rounds = 0;
  while (!ids.every((id) => sim.table(id).table['n7']!.heartbeat >= target)) {
    await sim.round();
    rounds++;
    if (rounds > 100) throw new Error(`seed ${seed}: rumour did not spread`);
  }
  for (const id of ids) sim.stop(id);
  return rounds;
}

describe('gossip (simulation)', function () {
  this.timeout(60_000);
  const seeds = [1, 2, 3, 4, 5];
  const partitionSeeds = Array.from({ length: 20 }, (_, i) => 100 + i);

  it('32 nodes joining through one seed converge in O(log n) rounds', async () => {
    for (const seed of seeds) {
      const rounds = await roundsToConverge(32, seed);
      // log2(32) = 5: push-pull with one peer a round spreads in about log2(n) + ln(n) rounds.
      expect(rounds, `seed ${seed}`).to.be.at.most(3 * Math.log2(32));
    }
  });

  it('spreads a change in rounds that grow with log n, not n', async () => {
    const median = async (n: number) => {
      const r = await Promise.all(seeds.map((s) => roundsToSpread(n, s)));
      return r.sort((a, b) => a - b)[2]!;
    };
    const [r8, r64] = [await median(8), await median(64)];
    // 8x the nodes: a linear spread would take ~8x the rounds; logarithmic adds ~log2(8) = 3 (+ noise).
    expect(r64, `8 nodes: ${r8} rounds, 64 nodes: ${r64} rounds`).to.be.at.most(r8 + 6);
    expect(r64).to.be.at.most(2.5 * Math.log2(64));
  });

  for (const seed of partitionSeeds) {
    it(`marks a cut-off node down within downAfterMs + 2 rounds, and up again after it heals (seed ${seed})`, async () => {
      const sim = new GossipSim(seed);
      const ids = Array.from({ length: 8 }, (_, i) => `n${i}`);
      for (const [i, id] of ids.entries()) sim.start(id, i === 0 ? [] : ['n0']);
      while (!sim.converged(8)) await sim.round();
      for (let i = 0; i < 5; i++) await sim.round();
      const others = ids.filter((id) => id !== 'n3');
      // Suspicion can flicker with one peer a round; nobody holds n3 down.
      expect(others.filter((o) => sim.liveness(o, 'n3') === 'down')).to.deep.equal([]);

      sim.isolated.add('n3');
      const rounds = TIMING.downAfterMs / INTERVAL_MS + 2;
      for (let i = 0; i < rounds; i++) await sim.round();
      expect(
        others.map((o) => sim.liveness(o, 'n3')),
        `seed ${seed}`,
      ).to.deep.equal(others.map(() => 'down'));

      sim.isolated.delete('n3');
      let healed = 0;
      while (!others.every((o) => sim.liveness(o, 'n3') !== 'down')) {
        await sim.round();
        if (++healed > 12) throw new Error(`seed ${seed}: n3 still down somewhere after 12 rounds`);
      }
      for (const id of ids) sim.stop(id);
    });
  }

  it('takes a restarted node (new generation, heartbeat back at 0) as itself, not as stale news', async () => {
    const sim = new GossipSim(42);
    const ids = Array.from({ length: 6 }, (_, i) => `n${i}`);
    for (const [i, id] of ids.entries()) sim.start(id, i === 0 ? [] : ['n0'], 1);
    while (!sim.converged(6)) await sim.round();
    for (let i = 0; i < 10; i++) await sim.round();
    const oldHeartbeat = sim.table('n0').table['n2']!.heartbeat;
    expect(oldHeartbeat).to.be.greaterThan(5);

    sim.stop('n2');
    sim.start('n2', ['n0'], 2);
    let rounds = 0;
    while (!ids.every((id) => sim.table(id).table['n2']!.generation === 2)) {
      await sim.round();
      if (++rounds > 20) throw new Error('restarted n2 not adopted');
    }
    // Its heartbeat restarted below the old one, and everyone still counts it alive.
    expect(sim.table('n0').table['n2']!.heartbeat).to.be.below(oldHeartbeat);
    expect(ids.filter((id) => id !== 'n2' && sim.liveness(id, 'n2') === 'down')).to.deep.equal([]);
    // An old-generation copy arriving late changes nothing and is counted as stale.
    sim.actors.get('n0')!.send({ type: 'GOSSIP.RECEIVED', members: [{ id: 'n2', generation: 1, heartbeat: oldHeartbeat + 100, weight: 1, ringWeight: 1 }] });
    expect(sim.table('n0').table['n2']!.generation).to.equal(2);
    expect(sim.table('n0').metrics.staleEntries).to.be.greaterThan(0);
    for (const id of ids) sim.stop(id);
  });
});
