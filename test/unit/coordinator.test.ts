import { expect } from 'chai';
import { getReplyText } from '../../src/quorum/read.js';
import { lww } from '../../src/resolvers/index.js';
import { SimulatedClock, type AnyActorRef } from 'xstate';
import {
  getCoordinatorMachine,
  putCoordinatorMachine,
  READ_REPAIR_TIMEOUT_MS,
  startRun,
  tell,
  type CoordinatorIo,
} from '../../actors/coordinator/coordinator-machine.js';
import type { ClientRequest } from '../../src/protocol/requests.js';
import type { Version } from '../../src/versioning/index.js';

/**
 * The coordinator machine alone, its I/O replaced through provide(), on a simulated
 * clock: each test scripts what the replicas answer and when.
 */
type Script = Record<string, { after: number; answer: 'ack' | 'fail' | Version[] } | 'silent'>;

const v = (node: string, counter: number, value: string, t = counter): Version => ({ d: [node, counter], c: {}, t, v: value });

function harness(script: Script, opts: { localFails?: boolean; localThrows?: boolean; repairHangs?: boolean } = {}) {
  const clock = new SimulatedClock();
  const replies: unknown[] = [];
  const repairs: Map<string, Version[]>[] = [];
  const answer = (self: AnyActorRef, replicas: readonly string[]) => {
    for (const node of replicas) {
      const s = script[node];
      if (s === undefined || s === 'silent') continue;
      clock.setTimeout(() => {
        if (s.answer === 'ack') tell(self, { type: 'REPLICA.ACK', node });
        else if (s.answer === 'fail') tell(self, { type: 'REPLICA.FAIL', node, reason: 'down' });
        else tell(self, { type: 'REPLICA.READ', node, versions: s.answer });
      }, s.after);
    }
  };
  const io: CoordinatorIo = {
    writeLocal: ({ self }, input) => {
      if (opts.localThrows) throw new Error('a bug in the local write');
      void Promise.resolve().then(() => {
        if (opts.localFails) return tell(self, { type: 'LOCAL.FAIL', error: new Error('redis down') });
        const version: Version = { d: [input.node, 1], c: input.context, t: input.ts, v: input.value };
        tell(self, { type: 'LOCAL.DONE', output: { version, siblingsText: JSON.stringify([version]) } });
      });
    },
    replicateWrite: ({ self }, input) => answer(self, input.replicas),
    readReplicas: ({ self }, input) => answer(self, input.replicas),
    repair: ({ self }, input) => {
      repairs.push(new Map(input.plan));
      if (!opts.repairHangs) void Promise.resolve().then(() => tell(self, { type: 'REPAIR.DONE' }));
    },
  };
  const machines = { get: getCoordinatorMachine.provide({ actions: io }), put: putCoordinatorMachine.provide({ actions: io }) };
  const ended = { completed: 0, errors: [] as unknown[] };
  const inspected: string[] = [];
  const run = (request: ClientRequest, inspect = false) =>
    startRun(
      request.op === 'get' ? machines.get : machines.put,
      {
        request,
        replicas: ['n1', 'n2', 'n3'],
        extras: [],
        hints: new Map(),
        self: 'n1',
        nowMs: 5,
        remainingMs: () => 1000,
        reply: (t: string) => replies.push(JSON.parse(t)),
        render: (merged) => getReplyText(merged),
      },
      clock,
      { complete: () => ended.completed++, error: (e) => ended.errors.push(e) },
      inspect ? { inspect: (ev) => void (ev.type === '@xstate.snapshot' && inspected.push(String((ev.snapshot as { value?: unknown }).value))) } : {},
    );
  return { clock, replies, repairs, run, ended, inspected };
}

const put = (w: number, timeoutMs = 1000): ClientRequest => ({
  op: 'put',
  bucket: 'b',
  key: 'k',
  value: '"x"',
  crdt: undefined,
  context: {},
  w,
  timeoutMs,
  condition: undefined,
  resolver: lww,
  ttlMs: undefined,
});
const get = (r: number, timeoutMs = 1000): ClientRequest => ({ op: 'get', bucket: 'b', key: 'k', r, timeoutMs, resolver: lww });
const settle = () => new Promise((r) => setImmediate(r));

