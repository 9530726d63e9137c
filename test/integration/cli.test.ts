import { expect } from 'chai';
import { Redis } from 'ioredis';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { isAlive, type ClusterFile } from '../../src/cli/cluster-file.js';
import { exited, startRedisServer } from '../../src/cli/servers.js';
import { waitFor } from '../helpers/wait.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function dynamo(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', env: { ...process.env, DYNAMO_NATS_URL: '', ...env }, timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** `dynamo up` in the background; resolves once it says the nodes serve. */
async function up(cwd: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, [CLI, 'up', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DYNAMO_NATS_URL: '', ...env } });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  await waitFor(() => /serving\. Try:/.test(output) || child.exitCode !== null, 30_000, 'dynamo up to serve');
  if (child.exitCode !== null) throw new Error(`dynamo up exited ${child.exitCode}:\n${output}`);
  return { child, output: () => output };
}

/** `path` on the server of `url`, keeping its query (the console's token) unless told not to. */
function at(url: string, path: string, keepQuery = true): string {
  const u = new URL(url);
  u.pathname = path;
  if (!keepQuery) u.search = '';
  return u.href;
}

/** The addresses a port listens on, as /proc/net/tcp lists them (hex, e.g. 0100007F for 127.0.0.1). */
function listeningAddresses(port: number): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[1]?.endsWith(`:${hexPort}`) && f[3] === '0A')
    .map((f) => f[1]!.split(':')[0]!);
}

const clusterFile = (cwd: string) => JSON.parse(readFileSync(join(cwd, '.dynamo', 'cluster.json'), 'utf8')) as ClusterFile;

