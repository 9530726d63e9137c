import 'reflect-metadata';
import { expect } from 'chai';
import { HintedHandoff } from '../../actors/node/hinted-handoff.js';
import { systemClock } from '../../src/clock/clock.js';
import { nodeConfig } from '../../src/config.js';
import { Inspection } from '../../src/inspect/inspection.js';
import type { NodeMembership } from '../../src/membership/membership.js';
import { BatchFill, itemsBody } from '../../src/protocol/batch-fill.js';
import { parseReplicaBatch, isPutItem } from '../../src/protocol/replica.js';
import { subjects } from '../../src/protocol/subjects.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { tryDecodeJson } from '../../src/transport/transport.js';
import type { Version } from '../../src/versioning/index.js';

describe('BatchFill', () => {
  it('closes a batch at its item count', () => {
    const f = new BatchFill<number>(3, 1000);
    const batches: number[][] = [];
    for (let i = 0; i < 7; i++) {
      if (f.wouldOverflow(1)) batches.push(f.take());
      f.add(i, 1);
    }
    batches.push(f.take());
    expect(batches).to.deep.equal([[0, 1, 2], [3, 4, 5], [6]]);
  });

  it('closes a batch before an item would take it past its bytes', () => {
    const f = new BatchFill<string>(100, 10);
    const batches: string[][] = [];
    for (const s of ['aaaa', 'bbbb', 'cc', 'dddd', 'e']) {
      if (f.wouldOverflow(s.length)) batches.push(f.take());
      f.add(s, s.length);
    }
    batches.push(f.take());
    expect(batches).to.deep.equal([
      ['aaaa', 'bbbb', 'cc'],
      ['dddd', 'e'],
    ]);
  });

  it('takes an item larger than the byte bound alone, never refusing it', () => {
    const f = new BatchFill<string>(100, 10);
    expect(f.wouldOverflow(50)).to.equal(false);
    f.add('x'.repeat(50), 50);
    expect(f.wouldOverflow(1)).to.equal(true);
    expect(f.take()).to.have.length(1);
    expect(f.length).to.equal(0);
    expect(f.wouldOverflow(50)).to.equal(false);
  });

  it('refuses bounds that could hold nothing', () => {
    expect(() => new BatchFill(0, 10)).to.throw(RangeError);
    expect(() => new BatchFill(10, 0)).to.throw(RangeError);
  });

  it('writes the one batch body', () => {
    expect(itemsBody(['1', '{"a":2}'])).to.equal('{"items":[1,{"a":2}]}');
  });
});

describe('hinted handoff batches by bytes (memory transport)', () => {
  const version = (n: number): Version => ({ d: ['n1.e1', n], c: {}, t: n, v: JSON.stringify('v'.repeat(300)) });

  async function setUp(maxPayload: number, accept: (message: number) => boolean) {
    const net = new MemoryNetwork();
    const config = nodeConfig({ nodeId: 'n1', natsUrl: 'memory', redisUrl: 'memory' });
    const storage = new MemoryStorage();
    for (let i = 1; i <= 5; i++) expect(await storage.storeHint('n2', 'default', `k${i}`, [version(i)])).to.equal('stored');
    const owner = net.transport(maxPayload);
    const received: string[][] = [];
    owner.subscribe(subjects(config.prefix).replicaPut('n2'), (m) => {
      const items = parseReplicaBatch(tryDecodeJson(m.data), isPutItem);
      if (typeof items === 'string') throw new Error(items);
      received.push(items.map((it) => it.k));
      m.respond(
        accept(received.length) ? JSON.stringify({ ok: true, stored: items.map(() => true) }) : '{"ok":false,"error":{"code":"UNAVAILABLE","message":"no"}}',
      );
    });
    const transport = net.transport(maxPayload);
    const membership = {
      members: () => [{ id: 'n2', status: 'up', liveness: 'alive', weight: 1, ringWeight: 1, generation: 1, heartbeat: 1, heartbeatAgeMs: 0 }],
    } as unknown as NodeMembership;
    const clock = systemClock;
    const logger = { info() {}, warn() {}, error() {} };
    const handoff = new HintedHandoff(subjects(config.prefix), config, transport, storage, logger, clock, membership, new Inspection(config, transport, clock));
    return { handoff, storage, received };
  }

  it('sends hints that do not fit one message in several, and deletes each once acknowledged', async () => {
    // Half of 1024 bytes per message: each ~330-byte hint goes alone.
    const { handoff, storage, received } = await setUp(1024, () => true);
    expect(await handoff.deliverAll()).to.equal(5);
    expect(received).to.have.length(5);
    expect(received.flat().sort()).to.deep.equal(['k1', 'k2', 'k3', 'k4', 'k5']);
    expect(await storage.hintCount()).to.equal(0);
  });

  it('keeps every hint the owner did not acknowledge, for the next pass', async () => {
    const { handoff, storage, received } = await setUp(1024, (n) => n === 1);
    expect(await handoff.deliverAll()).to.equal(1);
    expect(received).to.have.length(2);
    expect(await storage.hintCount()).to.equal(4);
  });

  it('puts hints that fit together in one message', async () => {
    const { handoff, received } = await setUp(1024 * 1024, () => true);
    expect(await handoff.deliverAll()).to.equal(5);
    expect(received).to.have.length(1);
  });
});
