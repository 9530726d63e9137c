import { expect } from 'chai';
import { Watch, type WatchItem } from '../../src/client/watch.js';
import { changeText, compareChangeIds, parseWatchSince, publishedText } from '../../src/protocol/changes.js';
import { subjects } from '../../src/protocol/subjects.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { waitFor } from '../helpers/wait.js';

const s = subjects('dynamo');

/** A node's change log as watch.since serves it, on an in-memory network; live events are published by hand. */
function fakeNode(net: MemoryNetwork) {
  const node = net.transport();
  const log: { id: string; text: string }[] = [];
  let asked = 0;
  node.subscribe(s.ring, (m) => m.respond(JSON.stringify({ ok: true, n: 1, members: [{ id: 'n1', weight: 1 }] })));
  node.subscribe(s.nodeWatchSince('n1'), (m) => {
    const req = parseWatchSince(JSON.parse(new TextDecoder().decode(m.data)));
    if ('ok' in req) return m.respond(JSON.stringify(req));
    asked++;
    const after = req.after;
    const events = after === null ? [] : log.filter((e) => compareChangeIds(e.id, after) > 0);
    m.respond(
      `{"ok":true,"events":[${events.map((e) => publishedText('n1', e.id, null, e.text)).join(',')}],"next":${events.length ? `"${events[events.length - 1]!.id}"` : 'null'},"more":false,"head":${log.length ? `"${log[log.length - 1]!.id}"` : 'null'},"truncated":false}`,
    );
  });
  const write = (id: string, key: string) => {
    log.push({ id, text: changeText('put', 'default', key, '1', 'ctx', 1) });
  };
  const publish = (id: string, prev: string | null) => {
    const e = log.find((x) => x.id === id)!;
    node.publish(s.watch('default'), `{"events":[${publishedText('n1', id, prev, e.text)}]}`);
  };
  return { write, publish, asked: () => asked };
}

describe('watch client', () => {
  it('starts at the log head, fetches what a gap in the chain of ids hides, and takes each event once', async () => {
    const net = new MemoryNetwork();
    const n1 = fakeNode(net);
    n1.write('1-0', 'before');
    const watch = new Watch(net.transport(), s, 'default', { reconcileMs: 60_000 });
    const items: WatchItem[] = [];
    const done = (async () => {
      for await (const e of watch) items.push(e);
    })();
    await waitFor(() => n1.asked() >= 1, 2000, 'the watch asked for the head');
    // Junk on the subject (anyone may publish there) is not an event.
    net.transport().publish(s.watch('default'), '{"events":[{"node":"n1","id":"x"},5,null,{"node":"n1","id":"9-0"}]}');
    net.transport().publish(s.watch('default'), 'not json');
    n1.write('2-0', 'a');
    n1.publish('2-0', '1-0');
    // 3-0 is logged but its live message is lost; 4-0 names it as its predecessor.
    n1.write('3-0', 'b');
    n1.write('4-0', 'c');
    n1.publish('4-0', '3-0');
    // A duplicate of one already taken.
    n1.publish('2-0', '1-0');
    await waitFor(() => items.length >= 3, 2000, 'three events');
    watch.stop();
    await done;
    expect(items.map((e) => ('key' in e ? e.key : e.op))).to.deep.equal(['a', 'b', 'c']);
    const resumed = JSON.parse(Buffer.from(watch.position(), 'base64url').toString('utf8'));
    expect(resumed).to.deep.equal({ b: 'default', p: { n1: '4-0' } });
  });

  it('refuses a position of another bucket', () => {
    const net = new MemoryNetwork();
    const position = Buffer.from(JSON.stringify({ b: 'other', p: {} })).toString('base64url');
    expect(() => new Watch(net.transport(), s, 'default', { from: position })).to.throw(TypeError, /bucket "default"/);
  });
});