describe('command line (real processes)', function () {
  this.timeout(120_000);
  const cwd = mkdtempSync(join(tmpdir(), 'dynamo-cli-'));
  const started: ChildProcess[] = [];
  // A failed test may leave an `up` running in the shared folder: stop it the way a user would,
  // after each test, so one failure does not turn into "already running" in the next tests.
  afterEach(async () => {
    for (const c of started.splice(0)) {
      if (c.exitCode !== null || c.signalCode !== null) continue;
      c.kill('SIGTERM');
      await exited(c);
    }
  });
  after(() => rmSync(cwd, { recursive: true, force: true }));

  it('brings up 3 nodes; put, get, delete and status work; SIGTERM leaves no process behind', async () => {
    const u = await up(cwd);
    started.push(u.child);
    const file = clusterFile(cwd);
    expect(file.nodes.map((n) => n.id)).to.deep.equal(['n1', 'n2', 'n3']);
    expect(file.children).to.have.length(7); // nats, 3 redis, 3 nodes

    const put = dynamo(cwd, ['put', 'cart:alice', '["book"]']);
    expect(put.code, put.err).to.equal(0);
    expect(JSON.parse(put.out)).to.have.property('ok', true);
    const get = dynamo(cwd, ['get', 'cart:alice']);
    expect(get.code, get.err).to.equal(0);
    expect(JSON.parse(get.out)).to.deep.include({ found: true, values: [['book']] });

    const plain = dynamo(cwd, ['put', 'greeting', 'hello world']);
    expect(plain.code).to.equal(0);
    expect(JSON.parse(dynamo(cwd, ['get', 'greeting']).out).values).to.deep.equal(['hello world']);
    expect(dynamo(cwd, ['delete', 'greeting']).code).to.equal(0);
    expect(JSON.parse(dynamo(cwd, ['get', 'greeting']).out)).to.include({ found: false });

    // Keys: the live ones, one a line; a prefix; a bad flag value.
    expect(dynamo(cwd, ['put', 'cart:bob', '[]']).code).to.equal(0);
    const keys = dynamo(cwd, ['keys']);
    expect(keys.code, keys.err).to.equal(0);
    expect(keys.out.trim().split('\n')).to.deep.equal(['cart:alice', 'cart:bob']);
    expect(dynamo(cwd, ['keys', '--prefix', 'cart:b']).out.trim()).to.equal('cart:bob');
    expect(dynamo(cwd, ['keys', '--limit', '1']).out.trim()).to.equal('cart:alice');
    expect(dynamo(cwd, ['keys', '--limit', 'x']).code).to.equal(2);

    // A value with a time to live reads back, then is gone; bad durations are usage errors.
    expect(dynamo(cwd, ['put', 'session', '"s"', '--ttl', '700ms']).code).to.equal(0);
    expect(JSON.parse(dynamo(cwd, ['get', 'session']).out)).to.include({ found: true });
    await waitFor(() => JSON.parse(dynamo(cwd, ['get', 'session']).out).found === false, 10_000, 'session expired');
    expect(dynamo(cwd, ['put', 'session', '1', '--ttl', 'soon']).code).to.equal(2);
    expect(dynamo(cwd, ['delete', 'session', '--ttl', '1s']).code).to.equal(2);

    const status = dynamo(cwd, ['status']);
    expect(status.code, status.err).to.equal(0);
    expect(status.out).to.match(/3\/3 nodes up/);
    for (const id of ['n1', 'n2', 'n3']) expect(status.out).to.match(new RegExp(`^${id}\\s+up`, 'm'));
    // Live keys and tombstones apart: cart:alice and cart:bob hold values; greeting (deleted) and session (expired) do not.
    await waitFor(
      () => {
        const members = JSON.parse(dynamo(cwd, ['status', '--json']).out).members as { keys: number; tombstones: number }[];
        return members.every((m) => m.keys === 2 && m.tombstones === 2);
      },
      10_000,
      'every replica with 2 live keys and 2 tombstones',
    );

    const bad = dynamo(cwd, ['get', 'k', '--r', 'two']);
    expect(bad.code).to.equal(2);
    const refused = dynamo(cwd, ['put', 'k', '1', '--w', '4']);
    expect(refused.code).to.equal(1);
    expect(JSON.parse(refused.out).error.code).to.equal('BAD_REQUEST');

    u.child.kill('SIGTERM');
    await exited(u.child);
    expect(u.child.exitCode).to.equal(0);
    for (const c of file.children) expect(isAlive(c.pid), `${c.name} (pid ${c.pid}) still running`).to.equal(false);
  });

  it("up --inspect serves the web console, a Stately inspector relay and each node's metrics, all stopped with it", async () => {
    // The console's port is taken: up serves it on another one rather than failing.
    const blocker = createServer().listen(0, '127.0.0.1');
    await once(blocker, 'listening');
    const taken = (blocker.address() as AddressInfo).port;
    const u = await up(cwd, ['--inspect', '--console-port', String(taken)]).finally(() => blocker.close());
    started.push(u.child);
    const out = u.output();
    const consoleUrl = /Web console: (http:\/\/\S+)/.exec(out)?.[1];
    const relayUrl = /Stately inspector \(its UI needs the internet\): (http:\/\/\S+)/.exec(out)?.[1];
    const metrics = [...out.matchAll(/(n\d) (http:\/\/127\.0\.0\.1:\d+\/metrics)/g)].map((m) => [m[1]!, m[2]!] as const);
    expect(consoleUrl, out).to.be.a('string');
    expect(new URL(consoleUrl!).port).to.not.equal(String(taken));
    expect(relayUrl, out).to.be.a('string');
    expect(metrics.map(([id]) => id)).to.deep.equal(['n1', 'n2', 'n3']);

    const page = await fetch(consoleUrl!);
    expect(page.status).to.equal(200);
    expect(await page.text()).to.contain('<title>dynamo console</title>');
    // Without the token the printed URL carries, the console shows nothing.
    expect(new URL(consoleUrl!).searchParams.get('token')).to.have.length.of.at.least(16);
    for (const path of ['/', '/api/state', '/api/charts', '/ws']) expect((await fetch(at(consoleUrl!, path, false))).status, path).to.equal(401);
    const token = new URL(consoleUrl!).searchParams.get('token')!;
    expect((await fetch(`${at(consoleUrl!, '/api/state', false)}?token=${token}&token=${token}`)).status, 'a repeated token').to.equal(401);
    await waitFor(
      async () => ((await (await fetch(at(consoleUrl!, '/api/state'))).json()) as { status: { members: unknown[] } | null }).status?.members.length === 3,
      10_000,
      'the console to see 3 members',
    );
    const relay = await fetch(relayUrl!);
    expect(await relay.text()).to.contain('stately.ai/inspect');
    // The relay carries keys and values: loopback only, unless told otherwise.
    expect(listeningAddresses(Number(new URL(relayUrl!).port))).to.deep.equal(['0100007F']);
    expect(dynamo(cwd, ['put', 'metrics:probe', '1']).code).to.equal(0);
    for (const [id, url] of metrics) {
      // A node's first gossip round comes one interval after it joins: wait for it, then the counter must be there and moving.
      const rounds = new RegExp(`^dynamo_gossip_rounds_total\\{node="${id}"\\} [1-9]`, 'm');
      await waitFor(async () => rounds.test(await (await fetch(url)).text()), 10_000, `${id}'s metrics to count a gossip round`);
      const text = await (await fetch(url)).text();
      expect(text).to.match(rounds);
      expect(text).to.match(new RegExp(`^dynamo_process_resident_memory_bytes\\{node="${id}"\\} [1-9]`, 'm'));
    }

    const file = clusterFile(cwd);
    u.child.kill('SIGTERM');
    await exited(u.child);
    expect(u.child.exitCode).to.equal(0);
    for (const c of file.children) expect(isAlive(c.pid), `${c.name} (pid ${c.pid}) still running`).to.equal(false);
    for (const url of [consoleUrl!, relayUrl!, metrics[0]![1]]) {
      const refused = await fetch(url).then(
        () => false,
        () => true,
      );
      expect(refused, `${url} still answers`).to.equal(true);
    }
  });

  it('refuses bad observability flags with exit 2 and a message that names the flag', () => {
    const cases: [string[], RegExp][] = [
      [['node', '--id', 'n1', '--inspect-url', 'ws://127.0.0.1:1'], /--inspect-url needs --inspect/],
      [['console', '--console-token', 'short'], /--console-token must be at least 16/],
      [['node', '--id', 'n1', '--inspect', '--inspect-url', 'http://127.0.0.1:1'], /must be a ws:\/\/ or wss:\/\/ URL/],
      [['node', '--id', 'n1', '--inspect-runs-per-second', 'lots'], /--inspect-runs-per-second must be an integer from 0 to 10000/],
      [['node', '--id', 'n1', '--metrics-port', '70000'], /--metrics-port must be an integer from 0 to 65535/],
      [['console', '--port', 'abc'], /--port must be an integer/],
      [['console', '--prefix', 'a..b'], /not a valid NATS subject prefix/],
      [['up', '--console-port', '99999'], /--console-port must be an integer/],
    ];
    for (const [args, message] of cases) {
      const r = dynamo(cwd, args);
      expect(r.code, `${args.join(' ')}: ${r.err}`).to.equal(2);
      expect(r.err, args.join(' ')).to.match(message);
    }
  });

  it('keeps the data across a restart from the same directory', async () => {
    const u = await up(cwd);
    started.push(u.child);
    expect(JSON.parse(dynamo(cwd, ['get', 'cart:alice']).out)).to.deep.include({ values: [['book']] });
    u.child.kill('SIGINT');
    await exited(u.child);
  });

  it('leaves no process behind when `up` itself is killed with SIGKILL', async () => {
    const u = await up(cwd, ['--nodes', '1']);
    started.push(u.child);
    const file = clusterFile(cwd);
    u.child.kill('SIGKILL');
    await exited(u.child);
    // Nodes see their stdin close; servers get the parent-death signal.
    for (const c of file.children) await waitFor(() => !isAlive(c.pid), 10_000, `${c.name} (pid ${c.pid}) to be gone`);
    // And the next `up` in the same directory starts cleanly over the stale cluster.json.
    const next = await up(cwd, ['--nodes', '1']);
    started.push(next.child);
    next.child.kill('SIGTERM');
    await exited(next.child);
    expect(next.child.exitCode).to.equal(0);
  });

  it('lets a node started by hand join, shows it in status, and takes it out with `dynamo leave`', async () => {
    const u = await up(cwd);
    started.push(u.child);
    const file = clusterFile(cwd);
    for (let i = 0; i < 8; i++) expect(dynamo(cwd, ['put', `cli-${i}`, String(i)]).code).to.equal(0);
    const redis = await startRedisServer(join(cwd, 'extra-n4'));
    const redis5 = await startRedisServer(join(cwd, 'extra-n5'));
    const n4 = spawn(process.execPath, [CLI, 'node', '--id', 'n4', '--nats', file.natsUrl, '--redis', redis.url, '--seeds', 'n1'], { cwd, stdio: 'ignore' });
    started.push(n4);
    try {
      await waitFor(() => /^n4\s+up/m.test(dynamo(cwd, ['status']).out), 30_000, 'n4 up in dynamo status');
      const row = dynamo(cwd, ['status'])
        .out.split('\n')
        .find((l) => l.startsWith('n4'))!;
      expect(row).to.match(/\s256\s/); // its tokens
      expect(Number(/(\d+\.\d)%/.exec(row)![1])).to.be.greaterThan(5); // its share of the ring

      // A second node started with the same id refuses to start.
      const dup = dynamo(cwd, ['node', '--id', 'n4', '--nats', file.natsUrl, '--redis', redis.url]);
      expect(dup.code).to.equal(1);
      expect(dup.err).to.match(/already running/);

      const leave = dynamo(cwd, ['leave', 'n4']);
      expect(leave.code, leave.err).to.equal(0);
      expect(leave.out).to.match(/n4 left the cluster/);
      await exited(n4);
      expect(dynamo(cwd, ['status']).out).to.match(/^n4\s+left/m);
      for (let i = 0; i < 8; i++) expect(JSON.parse(dynamo(cwd, ['get', `cli-${i}`]).out).values).to.deep.equal([i]);

      // A node started with --leave-on-exit leaves (rather than just stops) on SIGTERM.
      const n5 = spawn(process.execPath, [CLI, 'node', '--id', 'n5', '--nats', file.natsUrl, '--redis', redis5.url, '--seeds', 'n1', '--leave-on-exit'], {
        cwd,
        stdio: 'ignore',
      });
      started.push(n5);
      await waitFor(() => /^n5\s+up/m.test(dynamo(cwd, ['status']).out), 30_000, 'n5 up');
      n5.kill('SIGTERM');
      await exited(n5);
      expect(n5.exitCode).to.equal(0);
      expect(dynamo(cwd, ['status']).out).to.match(/^n5\s+left/m);
    } finally {
      n4.kill('SIGKILL');
      await redis.stop();
      await redis5.stop();
    }
    u.child.kill('SIGTERM');
    await exited(u.child);
  });

  it('shows a killed node down and keeps serving', async () => {
    const u = await up(cwd);
    started.push(u.child);
    const n2 = clusterFile(cwd).children.find((c) => c.name === 'n2')!;
    process.kill(n2.pid, 'SIGKILL');
    await waitFor(() => /^n2\s+down/m.test(dynamo(cwd, ['status']).out), 15_000, 'n2 down in dynamo status');
    expect(dynamo(cwd, ['put', 'after-kill', '1']).code).to.equal(0);
    expect(JSON.parse(dynamo(cwd, ['get', 'after-kill']).out).values).to.deep.equal([1]);
    u.child.kill('SIGTERM');
    await exited(u.child);
  });

  it('refills a node whose Redis was flushed, and `dynamo status` shows the cluster out of sync, then in sync', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dynamo-cli-ae-'));
    try {
      // The interval reaches the nodes through the environment `up` passes on.
      const u = await up(dir, [], { DYNAMO_ANTI_ENTROPY_INTERVAL: '2000' });
      started.push(u.child);
      for (let i = 0; i < 30; i++) expect(dynamo(dir, ['put', `k${i}`, String(i), '--w', '3']).code).to.equal(0);
      const status = () =>
        JSON.parse(dynamo(dir, ['status', '--json']).out) as { members: { id: string; keys: number; antiEntropy: { ranges: { inSync: boolean | null }[] } }[] };
      const n3 = () => status().members.find((m) => m.id === 'n3')!;
      await waitFor(() => status().members.every((m) => m.antiEntropy.ranges.length === 2 && m.antiEntropy.ranges.every((r) => r.inSync)), 20_000, 'in sync');
      const redis = new Redis(clusterFile(dir).nodes.find((n) => n.id === 'n3')!.redisUrl);
      try {
        await redis.flushall();
      } finally {
        redis.disconnect();
      }
      let sawOutOfSync = false;
      let last = '';
      await waitFor(
        () => {
          const text = dynamo(dir, ['status']).out;
          // Whichever node's exchange with n3 comes first finds the difference and says so.
          sawOutOfSync ||= /^n\d\s.*(out of sync|repairing)/m.test(text);
          last = text;
          return sawOutOfSync && /^n3\s.*\s30\s.*in sync/m.test(text);
        },
        30_000,
        'n3 out of sync and then back in sync with its 30 keys',
      ).catch((e) => {
        throw new Error(`${(e as Error).message} (out of sync seen: ${sawOutOfSync}); last status:\n${last}`);
      });
      expect(n3().keys).to.equal(30);
      u.child.kill('SIGTERM');
      await exited(u.child);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("walks docs/protocol.md's orset cart story: a partition, both sides change the cart, and after the heal both changes are there", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dynamo-cli-cart-'));
    try {
      const u = await up(dir, ['--allow-faults'], { DYNAMO_GOSSIP_INTERVAL: '200', DYNAMO_SUSPECT_AFTER: '600', DYNAMO_DOWN_AFTER: '1000' });
      started.push(u.child);
      const ok = (args: string[]) => {
        const r = dynamo(dir, args);
        expect(r.code, `dynamo ${args.join(' ')}: ${r.out}${r.err}`).to.equal(0);
        return r.out;
      };
      ok(['bucket', 'set', 'cart', '--resolver', 'orset']);
      expect(JSON.parse(ok(['bucket', 'get', 'cart'])).props.resolver).to.equal('orset');
      ok(['put', 'alice', '--bucket', 'cart', '--op', '{"add":["milk","eggs"]}', '--w', '3']);
      ok(['faults', 'partition', 'n1,n2', 'n3']);
      await waitFor(
        () => {
          const seen = dynamo(dir, ['status', '--node', 'n3']).out;
          return /^n1\s+down/m.test(seen) && /^n2\s+down/m.test(seen);
        },
        15_000,
        'n3 to see n1 and n2 down',
      );
      ok(['put', 'alice', '--bucket', 'cart', '--op', '{"remove":["milk"],"add":["jam"]}', '--node', 'n1']);
      ok(['put', 'alice', '--bucket', 'cart', '--op', '{"add":["bread"]}', '--node', 'n3', '--w', '1']);
      ok(['faults', 'heal']);
      await waitFor(() => ['n1', 'n2', 'n3'].every((n) => dynamo(dir, ['status', '--node', n]).code === 0), 15_000, 'every node up again, as each sees it');
      expect(JSON.parse(ok(['get', 'alice', '--bucket', 'cart', '--r', '3'])).values).to.deep.equal([['bread', 'eggs', 'jam']]);
      // Bad input to the bucket and op commands: clear refusals.
      const unknown = dynamo(dir, ['bucket', 'set', 'x', '--resolver', 'nope']);
      expect(unknown.code).to.equal(1);
      expect(JSON.parse(unknown.out).error.code).to.equal('BAD_REQUEST');
      const badOp = dynamo(dir, ['put', 'alice', '--bucket', 'cart', '--op', '{"incr":1}']);
      expect(badOp.code).to.equal(1);
      expect(JSON.parse(badOp.out).error.code).to.equal('BAD_REQUEST');
      expect(dynamo(dir, ['put', 'alice', '--op', 'not json']).code).to.equal(2);
      u.child.kill('SIGTERM');
      await exited(u.child);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('prints the placement comparison of the lecture', () => {
    const r = dynamo(cwd, ['ring', 'simulate', '--nodes', '10', '--keys', '20000', '--json']);
    expect(r.code).to.equal(0);
    const { strategies } = JSON.parse(r.out) as { strategies: { strategy: string; movedOnAdd: number; movedOnRemove: number; maxOverMean: number }[] };
    const [modN, single, vnodes] = strategies;
    expect(modN!.movedOnAdd).to.be.within(0.85, 0.95); // about N/(N+1)
    expect(vnodes!.movedOnAdd).to.be.within(0.05, 0.14); // about 1/(N+1)
    expect(vnodes!.movedOnRemove).to.be.within(0.05, 0.15); // about 1/N
    expect(vnodes!.maxOverMean).to.be.below(single!.maxOverMean);
    expect(dynamo(cwd, ['ring', 'simulate']).out).to.match(/MD5 mod N/);
  });

  it('names the package to install when a server binary is missing (exit 2)', () => {
    const r = dynamo(cwd, ['up'], { DYNAMO_NATS_SERVER: '/nonexistent/nats-server' });
    expect(r.code).to.equal(2);
    expect(r.err).to.match(/apt-get install -y nats-server/);
  });

  it('rejects bad usage with exit 2', () => {
    expect(dynamo(cwd, ['up', '--nodes', 'many']).code).to.equal(2);
    expect(dynamo(cwd, ['get']).code).to.equal(2);
    expect(dynamo(cwd, ['frobnicate']).code).to.equal(2);
    expect(dynamo(cwd, ['node', '--bogus']).code).to.equal(2);
    expect(dynamo(cwd, ['node']).err).to.match(/--id is required/);
  });

  it('says clearly when it cannot reach NATS (exit 1)', () => {
    const r = dynamo(cwd, ['get', 'k', '--nats', 'nats://127.0.0.1:1']);
    expect(r.code).to.equal(1);
    expect(r.err).to.match(/cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/);
  });
});
