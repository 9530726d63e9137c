import { expect } from 'chai';
import { antiEntropyMachine } from '../../actors/anti-entropy/anti-entropy-machine.js';
import { getCoordinatorMachine, putCoordinatorMachine } from '../../actors/coordinator/coordinator-machine.js';
import { nodeMachine } from '../../actors/node/node-machine.js';
import { ConsoleBridge, MAX_RUNS } from '../../src/console/bridge.js';
import { chartOf, layOut } from '../../src/console/statecharts.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { waitFor } from '../helpers/wait.js';
import { systemClock } from '../../src/clock/clock.js';

describe('console: state charts', () => {
  it("draws every state and transition of the node's lifecycle", () => {
    const chart = chartOf(nodeMachine);
    expect(chart.states.map((s) => s.id).sort()).to.deep.equal(
      [
        'node.booting',
        'node.online',
        'node.online.joining',
        'node.online.joinBackoff',
        'node.online.serving',
        'node.online.leaving',
        'node.stopping',
        'node.stopped',
      ].sort(),
    );
    const edge = (from: string, label: string) => chart.edges.find((e) => e.from === `node.${from}` && e.label === label)?.to;
    expect(edge('online.serving', 'LEAVE')).to.equal('node.online.leaving');
    expect(edge('online.joining', 'error')).to.equal('node.online.joinBackoff');
    expect(edge('online.joinBackoff', 'after 2000 ms')).to.equal('node.online.joining');
    // Several events between the same two states make one edge naming them all.
    expect(edge('stopping', 'done / error / after 20000 ms')).to.equal('node.stopped');
    const pairs = chart.edges.map((e) => `${e.from} ${e.to}`);
    expect(new Set(pairs).size).to.equal(pairs.length);
    expect(chart.fromAnyState).to.deep.equal([{ event: 'STOP', to: 'node.stopping' }]);
    expect(chart.states.find((s) => s.id === 'node.booting')!.initial).to.equal(true);
    expect(chart.states.find((s) => s.id === 'node.stopped')!.kind).to.equal('final');
  });

  it('lays charts out with every state inside the drawing and every edge routed', async () => {
    for (const m of [nodeMachine, getCoordinatorMachine, putCoordinatorMachine, antiEntropyMachine]) {
      const chart = await layOut(chartOf(m));
      expect(chart.width).to.be.greaterThan(0);
      for (const s of chart.states) {
        expect(s.width, s.id).to.be.greaterThan(0);
        expect(s.x + s.width).to.be.at.most(chart.width + 1);
        expect(s.y + s.height).to.be.at.most(chart.height + 1);
      }
      for (const e of chart.edges) expect(e.points.length, `${e.from} -> ${e.to}`).to.be.at.least(2);
    }
  });
});

describe('console: bridge (in memory)', () => {
  it('keeps well-formed traces, bounded, and ignores anything else on the trace subjects', async () => {
    const net = new MemoryNetwork();
    const bridge = new ConsoleBridge(net.transport(), 'dynamo', 60_000);
    await bridge.start();
    const pub = net.transport();
    const run = (i: number) => ({
      type: 'run',
      node: 'n1',
      actor: 'coordinator',
      requestId: `n1-${i}`,
      at: i,
      op: 'put',
      bucket: 'b',
      key: 'k',
      replicas: [],
      steps: [],
      outcome: 'ok',
      replyMs: 1,
      totalMs: 1,
      truncated: 0,
    });
    pub.publish('dynamo.trace.n1.coordinator', 'not json');
    pub.publish('dynamo.trace.n1.coordinator', JSON.stringify({ type: 'run', node: 'n1' }));
    pub.publish('dynamo.trace.n1.node', JSON.stringify({ type: 'transition', node: 'n1', actor: 'node', at: 1, from: null, to: 'booting', event: 'init' }));
    for (let i = 0; i < MAX_RUNS + 10; i++) pub.publish('dynamo.trace.n1.coordinator', JSON.stringify(run(i)));
    await waitFor(() => bridge.snapshot().runs.at(-1)?.requestId === `n1-${MAX_RUNS + 9}`, 2000, 'the last run');
    const state = bridge.snapshot();
    expect(state.runs).to.have.length(MAX_RUNS);
    expect(state.runs[0]!.requestId).to.equal('n1-10');
    expect(state.transitions.map((t) => t.to)).to.deep.equal(['booting']);
    // No node answers status here: the bridge says so rather than hanging.
    expect(state.statusError).to.match(/no status from the cluster/);
    bridge.stop();
  });

  it('reports a status reply that no node would send, and keeps polling while a page listens', async () => {
    const net = new MemoryNetwork();
    let reply = JSON.stringify({ ok: true, members: [null] });
    net.transport().subscribe('dynamo.admin.status', (m) => m.respond(reply));
    const bridge = new ConsoleBridge(net.transport(), 'dynamo', 20);
    await bridge.start();
    expect(bridge.snapshot().statusError).to.match(/unreadable status from the cluster/);
    bridge.onMessage(() => {});
    reply = JSON.stringify({ ok: true, node: 'n1', version: 'x', n: 1, r: 1, w: 1, members: [] });
    await waitFor(() => bridge.snapshot().status?.node === 'n1', 2000, 'a good status after a bad one');
    expect(bridge.snapshot().statusError).to.equal(null);
    bridge.stop();
  });

  it('asks the cluster for its status only while a page listens, or when a request finds the last reading stale', async () => {
    const net = new MemoryNetwork();
    let asked = 0;
    net.transport().subscribe('dynamo.admin.status', (m) => {
      asked++;
      m.respond(JSON.stringify({ ok: true, node: 'n1', version: 'x', n: 1, r: 1, w: 1, members: [] }));
    });
    // Wall-clock time moves only when the test says so; timers are real.
    let wall = 1_000_000;
    const clock = { ...systemClock, now: () => wall };
    const bridge = new ConsoleBridge(net.transport(), 'dynamo', 20, clock);
    await bridge.start();
    // Polls would come every 20 ms: five intervals pass with none.
    await new Promise((r) => setTimeout(r, 100));
    expect(asked).to.equal(1);
    const messages: string[] = [];
    const off = bridge.onMessage((m) => messages.push(m.type));
    await waitFor(() => messages.filter((t) => t === 'status').length >= 3, 2000, 'readings while a page listens');
    off();
    const after = asked;
    await new Promise((r) => setTimeout(r, 100));
    // At most the reading under way when the page left.
    expect(asked - after).to.be.at.most(1);
    const before = asked;
    await bridge.current();
    expect(asked, 'a fresh reading was there').to.equal(before);
    wall += 21;
    await Promise.all([bridge.current(), bridge.current()]);
    expect(asked, 'one reading for a stale state, however many ask').to.equal(before + 1);
    bridge.stop();
  });
});
