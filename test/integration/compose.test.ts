import { expect } from 'chai';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { parse } from 'yaml';
import { ACTORS } from '../../src/config.js';
import { exited, startNatsServer, startRedisServer, type ServerProcess } from '../../src/cli/servers.js';
import { RedisStorage } from '../../src/storage/redis-storage.js';
import { NatsTransport } from '../../src/transport/nats-transport.js';
import { decodeJson } from '../../src/transport/transport.js';
import { memberState, waitAllUp } from '../helpers/members.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

interface Service {
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
}

/** The services of a compose file that run this project's image with `command` (node, console), merge keys resolved. */
function dynamoServices(file: string, command = 'node'): Map<string, { args: string[]; env: Record<string, string> }> {
  const doc = parse(readFileSync(join(ROOT, 'docker', file), 'utf8'), { merge: true }) as { services: Record<string, Service> };
  const out = new Map<string, { args: string[]; env: Record<string, string> }>();
  for (const [name, svc] of Object.entries(doc.services)) {
    if (svc.image !== 'dynamo-kv' || svc.command?.[0] !== command) continue;
    out.set(name, { args: svc.command ?? [], env: svc.environment ?? {} });
  }
  return out;
}

/** Which node and actors a service runs: --actors (or DYNAMO_ACTORS), all four by default. */
function placement(svc: { args: string[]; env: Record<string, string> }): { node: string; actors: string[]; redis: string } {
  const i = svc.args.indexOf('--actors');
  const actors = (i >= 0 ? svc.args[i + 1]! : (svc.env['DYNAMO_ACTORS'] ?? ACTORS.join(','))).split(',');
  return { node: svc.env['DYNAMO_NODE_ID']!, actors, redis: svc.env['DYNAMO_REDIS_URL']! };
}

/** The passwords compose reads from the shell that runs it (see the top of compose.yaml). */
const PASSWORDS: Record<string, string> = Object.fromEntries(
  ['NODE', 'CLIENT', 'OPERATOR', 'CART'].map((u) => [`DYNAMO_${u}_PASSWORD`, `pw${randomBytes(12).toString('hex')}`]),
);

/** `${NAME}` and `${NAME:?message}` as compose fills them in; a variable the test does not set fails loudly. */
function interpolate(text: string): string {
  return text.replace(/\$\{(\w+)(?::?[?-][^}]*)?\}/g, (_m, name: string) => {
    const v = PASSWORDS[name];
    if (v === undefined) throw new Error(`the compose file reads \${${name}}, which this test does not set`);
    return v;
  });
}

