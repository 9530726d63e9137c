import 'reflect-metadata';
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { createActor, type InspectionEvent } from 'xstate';
import { hintedHandoffMachine } from '../../actors/node/hinted-handoff-machine.js';
import { getCoordinatorMachine } from '../../actors/coordinator/coordinator-machine.js';
import { nodeConfig } from '../../src/config.js';
import { Inspection } from '../../src/inspect/inspection.js';
import { MAX_QUEUED_INSPECTION_EVENTS, plain, STATELY_INSPECT_VERSION, StatelyRelay, toStatelyEvent } from '../../src/inspect/stately-relay.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { systemClock } from '../../src/clock/clock.js';

describe('Stately inspector events (pure)', () => {
  it('speak the installed @statelyai/inspect protocol version', () => {
    const entry = createRequire(import.meta.url).resolve('@statelyai/inspect');
    const pkg = JSON.parse(readFileSync(join(dirname(entry), '..', 'package.json'), 'utf8')) as { version: string };
    expect(STATELY_INSPECT_VERSION).to.equal(pkg.version);
  });

  it('copy contexts and events to a bounded size: a 1 MiB value is cut, functions are named, Maps become objects', () => {
    const big = 'x'.repeat(1024 * 1024);
    const copy = plain({
      versions: [{ v: big }],
      fn: function monotonic() {},
      m: new Map([['n1', 1]]),
      deep: { a: { b: { c: { d: { e: 1 } } } } },
      many: Array.from({ length: 100 }, (_, i) => i),
    }) as Record<string, unknown>;
    const text = JSON.stringify(copy);
    expect(text.length).to.be.below(2000);
    expect(text).to.contain('(1048576 chars)');
    expect(copy['fn']).to.deep.equal({ type: 'monotonic' });
    expect(copy['m']).to.deep.equal({ n1: 1 });
    expect(JSON.stringify(copy['deep'])).to.equal('{"a":{"b":{"c":"{…}"}}}');
    expect((copy['many'] as unknown[]).at(-1)).to.equal('…68 more');
  });

  it("turn XState's inspection events into the inspector's, with the machine's definition and without its input", () => {
    const events: InspectionEvent[] = [];
    const actor = createActor(hintedHandoffMachine, { id: 'hints-n1', inspect: (e) => events.push(e) });
    actor.start();
    actor.stop();
    const converted = events.map(toStatelyEvent).filter((e) => e !== null);
    const registration = converted.find((e) => e.type === '@xstate.actor' && e.sessionId === actor.sessionId)!;
    expect(registration).to.include({ name: 'hints-n1', _version: STATELY_INSPECT_VERSION, rootId: actor.sessionId });
    expect(JSON.parse((registration as { definition: string }).definition)).to.have.property('id', 'hintedHandoff');
    const snapshot = converted.find((e) => e.type === '@xstate.snapshot')!;
    expect(snapshot.snapshot).to.deep.include({ value: 'idle' });
    expect(events.some((e) => e.type === '@xstate.microstep')).to.equal(true);
    expect(converted.every((e) => ['@xstate.actor', '@xstate.event', '@xstate.snapshot'].includes(e.type))).to.equal(true);
  });

  it("leave a coordinator's input (the request and its reply function) out of the context", () => {
    const events: InspectionEvent[] = [];
    const input = {
      request: { op: 'get', key: 'k', bucket: 'b', r: 1, timeoutMs: 10 },
      replicas: ['n1'],
      extras: [],
      hints: new Map(),
      self: 'n1',
      nowMs: 0,
      remainingMs: () => 0,
      reply: () => {},
      render: () => '',
    };
    const machine = getCoordinatorMachine.provide({ actions: { readReplicas: () => {} } });
    const actor = createActor(machine, { input: input as never, inspect: (e) => events.push(e) });
    actor.start();
    actor.stop();
    const snapshot = events.map(toStatelyEvent).find((e) => e?.type === '@xstate.snapshot' && e.sessionId === actor.sessionId)!;
    const context = (snapshot as unknown as { snapshot: { context: Record<string, unknown> } }).snapshot.context;
    expect(context).to.not.have.property('input');
    expect(context).to.have.property('tally');
  });
});

describe('Stately relay connection', () => {
  it(`holds at most ${MAX_QUEUED_INSPECTION_EVENTS} events while the relay is unreachable, counting the rest, and stops for good`, () => {
    const relay = new StatelyRelay('ws://127.0.0.1:1');
    const events: InspectionEvent[] = [];
    const actor = createActor(hintedHandoffMachine, { inspect: (e) => events.push(e) });
    actor.start();
    actor.stop();
    const snapshot = events.find((e) => e.type === '@xstate.snapshot')!;
    for (let i = 0; i < MAX_QUEUED_INSPECTION_EVENTS + 100; i++) relay.send(snapshot);
    expect(relay.dropped).to.equal(100);
    relay.stop();
  });
});

describe('inspection never hurts the actor it watches', () => {
  it('counts a failure in tracing instead of throwing into the machine', () => {
    const insp = new Inspection(
      nodeConfig({ nodeId: 'n1', natsUrl: 'memory', redisUrl: 'memory', inspect: true }),
      new MemoryNetwork().transport(),
      systemClock,
    );
    const observe = insp.observer('node')!;
    expect(() => observe({ type: '@xstate.snapshot', actorRef: null, rootId: 'x' } as never)).to.not.throw();
    expect(insp.dropped.failures).to.equal(1);
  });
});
