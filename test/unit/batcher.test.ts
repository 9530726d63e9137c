import { expect } from 'chai';
import { RequestBatcher, TIMEOUT_CLASS_MS, type BatchKind } from '../../src/transport/batcher.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { decodeJson } from '../../src/transport/transport.js';

/** Items are numbers; the server answers each with its double, or with `answer` when given. */
const DOUBLE: BatchKind<number> = {
  body: (items) => `[${items.join(',')}]`,
  split: (data) => {
    const reply = decodeJson<number[] | { error: string }>(data);
    return Array.isArray(reply) ? reply : new Error(reply.error);
  },
};

describe('request batcher', () => {
  const network = new MemoryNetwork();
  const messages: number[][] = [];
  let answer: ((items: number[]) => unknown) | null = null;
  network.transport().subscribe('double', (m) => {
    const items = decodeJson<number[]>(m.data);
    messages.push(items);
    m.respond(JSON.stringify(answer ? answer(items) : items.map((x) => 2 * x)));
  });
  beforeEach(() => {
    messages.length = 0;
    answer = null;
  });

  it('sends the requests of one turn as one message and gives each caller its own answer', async () => {
    const b = new RequestBatcher(network.transport(), { maxItems: 100, maxBytes: 1 << 20 });
    const results = await Promise.all([1, 2, 3, 4].map((x) => b.request('double', DOUBLE, String(x), 1000)));
    expect(results).to.deep.equal([2, 4, 6, 8]);
    expect(messages).to.deep.equal([[1, 2, 3, 4]]);
  });

  it('starts a new message at the item or byte bound', async () => {
    const b = new RequestBatcher(network.transport(), { maxItems: 3, maxBytes: 6 });
    await Promise.all([1, 2, 3, 4, 5].map((x) => b.request('double', DOUBLE, String(x), 1000)));
    await Promise.all(['100', '200', '300'].map((x) => b.request('double', DOUBLE, x, 1000)));
    expect(messages).to.deep.equal([[1, 2, 3], [4, 5], [100, 200], [300]]);
  });

  it('keeps requests whose timeouts differ by more than a class apart, so a short one never waits on a long one', async () => {
    const b = new RequestBatcher(network.transport(), { maxItems: 100, maxBytes: 1 << 20 });
    await Promise.all([
      b.request('double', DOUBLE, '1', 1000),
      b.request('double', DOUBLE, '2', 1000 - TIMEOUT_CLASS_MS / 2),
      b.request('double', DOUBLE, '3', 60_000),
    ]);
    expect(messages.sort((x, y) => x.length - y.length)).to.deep.equal([[3], [1, 2]]);
  });

  it('fails every item of a batch the other side refuses, or answers with the wrong count', async () => {
    const b = new RequestBatcher(network.transport(), { maxItems: 100, maxBytes: 1 << 20 });
    answer = () => ({ error: 'refused' });
    const refused = await Promise.all([1, 2].map((x) => b.request('double', DOUBLE, String(x), 1000).catch((e: Error) => e.message)));
    expect(refused).to.deep.equal(['refused', 'refused']);
    answer = (items) => items.slice(1);
    const short = await Promise.all([1, 2].map((x) => b.request('double', DOUBLE, String(x), 1000).catch((e: Error) => e.message)));
    expect(short).to.deep.equal(['reply on double answers 1 of 2 items', 'reply on double answers 1 of 2 items']);
  });

  it('fails every item when nobody listens', async () => {
    const b = new RequestBatcher(network.transport(), { maxItems: 100, maxBytes: 1 << 20 });
    const e = await b.request('nobody', DOUBLE, '1', 1000).catch((x: Error) => x);
    expect(e).to.be.instanceOf(Error);
    expect((e as { kind?: string }).kind).to.equal('no-responders');
  });
});
