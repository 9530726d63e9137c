import { expect } from 'chai';
import { faultsBody } from '../../src/cli/admin-commands.js';
import { UsageError } from '../../src/errors.js';
import { FaultyTransport } from '../../src/faults/faulty-transport.js';
import { NO_FAULTS, parseFaults, partitioned } from '../../src/faults/rules.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';

describe('fault rules', () => {
  const rules = { ...NO_FAULTS, partition: [['a', 'b'], ['c']] };

  it('cuts traffic between groups only', () => {
    expect(partitioned(rules, 'a', 'b')).to.equal(false);
    expect(partitioned(rules, 'a', 'c')).to.equal(true);
    expect(partitioned(rules, 'c', 'b')).to.equal(true);
    expect(partitioned(rules, 'a', 'z')).to.equal(false); // in no group: reachable
    expect(partitioned(NO_FAULTS, 'a', 'c')).to.equal(false);
  });

  it('parses commands and rejects bad ones', () => {
    expect(parseFaults({ partition: [['a'], ['b']] }, NO_FAULTS)).to.deep.include({ partition: [['a'], ['b']] });
    expect(parseFaults({ drop: 0.5, delayMs: 20 }, NO_FAULTS)).to.deep.include({ drop: 0.5, delayMs: 20 });
    expect(parseFaults({ heal: true }, rules)).to.deep.equal(NO_FAULTS);
    for (const bad of [null, [], { partition: 'a' }, { partition: [['a'], ['a']] }, { drop: -1 }, { delayMs: 1.5 }, { heal: false }, { nope: 1 }]) {
      expect(parseFaults(bad, NO_FAULTS), JSON.stringify(bad)).to.be.a('string');
    }
  });

  it('builds the CLI commands', () => {
    expect(faultsBody(['partition', 'n1,n2', 'n3'])).to.deep.equal({ partition: [['n1', 'n2'], ['n3']] });
    expect(faultsBody(['heal'])).to.deep.equal({ heal: true });
    expect(faultsBody(['delay', '50'])).to.deep.equal({ delayMs: 50 });
    expect(() => faultsBody(['partition', 'n1'])).to.throw(UsageError);
  });

  it('drops requests to a cut-off node as timeouts and leaves client subjects alone', async () => {
    const net = new MemoryNetwork();
    net.transport().subscribe('p.node.c.ping', (m) => m.respond('pong'));
    net.transport().subscribe('p.kv.get', (m) => m.respond('ok'));
    const t = new FaultyTransport(net.transport(), 'a', 'p');
    t.rules = rules;
    const started = performance.now();
    const e = await t.request('p.node.c.ping', '', 30).catch((x: Error & { kind: string }) => x.kind);
    expect(e).to.equal('timeout');
    expect(performance.now() - started).to.be.at.least(25);
    expect(new TextDecoder().decode(await t.request('p.kv.get', '', 100))).to.equal('ok');
    t.rules = NO_FAULTS;
    expect(new TextDecoder().decode(await t.request('p.node.c.ping', '', 100))).to.equal('pong');
  });
});
