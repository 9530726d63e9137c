import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNatsServer, stopProcess, type ServerProcess } from '../../src/cli/servers.js';
import { TransportError } from '../../src/errors.js';
import { NatsTransport } from '../../src/transport/nats-transport.js';

const text = (data: Uint8Array) => new TextDecoder().decode(data);

/** What a request fails with, or null when it is answered. */
async function failure(p: Promise<unknown>): Promise<TransportError | null> {
  try {
    await p;
    return null;
  } catch (e) {
    expect(e).to.be.instanceOf(TransportError);
    return e as TransportError;
  }
}

describe('NATS transport requests (real nats-server)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dynamo-transport-'));
  let nats: ServerProcess;
  let server: NatsTransport;
  let client: NatsTransport;

  before(async () => {
    nats = await startNatsServer(join(dir, 'nats'));
    server = await NatsTransport.connect(nats.url, 'test-server');
    client = await NatsTransport.connect(nats.url, 'test-client');
    server.subscribe('echo', (m) => m.respond(`echo ${text(m.data)}`));
    // Answers after the delay the request names, in ms.
    server.subscribe('slow', (m) => void setTimeout(() => m.respond(text(m.data)), Number(text(m.data))));
    server.subscribe('silent', () => {});
    await server.flush();
  });
  after(async () => {
    await client?.close();
    await server?.close();
    if (nats) await stopProcess(nats.child);
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives every one of many concurrent requests its own answer', async () => {
    const answers = await Promise.all(Array.from({ length: 500 }, (_, i) => client.request('echo', String(i), 5000)));
    expect(answers.map(text)).to.deep.equal(Array.from({ length: 500 }, (_, i) => `echo ${i}`));
  });

  it('says no-responders at once when nobody listens', async () => {
    const started = performance.now();
    const e = await failure(client.request('nobody.listens', 'x', 5000));
    expect(e?.kind).to.equal('no-responders');
    expect(e?.message).to.contain('nobody.listens');
    expect(performance.now() - started).to.be.below(1000);
  });

  it('times a request out after its timeout, not long after, and still answers the ones that are in time', async () => {
    const started = performance.now();
    const [late, inTime] = await Promise.all([failure(client.request('silent', 'x', 200)), client.request('slow', '50', 2000)]);
    const took = performance.now() - started;
    expect(late?.kind).to.equal('timeout');
    expect(text(inTime)).to.equal('50');
    expect(took).to.be.at.least(195);
    expect(took).to.be.below(700);
  });

  it('drops an answer that comes after its request timed out', async () => {
    const e = await failure(client.request('slow', '300', 100));
    expect(e?.kind).to.equal('timeout');
    // The late answer arrives meanwhile and must not be taken for this request's.
    const next = await client.request('slow', '400', 2000);
    expect(text(next)).to.equal('400');
  });

  it('fails the requests still waiting when the transport closes, and refuses new ones', async () => {
    const own = await NatsTransport.connect(nats.url, 'test-closing');
    const waiting = failure(own.request('silent', 'x', 10_000));
    await own.close();
    expect((await waiting)?.kind).to.equal('closed');
    expect((await failure(own.request('echo', 'x', 1000)))?.kind).to.equal('closed');
  });
});
