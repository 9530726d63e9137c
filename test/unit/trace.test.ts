import 'reflect-metadata';
import { expect } from 'chai';
import { createActor, fromPromise, SimulatedClock } from 'xstate';
import { nodeConfig } from '../../src/config.js';
import { Inspection } from '../../src/inspect/inspection.js';
import {
  Budget,
  eventText,
  isTrace,
  MAX_RUN_STEPS,
  MAX_TRACE_MESSAGES_PER_SECOND,
  MAX_TRACED_KEY_CHARS,
  outcomeOf,
  RunRecorder,
  stateText,
  TransitionTracker,
  type RunTrace,
  type TransitionTrace,
} from '../../src/inspect/trace.js';
import type { Clock } from '../../src/clock/clock.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { decodeJson } from '../../src/transport/transport.js';
import { HINT_INTERVAL_MS, hintedHandoffMachine } from '../../actors/node/hinted-handoff-machine.js';

/** A clock that moves only when told to. */
function manualClock(): Clock & { advance(ms: number): void } {
  let t = 1_000_000;
  return { now: () => t, monotonic: () => t, setTimeout: () => null, clearTimeout: () => {}, advance: (ms) => (t += ms) };
}

describe('trace sampling and bounds (pure)', () => {
  it('a budget grants its rate per second and no more, saving at most one second', () => {
    const b = new Budget(5);
    let granted = 0;
    for (let i = 0; i < 100; i++) if (b.take(0)) granted++;
    expect(granted).to.equal(5);
    expect(b.refused).to.equal(95);
    // Ten idle seconds still save only one second's worth.
    let later = 0;
    for (let i = 0; i < 100; i++) if (b.take(10_000)) later++;
    expect(later).to.equal(5);
    // Half a second refills half the rate.
    let half = 0;
    for (let i = 0; i < 100; i++) if (b.take(10_500)) half++;
    expect(half).to.equal(2);
  });

  it('a zero budget grants nothing; a negative one is refused', () => {
    const b = new Budget(0);
    expect([b.take(0), b.take(5000)]).to.deep.equal([false, false]);
    expect(() => new Budget(-1)).to.throw(/rate/);
  });

  it('names states and events as a person reads them', () => {
    expect(stateText('idle')).to.equal('idle');
    expect(stateText({ online: 'serving' })).to.equal('online.serving');
    expect(stateText({ reading: { waitingForR: {} } })).to.equal('reading.waitingForR');
    expect(stateText({ a: 'x', b: 'y' })).to.equal('a.x, b.y');
    expect(eventText('xstate.done.actor.0.node.booting')).to.equal('done');
    expect(eventText('xstate.error.actor.0.node.booting')).to.equal('error');
    expect(eventText('xstate.after.1000.hintedHandoff.idle')).to.equal('after 1000 ms');
    expect(eventText('xstate.after.tick.antiEntropy.idle')).to.equal('after tick');
    expect(eventText('LEAVE')).to.equal('LEAVE');
  });

  it('a tracker reports state changes only', () => {
    const t = new TransitionTracker('n1', 'gossiper');
    const first = t.next({ running: 'waiting' }, 'xstate.init', 1);
    expect(first).to.include({ from: null, to: 'running.waiting', event: 'init', node: 'n1', actor: 'gossiper' });
    expect(t.next({ running: 'waiting' }, 'GOSSIP.RECEIVED', 2)).to.equal(null);
    expect(t.next({ running: 'exchanging' }, 'xstate.after.interval.gossiper.running.waiting', 3)).to.include({
      from: 'running.waiting',
      to: 'running.exchanging',
      event: 'after interval',
    });
    expect(t.current).to.equal('running.exchanging');
  });

  it('a run records its phases and replica answers, at most MAX_RUN_STEPS, and cuts long keys', () => {
    const r = new RunRecorder({ node: 'n1', requestId: 'n1-1', at: 0, op: 'put', bucket: 'b', key: 'k'.repeat(500), replicas: ['n1', 'n2', 'n3'] }, 100);
    r.snapshot('executingLocal', { type: 'xstate.init' }, 100.5);
    r.snapshot('waitingRemote', { type: 'xstate.done.actor.x' }, 102);
    r.snapshot('waitingRemote', { type: 'REPLICA.FAIL', node: 'n3' }, 103);
    r.replied('ok', 104);
    r.snapshot('done', { type: 'REPLICA.ACK', node: 'n2' }, 104);
    const trace = r.finish(105);
    expect(trace.steps).to.deep.equal([
      { atMs: 0.5, kind: 'phase', name: 'executingLocal' },
      { atMs: 2, kind: 'phase', name: 'waitingRemote' },
      { atMs: 3, kind: 'fail', name: 'n3' },
      { atMs: 4, kind: 'ack', name: 'n2' },
      { atMs: 4, kind: 'phase', name: 'done' },
    ]);
    expect(trace).to.include({ outcome: 'ok', replyMs: 4, totalMs: 5, truncated: 0 });
    expect(trace.key).to.have.length(MAX_TRACED_KEY_CHARS + 1);

    const long = new RunRecorder({ node: 'n1', requestId: 'n1-2', at: 0, op: 'get', bucket: 'b', key: 'k', replicas: [] }, 0);
    for (let i = 0; i < 100; i++) long.snapshot('reading', { type: 'REPLICA.READ', node: `n${i}` }, i);
    const cut = long.finish(100);
    expect(cut.steps).to.have.length(MAX_RUN_STEPS);
    expect(cut.truncated).to.equal(100 + 1 - MAX_RUN_STEPS);
    expect(cut.outcome).to.equal('INTERNAL'); // it never replied
  });

  it('takes the traces nodes publish, and refuses anything malformed that a browser would draw', () => {
    const r = new RunRecorder({ node: 'n1', requestId: 'n1-1', at: 5, op: 'get', bucket: 'b', key: 'k', replicas: ['n1', 'n2'] }, 0);
    r.snapshot('reading', { type: 'REPLICA.READ', node: 'n2' }, 1);
    r.replied('ok', 2);
    const run = r.finish(3);
    const transition = new TransitionTracker('n1', 'node').next('booting', 'xstate.init', 1)!;
    expect(isTrace(run)).to.equal(true);
    expect(isTrace(transition)).to.equal(true);
    const bad: unknown[] = [
      null,
      'run',
      { ...run, replicas: 5 },
      { ...run, replicas: [{ toString: 1 }] },
      { ...run, steps: [{ atMs: '0;background:red', kind: 'phase', name: 'x' }] },
      { ...run, steps: [{ atMs: 1, kind: 'explode', name: 'x' }] },
      { ...run, steps: Array(MAX_RUN_STEPS + 1).fill(run.steps[0]) },
      { ...run, key: 'k'.repeat(10_000) },
      { ...run, totalMs: Infinity },
      { ...run, actor: 'gossiper' },
      { ...transition, actor: 'coordinator' },
      { ...transition, to: 7 },
      { ...transition, node: 'n'.repeat(65) },
    ];
    for (const b of bad) expect(isTrace(b), JSON.stringify(b)?.slice(0, 80)).to.equal(false);
  });

  it("reads a reply's outcome without parsing it", () => {
    expect(outcomeOf('{"ok":true,"context":"x"}')).to.equal('ok');
    expect(outcomeOf('{"ok":false,"error":{"code":"QUORUM_NOT_MET","message":"m","acks":1}}')).to.equal('QUORUM_NOT_MET');
    expect(outcomeOf(new TextEncoder().encode('{"ok":false,"error":{"code":"TIMEOUT","message":"t"}}'))).to.equal('TIMEOUT');
    expect(outcomeOf(new TextEncoder().encode('{"ok":true,"found":false}'))).to.equal('ok');
    expect(outcomeOf(new Uint8Array(0))).to.equal('other');
    expect(outcomeOf('{"ok":false,"error":{"code":"SOMETHING_NEW"}}')).to.equal('other');
    expect(outcomeOf('garbage')).to.equal('other');
  });
});