describe('coordinator machine', () => {
  it('replies to a W=2 put after the local write and one remote ack', async () => {
    const h = harness({ n2: { after: 10, answer: 'ack' }, n3: 'silent' });
    const actor = h.run(put(2));
    await settle();
    expect(actor.getSnapshot().value).to.equal('waitingRemote');
    h.clock.increment(10);
    expect(h.replies).to.have.length(1);
    expect(h.replies[0]).to.have.property('ok', true);
    expect(actor.getSnapshot().status).to.equal('done');
  });

  it('fails fast with QUORUM_NOT_MET once the quorum is impossible, before the timeout', async () => {
    const h = harness({ n2: { after: 5, answer: 'fail' }, n3: { after: 6, answer: 'fail' } });
    const actor = h.run(put(3));
    await settle();
    h.clock.increment(5);
    expect(h.replies).to.deep.equal([
      { ok: false, error: { code: 'QUORUM_NOT_MET', message: 'only 1 of 3 required replicas answered the write', acks: 1, needed: 3 } },
    ]);
    expect(actor.getSnapshot().value).to.equal('failed');
  });

  it('answers TIMEOUT when replicas stay silent past timeoutMs', async () => {
    const h = harness({ n2: 'silent', n3: 'silent' });
    const actor = h.run(put(2, 300));
    await settle();
    h.clock.increment(299);
    expect(h.replies).to.deep.equal([]);
    h.clock.increment(1);
    expect(h.replies[0]).to.deep.include({ ok: false });
    expect((h.replies[0] as { error: object }).error).to.include({ code: 'TIMEOUT', acks: 1, needed: 2 });
    expect(actor.getSnapshot().value).to.equal('timedOut');
  });

  it('answers UNAVAILABLE when the local write fails', async () => {
    const h = harness({}, { localFails: true });
    h.run(put(2));
    await settle();
    expect((h.replies[0] as { error: { code: string } }).error.code).to.equal('UNAVAILABLE');
  });

  it('replies to a get at R, then repairs the replica that answered late with stale data', async () => {
    const newer = v('n1', 2, '"new"');
    const h = harness({ n1: { after: 1, answer: [newer] }, n2: { after: 2, answer: [newer] }, n3: { after: 50, answer: [] } });
    const actor = h.run(get(2));
    h.clock.increment(2);
    expect(h.replies).to.have.length(1);
    expect(h.replies[0]).to.deep.include({ ok: true, found: true, values: ['new'] });
    expect(actor.getSnapshot().value).to.equal('readingRest');
    h.clock.increment(48);
    await settle();
    expect(h.repairs).to.have.length(1);
    expect([...h.repairs[0]!.keys()]).to.deep.equal(['n3']);
    expect(h.repairs[0]!.get('n3')).to.deep.equal([newer]);
    expect(actor.getSnapshot().status).to.equal('done');
  });

  it('answers a get TIMEOUT when too few replicas answer in time', async () => {
    const h = harness({ n1: { after: 1, answer: [] }, n2: 'silent', n3: 'silent' });
    const actor = h.run(get(2, 200));
    h.clock.increment(199);
    expect(h.replies).to.deep.equal([]);
    h.clock.increment(1);
    expect((h.replies[0] as { error: object }).error).to.include({ code: 'TIMEOUT', acks: 1, needed: 2 });
    expect(actor.getSnapshot().value).to.equal('timedOut');
  });

  it('stops waiting for a silent last replica at the deadline, after answering at R', async () => {
    const h = harness({ n1: { after: 1, answer: [v('n1', 1, '"a"')] }, n2: { after: 1, answer: [] }, n3: 'silent' });
    const actor = h.run(get(2, 200));
    h.clock.increment(1);
    expect(h.replies[0]).to.deep.include({ ok: true, found: true, values: ['a'] });
    expect(actor.getSnapshot().value).to.equal('readingRest');
    h.clock.increment(199);
    await settle();
    // n2 answered without the version: it is repaired; n3 never answered and is left to anti-entropy.
    expect(h.repairs.map((p) => [...p.keys()])).to.deep.equal([['n2']]);
    expect(h.replies).to.have.length(1);
    expect(actor.getSnapshot().status).to.equal('done');
  });

  it('resolves concurrent siblings last-write-wins and returns a context covering both', async () => {
    const a = v('n1', 1, '"a"', 10);
    const b = v('n2', 1, '"b"', 20);
    const h = harness({ n1: { after: 1, answer: [a] }, n2: { after: 1, answer: [b] }, n3: { after: 1, answer: [a, b] } });
    h.run(get(3));
    h.clock.increment(1);
    const reply = h.replies[0] as { values: unknown[]; context: string };
    expect(reply.values).to.deep.equal(['b']);
    expect(JSON.parse(Buffer.from(reply.context, 'base64url').toString())).to.deep.equal({ n1: [1, 10], n2: [1, 20] });
  });

  it('reports not found when the latest version is a tombstone', async () => {
    const tomb: Version = { d: ['n2', 2], c: { n1: [1, 1] }, t: 9 };
    const h = harness({ n1: { after: 1, answer: [tomb] }, n2: { after: 1, answer: [tomb] }, n3: 'silent' });
    h.run(get(2));
    h.clock.increment(1);
    expect(h.replies[0]).to.deep.equal({ ok: true, found: false, values: [], context: null });
  });

  it('gives up waiting on a repair that never finishes after READ_REPAIR_TIMEOUT_MS', async () => {
    const h = harness(
      { n1: { after: 1, answer: [v('n1', 1, '"a"')] }, n2: { after: 1, answer: [v('n1', 1, '"a"')] }, n3: { after: 1, answer: [] } },
      { repairHangs: true },
    );
    const run = h.run(get(2));
    h.clock.increment(1);
    expect(h.repairs).to.have.length(1);
    expect(run.getSnapshot().value).to.equal('repairing');
    h.clock.increment(READ_REPAIR_TIMEOUT_MS - 1);
    expect(run.getSnapshot().value).to.equal('repairing');
    h.clock.increment(1);
    expect(run.getSnapshot().status).to.equal('done');
    expect(h.ended.completed).to.equal(1);
  });

  it('answers the same as an inspected run (an XState actor) as a plain one', async () => {
    const outcome = async (inspect: boolean) => {
      const newer: Version = { d: ['n1', 2], c: { n1: [1, 1] }, t: 2, v: '"new"' };
      const reads = harness({ n1: { after: 1, answer: [newer] }, n2: { after: 2, answer: [newer] }, n3: { after: 5, answer: [v('n1', 1, '"old"')] } });
      const writes = harness({ n2: { after: 3, answer: 'ack' }, n3: { after: 4, answer: 'fail' } });
      const getRun = reads.run(get(2), inspect);
      const putRun = writes.run(put(2), inspect);
      await settle();
      reads.clock.increment(10);
      writes.clock.increment(10);
      await settle();
      return {
        replies: [...reads.replies, ...writes.replies],
        repairs: reads.repairs.map((p) => [...p]),
        ends: [getRun.getSnapshot().value, putRun.getSnapshot().value],
        ended: [reads.ended, writes.ended],
        inspected: [...reads.inspected, ...writes.inspected],
      };
    };
    const plain = await outcome(false);
    const actor = await outcome(true);
    expect(plain.replies).to.have.length(2);
    expect(actor.replies).to.deep.equal(plain.replies);
    expect(actor.repairs).to.deep.equal(plain.repairs);
    expect(plain.repairs.map(([[node]]) => node)).to.deep.equal(['n3']);
    expect(actor.ends).to.deep.equal(['done', 'done']).and.to.deep.equal(plain.ends);
    expect(actor.ended)
      .to.deep.equal([
        { completed: 1, errors: [] },
        { completed: 1, errors: [] },
      ])
      .and.to.deep.equal(plain.ended);
    // Only the inspected runs report their steps.
    expect(plain.inspected).to.deep.equal([]);
    expect(actor.inspected).to.include.members(['reading', 'readingRest', 'executingLocal', 'waitingRemote', 'done']);
  });

  it('ends a run whose action throws with one error, and takes no event after it', async () => {
    const h = harness({ n2: { after: 1, answer: 'ack' }, n3: { after: 1, answer: 'ack' } }, { localThrows: true });
    const run = h.run(put(2));
    expect(h.ended.errors.map((e) => (e as Error).message)).to.deep.equal(['a bug in the local write']);
    expect(run.getSnapshot().status).to.equal('error');
    tell(run, { type: 'LOCAL.DONE', output: { version: v('n1', 1, '"x"'), siblingsText: '[]' } });
    h.clock.increment(2000);
    expect(h.replies).to.deep.equal([]);
    expect(h.ended).to.deep.equal({ completed: 0, errors: [h.ended.errors[0]] });
  });
});
