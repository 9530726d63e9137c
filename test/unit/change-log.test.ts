import 'reflect-metadata';
import { expect } from 'chai';
import { ChangeLog } from '../../actors/node/change-log.js';
import { nodeConfig } from '../../src/config.js';
import type { Logger } from '../../src/di/tokens.js';
import { subjects } from '../../src/protocol/subjects.js';
import { MemoryStorage } from '../../src/storage/memory-storage.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import type { Transport } from '../../src/transport/transport.js';
import { decodeJson } from '../../src/transport/transport.js';
import type { Version } from '../../src/versioning/index.js';

const version = (n: number): Version => ({ d: ['n1.e', n], c: {}, t: n, v: `"v${n}"` });

function changeLog(transport: Transport, storage = new MemoryStorage(), logger: Logger = { info: () => {}, warn: () => {}, error: () => {} }) {
  const config = nodeConfig({ nodeId: 'n1', natsUrl: 'nats://127.0.0.1:1', redisUrl: 'redis://127.0.0.1:1' });
  return { log: new ChangeLog(subjects('dynamo'), config, transport, storage, logger), storage };
}

describe('change log', () => {
  it("logs every acknowledged write in order and publishes them together, each event chained to its bucket's previous one", async () => {
    const network = new MemoryNetwork();
    const messages: { events: { id: string; prev: string | null; key: string }[] }[] = [];
    network.transport().subscribe('dynamo.watch.default', (m) => messages.push(decodeJson(m.data)));
    const { log, storage } = changeLog(network.transport());
    for (let i = 1; i <= 5; i++) log.record('put', 'default', `k${i}`, version(i), null);
    await log.drain();
    const events = messages.flatMap((m) => m.events);
    expect(events.map((e) => e.key)).to.deep.equal(['k1', 'k2', 'k3', 'k4', 'k5']);
    expect(events[0]!.prev).to.equal(null);
    for (let i = 1; i < events.length; i++) expect(events[i]!.prev).to.equal(events[i - 1]!.id);
    // Five writes of one turn: one message, not five.
    expect(messages).to.have.length(1);
    expect((await storage.readChanges('0-0', 10)).changes.map((c) => c.key)).to.deep.equal(['k1', 'k2', 'k3', 'k4', 'k5']);
    expect(log.published).to.equal(5);
  });

  it('keeps a node up when publishing fails (a connection closed by a stop): the events stay in the log, and it says so once', async () => {
    const network = new MemoryNetwork();
    const closed: Transport = Object.assign(Object.create(network.transport()) as Transport, {
      publish: () => {
        throw new Error('connection closed');
      },
    });
    const warnings: string[] = [];
    const { log, storage } = changeLog(closed, new MemoryStorage(), { info: () => {}, warn: (m) => warnings.push(m), error: () => {} });
    log.record('put', 'default', 'a', version(1), null);
    await log.drain();
    log.record('delete', 'other', 'b', version(2), null);
    await log.drain();
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.contain('connection closed');
    expect((await storage.readChanges('0-0', 10)).changes.map((c) => c.key)).to.deep.equal(['a', 'b']);
  });
});