describe('inspection service (in memory)', () => {
  const config = (over: object) => nodeConfig({ nodeId: 'n1', natsUrl: 'memory', redisUrl: 'memory', ...over });

  it('hands out no observers and samples nothing when off', () => {
    const net = new MemoryNetwork();
    const insp = new Inspection(config({}), net.transport(), manualClock());
    expect(insp.enabled).to.equal(false);
    expect(insp.observer('node')).to.equal(undefined);
    expect(insp.sampleRun({ op: 'get', bucket: 'b', key: 'k' }, ['n1'], 1)).to.equal(null);
  });

  it('samples at most --inspect-runs-per-second coordinator runs, and publishes each on the coordinator trace subject', async () => {
    const net = new MemoryNetwork();
    const clock = manualClock();
    const insp = new Inspection(config({ inspect: true, inspectRunsPerSecond: 3 }), net.transport(), clock);
    const seen: RunTrace[] = [];
    const watcher = net.transport();
    watcher.subscribe('dynamo.trace.n1.coordinator', (m) => seen.push(decodeJson<RunTrace>(m.data)));
    const sampled = Array.from({ length: 50 }, (_, i) => insp.sampleRun({ op: 'put', bucket: 'b', key: `k${i}` }, ['n1', 'n2'], i)).filter((r) => r !== null);
    expect(sampled).to.have.length(3);
    for (const run of sampled) {
      run!.replied('{"ok":true}');
      run!.finish();
      run!.finish(); // once only
    }
    await watcher.flush();
    expect(seen.map((r) => r.requestId)).to.deep.equal(['n1-0', 'n1-1', 'n1-2']);
    expect(insp.dropped.runsNotSampled).to.equal(47);
    clock.advance(1000);
    expect(insp.sampleRun({ op: 'get', bucket: 'b', key: 'k' }, ['n1'], 99)).to.not.equal(null);
  });

  it(`publishes at most ${MAX_TRACE_MESSAGES_PER_SECOND} trace messages a second, counting the rest`, async () => {
    const net = new MemoryNetwork();
    const insp = new Inspection(config({ inspect: true }), net.transport(), manualClock());
    let received = 0;
    const watcher = net.transport();
    watcher.subscribe('dynamo.trace.>', () => received++);
    // A machine flipping between two states as fast as it can: far more transitions than the bound.
    const actor = createActor(hintedHandoffMachine, { inspect: insp.observer('hinted-handoff') });
    const observe = insp.observer('node')!;
    for (let i = 0; i < 1000; i++)
      observe({ type: '@xstate.snapshot', actorRef: actor, rootId: actor.sessionId, event: { type: 'X' }, snapshot: { value: i % 2 ? 'a' : 'b' } } as never);
    await watcher.flush();
    expect(received).to.equal(MAX_TRACE_MESSAGES_PER_SECOND);
    expect(insp.published).to.equal(MAX_TRACE_MESSAGES_PER_SECOND);
    expect(insp.dropped.messages).to.equal(1000 - MAX_TRACE_MESSAGES_PER_SECOND);
  });

  it("traces a real machine's transitions, skipping its child actors' snapshots", async () => {
    const net = new MemoryNetwork();
    const insp = new Inspection(config({ inspect: true }), net.transport(), manualClock());
    const seen: TransitionTrace[] = [];
    const watcher = net.transport();
    watcher.subscribe('dynamo.trace.n1.hinted-handoff', (m) => seen.push(decodeJson<TransitionTrace>(m.data)));
    const clock = new SimulatedClock();
    let delivered!: () => void;
    const deliver = fromPromise<number>(() => new Promise((resolve) => (delivered = () => resolve(0))));
    const actor = createActor(hintedHandoffMachine.provide({ actors: { deliver } }), { clock, inspect: insp.observer('hinted-handoff') });
    actor.start();
    clock.increment(HINT_INTERVAL_MS);
    delivered();
    await new Promise((r) => setImmediate(r));
    actor.stop();
    await watcher.flush();
    expect(seen.map((t) => [t.from, t.to, t.event])).to.deep.equal([
      [null, 'idle', 'init'],
      ['idle', 'delivering', `after ${HINT_INTERVAL_MS} ms`],
      ['delivering', 'idle', 'done'],
    ]);
  });
});
