import { expect } from 'chai';
import { DynamoClient } from '../../src/client/client.js';
import { AbortedError, BadRequestError, DynamoTimeoutError, TooLargeError, UnavailableError } from '../../src/client/errors.js';
import { TransportError } from '../../src/errors.js';
import { MemoryNetwork } from '../../src/transport/memory-transport.js';
import { MemoryCluster } from '../helpers/memory-cluster.js';
import { waitFor } from '../helpers/wait.js';

describe('client (in memory)', () => {
  let cluster: MemoryCluster;
  let client: DynamoClient;
  before(async () => {
    cluster = await new MemoryCluster(['c1', 'c2', 'c3']).start();
    client = new DynamoClient(cluster.network.transport());
  });
  after(() => cluster.stop());

  it('puts, gets and deletes with typed results', async () => {
    const put = await client.put('cart', { items: ['book'] });
    expect(put.context).to.be.a('string');
    const got = await client.get<{ items: string[] }>('cart');
    expect(got).to.deep.include({ found: true, values: [{ items: ['book'] }] });
    await client.delete('cart', { context: got.context });
    expect(await client.get('cart')).to.deep.equal({ found: false, values: [], context: null });
  });

  it('raises BadRequestError naming the field, and TooLargeError with the limit', async () => {
    const bad = await client.get('k', { r: 9 }).catch((e: unknown) => e);
    expect(bad).to.be.instanceOf(BadRequestError);
    expect((bad as BadRequestError).details).to.include({ field: 'r' });
    const big = await client.put('k', 'x'.repeat(1024 * 1024 + 1)).catch((e: unknown) => e);
    expect(big).to.be.instanceOf(TooLargeError);
    expect((big as TooLargeError).details).to.include({ limit: 1024 * 1024 });
  });

  it('coalesces the calls of one turn into one batch message, each call getting its own result or error', async () => {
    const seen: number[] = [];
    const spy = cluster.network
      .transport()
      .subscribe('dynamo.kv.batch', (m) => seen.push((JSON.parse(new TextDecoder().decode(m.data)) as { items: unknown[] }).items.length));
    try {
      const puts = Array.from({ length: 10 }, (_, i) => client.put(`batch-${i}`, i));
      const bad = client.get('batch-0', { r: 9 }).catch((e: unknown) => e);
      const contexts = await Promise.all(puts);
      expect(contexts.every((c) => typeof c.context === 'string')).to.equal(true);
      expect(await bad).to.be.instanceOf(BadRequestError);
      expect(seen).to.deep.equal([11]);
      const got = await Promise.all(Array.from({ length: 10 }, (_, i) => client.get<number>(`batch-${i}`)));
      expect(got.map((g) => g.values)).to.deep.equal(Array.from({ length: 10 }, (_, i) => [i]));
    } finally {
      spy.unsubscribe();
    }
  });

  it('sends each call as its own request with batch: false', async () => {
    const one = new DynamoClient(cluster.network.transport(), { batch: false });
    const seen: string[] = [];
    const spies = ['dynamo.kv.batch', 'dynamo.kv.put'].map((s) => cluster.network.transport().subscribe(s, (m) => seen.push(m.subject)));
    try {
      await Promise.all([one.put('single-1', 1), one.put('single-2', 2)]);
      expect(seen).to.deep.equal(['dynamo.kv.put', 'dynamo.kv.put']);
    } finally {
      for (const s of spies) s.unsubscribe();
    }
  });

  it('refuses to put undefined', async () => {
    expect(await client.put('k', undefined).catch((e: unknown) => e)).to.be.instanceOf(TypeError);
  });

  it('update() merges concurrent read-modify-writes from two clients without losing either', async () => {
    const other = new DynamoClient(cluster.network.transport());
    const add = (c: DynamoClient, item: string) => c.update<string[]>('set', (values) => [...new Set([...values.flat(), item])].sort(), { maxAttempts: 20 });
    await Promise.all([...'abcdefgh'].map((x, i) => add(i % 2 ? client : other, x)));
    const got = await client.get<string[]>('set');
    // Every update saw the latest value or retried: no sibling left behind, no item lost.
    expect(got.values).to.deep.equal([[...'abcdefgh']]);
  });
});

describe('client transport failures (in memory)', () => {
  const network = new MemoryNetwork();
  // A "node" that takes requests (batched, as the client sends them) and never answers.
  network.transport().subscribe('dynamo.kv.batch', () => {});

  it('raises DynamoTimeoutError with the transport error as cause', async () => {
    const client = new DynamoClient(network.transport(), { timeoutMs: 50 });
    const e = await client.get('k').catch((x: unknown) => x);
    expect(e).to.be.instanceOf(DynamoTimeoutError);
    expect((e as Error).cause).to.be.instanceOf(TransportError);
  });

  it('raises UnavailableError when no node listens', async () => {
    const e = await new DynamoClient(new MemoryNetwork().transport()).put('k', 1).catch((x: unknown) => x);
    expect(e).to.be.instanceOf(UnavailableError);
    expect(((e as Error).cause as TransportError).kind).to.equal('no-responders');
  });

  it('holds requests beyond maxInFlight until a slot frees, and an AbortSignal ends a call early', async () => {
    const transport = network.transport();
    const client = new DynamoClient(transport, { maxInFlight: 2, timeoutMs: 60_000 });
    const controller = new AbortController();
    const calls = Array.from({ length: 5 }, () => client.get('k', { signal: controller.signal }).catch((x: unknown) => x));
    await waitFor(() => client.inFlight === 2, 1000, 'two calls in flight');
    expect(client.inFlight).to.equal(2);
    controller.abort();
    const results = await Promise.all(calls);
    for (const r of results) expect(r).to.be.instanceOf(AbortedError);
    expect(client.inFlight).to.equal(0);
    expect(await client.get('k', { signal: AbortSignal.abort() }).catch((x: unknown) => x)).to.be.instanceOf(AbortedError);
    // The aborted calls' requests still wait on the transport (60 s) until it closes.
    await transport.close();
  });
});
