import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { ACTORS } from '../../src/config.js';
import { RedisStorage } from '../../src/storage/redis-storage.js';
import { NatsTransport } from '../../src/transport/nats-transport.js';
import { decodeJson } from '../../src/transport/transport.js';
import { dockerEngine, type DockerEngine } from '../helpers/docker-engine.js';
import { memberState, waitAllUp } from '../helpers/members.js';
import { waitFor } from '../helpers/wait.js';

// The image and both compose files on a real container engine: docker/offline-images.sh stands in
// for the public base images (no registry is reachable here), docker/compose.host.yaml puts every
// service on the host's network (no bridge networks), each on a loopback address of its own.

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const IMAGE = 'dynamo-kv';
/** The engine's environment (DOCKER_HOST when the test runs an engine of its own); set in before(). */
let engineEnv: NodeJS.ProcessEnv = process.env;

interface Run {
  stdout: string;
  stderr: string;
}

/** A command to its end; a failure carries the command and what it printed. */
async function run(cmd: string, args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Run> {
  try {
    return await promisify(execFile)(cmd, args, {
      cwd: ROOT,
      env: options.env ?? engineEnv,
      timeout: options.timeoutMs ?? 120_000,
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (e) {
    const err = e as Error & Partial<Run>;
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${err.stdout ?? ''}`.slice(0, 8000));
  }
}

const docker = (...args: string[]) => run('docker', args).then((r) => r.stdout.trim());

/** Whether addr:port can be listened on now. */
function free(addr: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, addr, () => s.close(() => resolve(true)));
  });
}

/** compose.host.yaml's addresses in a random 127.x.y.0/24 whose ports are all free now. */
async function hostAddresses(): Promise<Record<string, string>> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const net = `127.${randomInt(100, 250)}.${randomInt(0, 250)}`;
    const addr: Record<string, string> = {
      DYNAMO_ADDR_NATS: `${net}.1`,
      DYNAMO_ADDR_REDIS_N1: `${net}.11`,
      DYNAMO_ADDR_REDIS_N2: `${net}.12`,
      DYNAMO_ADDR_REDIS_N3: `${net}.13`,
      DYNAMO_ADDR_N1: `${net}.21`,
      DYNAMO_ADDR_N2: `${net}.22`,
      DYNAMO_ADDR_N3: `${net}.23`,
      DYNAMO_ADDR_CONSOLE: `${net}.30`,
    };
    const ports: [string, number][] = [
      [addr['DYNAMO_ADDR_NATS']!, 4222],
      ...['N1', 'N2', 'N3'].map((n) => [addr[`DYNAMO_ADDR_REDIS_${n}`]!, 6379] as [string, number]),
      ...['N1', 'N2', 'N3'].map((n) => [addr[`DYNAMO_ADDR_${n}`]!, 9464] as [string, number]),
      [addr['DYNAMO_ADDR_CONSOLE']!, 8080],
    ];
    if ((await Promise.all(ports.map(([a, p]) => free(a, p)))).every(Boolean)) return addr;
  }
  throw new Error('no 127.x.y.0/24 with ports 4222, 6379, 9464 and 8080 free after 10 tries');
}

/** One compose project on the engine: up, health, the containers of a service, down. */
class Project {
  readonly name = `dynamotest${process.pid}${randomBytes(2).toString('hex')}`;
  readonly env: NodeJS.ProcessEnv;
  constructor(
    readonly file: string,
    readonly addr: Record<string, string>,
    passwords: Record<string, string>,
  ) {
    this.env = { ...engineEnv, ...passwords, ...addr };
  }
  compose(args: string[], timeoutMs = 180_000): Promise<Run> {
    return run('docker-compose', ['-p', this.name, '-f', `docker/${this.file}`, '-f', 'docker/compose.host.yaml', ...args], { env: this.env, timeoutMs });
  }
  async id(service: string): Promise<string> {
    const id = (await this.compose(['ps', '-q', service])).stdout.trim();
    if (!id) throw new Error(`${this.file}: no container for ${service}`);
    return id;
  }
  /** "running healthy", "running starting", "exited ", ... for the service's container. */
  async state(service: string): Promise<string> {
    return docker('inspect', '-f', '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}', await this.id(service));
  }
  async waitHealthy(services: string[], timeoutMs: number): Promise<void> {
    const states = new Map<string, string>();
    await waitFor(
      async () => {
        for (const s of services) states.set(s, await this.state(s));
        return [...states.values()].every((st) => st === 'running healthy');
      },
      timeoutMs,
      `${this.file}'s containers healthy`,
      500,
    ).catch(async (e: Error) => {
      const logs = await this.compose(['logs', '--no-color', '--tail', '20']).catch((l: Error) => ({ stdout: l.message }));
      throw new Error(`${e.message}: ${[...states].map(([s, st]) => `${s} ${st}`).join(', ')}\n${logs.stdout}`);
    });
  }
  /** Everything compose made for this project that the engine still has. */
  async leftovers(): Promise<string[]> {
    const label = `label=com.docker.compose.project=${this.name}`;
    const [containers, volumes, networks] = await Promise.all([
      docker('ps', '-aq', '--filter', label),
      docker('volume', 'ls', '-q', '--filter', label),
      docker('network', 'ls', '-q', '--filter', label),
    ]);
    return [...containers.split('\n'), ...volumes.split('\n'), ...networks.split('\n')].filter(Boolean);
  }
  down(): Promise<Run> {
    return this.compose(['down', '--volumes', '--remove-orphans', '--timeout', '10']);
  }
}

describe('containers on a real engine: the image, compose.yaml and compose.split.yaml', function () {
  this.timeout(600_000);
  const passwords: Record<string, string> = Object.fromEntries(
    ['NODE', 'CLIENT', 'OPERATOR', 'CART'].map((u) => [`DYNAMO_${u}_PASSWORD`, `pw${randomBytes(12).toString('hex')}`]),
  );

  let engine: DockerEngine | undefined;

  before(async function () {
    this.timeout(900_000);
    await run('docker-compose', ['version', '--short']).catch((e: Error) => {
      throw new Error(`the container tests need docker-compose (apt-get install docker-compose): ${e.message.split('\n')[0]}`);
    });
    engine = await dockerEngine();
    engineEnv = engine.env;
    console.log(`      on ${engine.description}`);
    // Stand-ins for node:20-bookworm-slim, nats:2.10 and redis:7 where they are not here already.
    await run('bash', ['docker/offline-images.sh'], { timeoutMs: 300_000 });
    const started = Date.now();
    // The Dockerfile as a user builds it; --network host because the engine has no bridge.
    await run('docker', ['build', '--network', 'host', '-f', 'docker/Dockerfile', '-t', IMAGE, '.'], { timeoutMs: 900_000 });
    console.log(`      built ${IMAGE} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  });

  after(async () => {
    await engine?.stop();
    engineEnv = process.env;
  });

  it('the image is small, runs as an unprivileged user, and its health check fails for a node that does not serve', async () => {
    const [user, size, check] = (await docker('image', 'inspect', '-f', '{{.Config.User}}|{{.Size}}|{{json .Config.Healthcheck.Test}}', IMAGE)).split('|');
    expect(user).to.equal('node');
    expect(JSON.parse(check!)).to.deep.equal(['CMD', 'dynamo', 'ping']);
    const base = Number(await docker('image', 'inspect', '-f', '{{.Size}}', 'node:20-bookworm-slim'));
    const mb = (n: number) => `${(n / 1e6).toFixed(0)} MB`;
    console.log(`      ${IMAGE}: ${mb(Number(size))} (${mb(Number(size) - base)} over its base image)`);
    // The production stage holds the compiled code and production dependencies, no compiler or tests.
    expect(Number(size) - base, 'bytes over the base image').to.be.below(80e6);
    // The image's own check, run where no node answers: it must fail, and say why.
    const nobody = await run('docker', ['run', '--rm', '--network', 'host', '-e', 'DYNAMO_NATS_URL=nats://127.0.0.1:1', IMAGE, 'ping', 'n1'], {
      timeoutMs: 60_000,
    }).then(
      () => null,
      (e: Error) => e.message,
    );
    expect(nobody, 'dynamo ping with no cluster').to.match(/cannot connect to NATS/);
  });

  describe('compose.yaml with compose.host.yaml', () => {
    let project: Project;
    let client: NatsTransport;
    let addr: Record<string, string>;
    const ask = async <T>(subject: string, body: unknown, timeoutMs = 5000): Promise<T> =>
      decodeJson<T>(await client.request(subject, JSON.stringify(body), timeoutMs));
    before(async () => {
      addr = await hostAddresses();
      project = new Project('compose.yaml', addr, passwords);
      const started = Date.now();
      await project.compose(['up', '-d', '--no-build']);
      await project.waitHealthy(['n1', 'n2', 'n3', 'console'], 120_000);
      console.log(`      compose.yaml: up to healthy in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      client = await NatsTransport.connect(`nats://${addr['DYNAMO_ADDR_NATS']}:4222`, 'containers-test', {
        user: 'operator',
        password: passwords['DYNAMO_OPERATOR_PASSWORD'],
      });
      await waitAllUp(client, ['n1', 'n2', 'n3'], 60_000, 'every node up as every node sees it');
    });
    after(async () => {
      await client?.close();
      await project?.down();
    });

    it('serves puts and gets from the host; the nodes run as an unprivileged user; the console answers its health check only', async () => {
      for (let i = 0; i < 100; i++) expect(await ask('dynamo.kv.put', { key: `c-${i}`, value: i, w: 3 }), `put c-${i}`).to.include({ ok: true });
      for (let i = 0; i < 100; i++)
        expect(await ask(`dynamo.node.n${(i % 3) + 1}.kv.get`, { key: `c-${i}`, r: 2 }), `get c-${i}`).to.deep.include({ ok: true, values: [i] });
      const n1 = await project.id('n1');
      expect(await docker('exec', n1, 'id', '-u')).to.equal('1000');
      // The health check's command in a container of the cluster: 0 for a node that serves, 1 for one that does not answer.
      expect(await docker('exec', n1, 'dynamo', 'ping')).to.equal('n1: serving');
      const absent = await docker('exec', n1, 'dynamo', 'ping', 'n9').then(
        () => null,
        (e: Error) => e.message,
      );
      expect(absent).to.match(/n9: no answer/);
      const consoleAt = `http://${addr['DYNAMO_ADDR_CONSOLE']}:8080`;
      expect((await fetch(`${consoleAt}/healthz`)).status).to.equal(200);
      expect((await fetch(`${consoleAt}/api/state`)).status, 'the console without its token').to.equal(401);
      // Each node's metrics on its own address.
      const metrics = await (await fetch(`http://${addr['DYNAMO_ADDR_N2']}:9464/metrics`)).text();
      expect(metrics).to.match(/^dynamo_/m);
    });

    it("keeps serving with a node's container killed; restarted, the node catches up without client reads", async () => {
      const n2 = await project.id('n2');
      await docker('kill', n2);
      await waitFor(async () => (await project.state('n2')).startsWith('exited'), 30_000, 'n2 exited', 250);
      await waitFor(async () => (await memberState(client, 'n1', 'n2')) === 'down', 30_000, 'n2 down as n1 sees it', 250);
      for (let i = 0; i < 50; i++) expect(await ask('dynamo.kv.put', { key: `k-${i}`, value: i, w: 2 }), `put k-${i} with n2 down`).to.include({ ok: true });
      await docker('start', n2);
      await project.waitHealthy(['n2'], 90_000);
      // n2's own Redis, read directly: hinted handoff and anti-entropy bring the writes it missed.
      const storage = new RedisStorage(`redis://${addr['DYNAMO_ADDR_REDIS_N2']}:6379`);
      try {
        await storage.connect();
        const missing = async () => {
          const out: string[] = [];
          for (let i = 0; i < 50; i++) if ((await storage.read('default', `k-${i}`)).length === 0) out.push(`k-${i}`);
          return out;
        };
        await waitFor(async () => (await missing()).length === 0, 120_000, "n2's replica of every write it missed", 500).catch(async (e: Error) => {
          throw new Error(`${e.message}; still missing: ${(await missing()).join(', ')}`);
        });
      } finally {
        await storage.close();
      }
    });

    it('comes down leaving no container, network or volume behind', async () => {
      expect(await project.leftovers()).to.not.be.empty;
      await client.close();
      await project.down();
      expect(await project.leftovers()).to.deep.equal([]);
    });
  });

  describe('compose.split.yaml with compose.host.yaml', () => {
    let project: Project;
    let addr: Record<string, string>;

    before(async () => {
      addr = await hostAddresses();
      project = new Project('compose.split.yaml', addr, passwords);
      const started = Date.now();
      await project.compose(['up', '-d', '--no-build']);
      await project.waitHealthy(['n1', 'n1-gossip', 'n1-ae', 'n2', 'n3', 'console'], 120_000);
      console.log(`      compose.split.yaml: up to healthy in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    });
    after(async () => {
      await project?.down();
    });

    it("runs each of n1's actors exactly once, each in its own container, and serves", async () => {
      // Each process holds one lease per actor it hosts in its node's Redis (the owner is pid-random).
      const owners = async (node: string) => {
        const redis = new Redis(`redis://${addr[`DYNAMO_ADDR_REDIS_${node.toUpperCase()}`]}:6379`, { lazyConnect: true });
        try {
          await redis.connect();
          return Object.fromEntries(await Promise.all(ACTORS.map(async (a) => [a, await redis.get(`m:lease:${a}`)] as const)));
        } finally {
          redis.disconnect();
        }
      };
      const n1 = await owners('n1');
      for (const a of ACTORS) expect(n1[a], `n1's ${a} lease`).to.be.a('string');
      expect(n1['node']).to.equal(n1['coordinator']);
      expect(new Set([n1['node'], n1['gossiper'], n1['anti-entropy']]).size, "n1's actors in three processes").to.equal(3);
      const n2 = await owners('n2');
      expect(new Set(Object.values(n2)).size, "n2's four actors in one process").to.equal(1);
      expect(Object.values(n2)[0]).to.be.a('string');
      // Each of n1's containers runs one dynamo process, with the actors its command names.
      for (const [service, actors] of [
        ['n1', 'node,coordinator'],
        ['n1-gossip', 'gossiper'],
        ['n1-ae', 'anti-entropy'],
      ] as const) {
        const top = await docker('top', await project.id(service), '-o', 'pid,args');
        const procs = top.split('\n').filter((l) => /dynamo node/.test(l) && !l.includes('--check-config'));
        expect(procs, `${service}: ${top}`).to.have.length(1);
        expect(procs[0]).to.contain(`--actors ${actors}`);
      }
      const client = await NatsTransport.connect(`nats://${addr['DYNAMO_ADDR_NATS']}:4222`, 'containers-test', {
        user: 'client',
        password: passwords['DYNAMO_CLIENT_PASSWORD'],
      });
      try {
        const ask = async (subject: string, body: unknown) => decodeJson(await client.request(subject, JSON.stringify(body), 5000));
        await waitFor(
          async () => ((await ask('dynamo.node.n1.kv.put', { key: 'split', value: 1, w: 3 }).catch(() => null)) as { ok?: boolean } | null)?.ok === true,
          60_000,
          'a W=3 put through n1 (every node up as n1 sees it)',
          500,
        );
        for (let i = 0; i < 30; i++) expect(await ask(`dynamo.node.n${(i % 3) + 1}.kv.put`, { key: `s-${i}`, value: i, w: 3 })).to.include({ ok: true });
        for (let i = 0; i < 30; i++) expect(await ask('dynamo.node.n1.kv.get', { key: `s-${i}`, r: 3 })).to.deep.include({ ok: true, values: [i] });
      } finally {
        await client.close();
      }
    });

    it('comes down leaving no container, network or volume behind', async () => {
      expect(await project.leftovers()).to.not.be.empty;
      await project.down();
      expect(await project.leftovers()).to.deep.equal([]);
    });
  });
});