describe('docker compose files (real servers, no container engine)', function () {
  this.timeout(180_000);
  const dir = mkdtempSync(join(tmpdir(), 'dynamo-compose-'));
  let nats: ServerProcess;
  const redis = new Map<string, ServerProcess>();
  /** The compose host names, pointed at servers on free loopback ports; compose's variables filled in. */
  const local = (env: Record<string, string>) => {
    const out: Record<string, string> = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, interpolate(v)]));
    out['DYNAMO_NATS_URL'] = nats.url;
    const host = /^redis:\/\/(redis-n\d+):6379$/.exec(env['DYNAMO_REDIS_URL'] ?? '');
    if (host) out['DYNAMO_REDIS_URL'] = redis.get(host[1]!)!.url;
    return out;
  };

  before(async () => {
    // NATS as compose runs it: docker/nats.conf, its passwords from the environment.
    mkdirSync(join(dir, 'nats'), { recursive: true });
    copyFileSync(join(ROOT, 'docker', 'nats.conf'), join(dir, 'nats', 'docker-nats.conf'));
    nats = await startNatsServer(join(dir, 'nats'), undefined, 'include "docker-nats.conf"\n', { ...process.env, ...PASSWORDS });
    for (const r of ['redis-n1', 'redis-n2', 'redis-n3']) redis.set(r, await startRedisServer(join(dir, r)));
  });
  after(async () => {
    await Promise.all([...redis.values()].map((r) => r.stop()));
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const file of ['compose.yaml', 'compose.split.yaml']) {
    it(`${file}: every command passes --check-config, each node has its own Redis, every actor of every node runs exactly once`, async () => {
      const services = dynamoServices(file);
      expect(services.size).to.be.at.least(3);
      const hosted = new Map<string, number>();
      const redisOf = new Map<string, Set<string>>();
      for (const [name, svc] of services) {
        expect(svc.args[0], `${name} runs dynamo node`).to.equal('node');
        const r = await promisify(execFile)(process.execPath, [CLI, ...svc.args, '--check-config'], { env: { ...process.env, ...local(svc.env) } }).catch(
          (e: { code: number; stderr: string }) => e,
        );
        expect((r as { code?: number }).code ?? 0, `${name}: ${(r as { stderr: string }).stderr}`).to.equal(0);
        const p = placement(svc);
        for (const a of p.actors) hosted.set(`${p.node}/${a}`, (hosted.get(`${p.node}/${a}`) ?? 0) + 1);
        redisOf.set(p.node, (redisOf.get(p.node) ?? new Set()).add(p.redis));
      }
      for (const node of ['n1', 'n2', 'n3']) for (const a of ACTORS) expect(hosted.get(`${node}/${a}`), `${node}'s ${a}`).to.equal(1);
      expect(hosted.size).to.equal(12);
      const urls = [...redisOf.values()].map((s) => [...s]);
      for (const u of urls) expect(u).to.have.length(1);
      expect(new Set(urls.flat()).size, 'no two nodes share a Redis').to.equal(3);
    });
  }

  it("compose.yaml's console service serves the console for the cluster's NATS", async () => {
    const consoles = dynamoServices('compose.yaml', 'console');
    expect([...consoles.keys()]).to.deep.equal(['console']);
    const svc = consoles.get('console')!;
    // Its own port and loopback here; the rest of the command as the container runs it.
    const args = svc.args.map((a, i) => (svc.args[i - 1] === '--port' ? '0' : svc.args[i - 1] === '--host' ? '127.0.0.1' : a));
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...local(svc.env) } });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(() => /http:\/\/localhost:\d+/.test(out) || child.exitCode !== null, 15_000, 'the console to print its URL');
      const url = /(http:\/\/localhost:\d+)\/\?token=([\w-]+)/.exec(out);
      expect(url, out).to.not.equal(null);
      expect(out).to.contain(`console for the cluster at ${nats.url}`);
      expect((await fetch(`${url![1]}/api/state`)).status).to.equal(401);
      expect(await (await fetch(`${url![1]}/healthz`)).json(), 'the health check needs no token').to.deep.equal({ ok: true });
      const state = (await (await fetch(`${url![1]}/api/state?token=${url![2]}`)).json()) as { prefix: string };
      expect(state.prefix).to.equal('dynamo');
    } finally {
      child.kill('SIGTERM');
      await exited(child);
    }
    expect(child.exitCode).to.equal(0);
  });

  it('--check-config exits 2 for a bad flag, a server that does not answer, or a refused login', async () => {
    const node = { DYNAMO_NATS_USER: 'node', DYNAMO_NATS_PASSWORD: PASSWORDS['DYNAMO_NODE_PASSWORD'] };
    const run = (args: string[], login: Record<string, string | undefined> = node) =>
      promisify(execFile)(process.execPath, [CLI, 'node', '--id', 'n1', ...args, '--check-config'], { env: { ...process.env, ...login } }).then(
        () => 0,
        (e: { code: number }) => e.code,
      );
    expect(await run(['--nats', nats.url, '--redis', redis.get('redis-n1')!.url, '--actors', 'node,cook'])).to.equal(2);
    expect(await run(['--nats', nats.url, '--redis', 'redis://127.0.0.1:1'])).to.equal(2);
    expect(await run(['--nats', nats.url, '--redis', redis.get('redis-n1')!.url])).to.equal(0);
    expect(await run(['--nats', nats.url, '--redis', redis.get('redis-n1')!.url], { DYNAMO_NATS_USER: 'node', DYNAMO_NATS_PASSWORD: 'wrong' })).to.equal(2);
  });

  describe("compose.split.yaml's commands as plain processes", () => {
    const procs = new Map<string, ChildProcess>();
    /** Each process's log, shown when a test fails. */
    const logs = new Map<string, string>();
    let client: NatsTransport;
    const services = dynamoServices('compose.split.yaml');
    const start = (name: string) => {
      const svc = services.get(name)!;
      // As a container would, in the foreground; stdin held so the process ends with this test.
      const child = spawn(process.execPath, [CLI, ...svc.args], {
        stdio: ['pipe', 'ignore', 'pipe'],
        env: { ...process.env, ...local(svc.env), DYNAMO_SUPERVISED: '1' },
      });
      child.stderr!.on('data', (d: Buffer) => logs.set(name, (logs.get(name) ?? '') + d.toString()));
      procs.set(name, child);
    };
    const ask = async <T>(subject: string, body: unknown, timeoutMs = 3000): Promise<T> =>
      decodeJson<T>(await client.request(subject, JSON.stringify(body), timeoutMs));
    const stateOf = (viewer: string, node: string) => memberState(client, viewer, node);

    before(async () => {
      for (const r of redis.values()) {
        const c = new Redis(r.url);
        await c.flushall();
        c.disconnect();
      }
      client = await NatsTransport.connect(nats.url, 'compose-test', { user: 'operator', password: PASSWORDS['DYNAMO_OPERATOR_PASSWORD'] });
      for (const name of services.keys()) start(name);
      await waitAllUp(client, ['n1', 'n2', 'n3'], 40_000, 'the split cluster up as n1, n2 and n3 each see it');
    });
    after(async () => {
      for (const p of procs.values()) p.kill('SIGTERM');
      await Promise.all([...procs.values()].map((p) => exited(p)));
      await client?.close();
    });

    it('serves puts and gets on every node, and anti-entropy in its own process refills n1', async () => {
      for (let i = 0; i < 60; i++) {
        const via = i % 2 ? 'dynamo.kv' : `dynamo.node.n${(i % 3) + 1}.kv`;
        expect(await ask(`${via}.put`, { key: `split-${i}`, value: i, w: 3 }), `put split-${i}`).to.include({ ok: true });
      }
      for (let i = 0; i < 60; i++) expect(await ask('dynamo.node.n1.kv.get', { key: `split-${i}`, r: 3 })).to.deep.include({ ok: true, values: [i] });
      // n1's Redis loses everything; only n1-ae (and the peers' anti-entropy) can bring it back.
      const n1 = new RedisStorage(redis.get('redis-n1')!.url);
      try {
        const raw = new Redis(redis.get('redis-n1')!.url);
        await raw.flushall();
        raw.disconnect();
        await waitFor(async () => (await n1.keyCount()) >= 60, 60_000, 'n1 refilled by anti-entropy');
      } finally {
        await n1.close();
      }
    });

    it("killing n1's gossiper process makes n1 look down to the others while its coordinator serves; restarting it brings n1 back", async () => {
      procs.get('n1-gossip')!.kill('SIGKILL');
      await exited(procs.get('n1-gossip')!);
      await waitFor(async () => (await stateOf('n2', 'n1')) === 'down' && (await stateOf('n3', 'n1')) === 'down', 20_000, 'n1 down as n2 and n3 see it');
      for (let i = 0; i < 10; i++) {
        expect(await ask('dynamo.node.n1.kv.put', { key: `headless-${i}`, value: i, w: 2 }), `put via n1 with its gossiper gone`).to.include({ ok: true });
        expect(await ask('dynamo.node.n1.kv.get', { key: `headless-${i}`, r: 2 })).to.deep.include({ ok: true, values: [i] });
      }
      logs.delete('n1-gossip');
      start('n1-gossip');
      await waitFor(async () => (await stateOf('n2', 'n1')) === 'up' && (await stateOf('n3', 'n1')) === 'up', 30_000, 'n1 up again as n2 and n3 see it').catch(
        (e: Error) => {
          throw new Error(`${e.message}; the restarted gossiper's log:\n${logs.get('n1-gossip') ?? '(nothing)'}`);
        },
      );
    });

    it('refuses a second process for an actor that already runs', async () => {
      const svc = services.get('n1-ae')!;
      const r = await promisify(execFile)(process.execPath, [CLI, ...svc.args], { env: { ...process.env, ...local(svc.env) }, timeout: 30_000 }).then(
        () => ({ code: 0, stderr: '' }),
        (e: { code: number; stderr: string }) => e,
      );
      expect(r.code).to.equal(1);
      expect(r.stderr).to.match(/anti-entropy actor of node "n1" is already running in another process/);
    });
  });
});
