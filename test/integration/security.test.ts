import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { createUser } from '@nats-io/nkeys';
import type { ClusterFile } from '../../src/cli/cluster-file.js';
import { ensurePki, type Pki } from '../../src/cli/pki.js';
import { exited, startNatsServer, startRedisServer, stopProcess, type ServerProcess } from '../../src/cli/servers.js';
import { DynamoClient } from '../../src/client/client.js';
import { TransportError } from '../../src/errors.js';
import { securityEnv, securityOptions, type NatsSecurity } from '../../src/transport/nats-security.js';
import { NatsTransport } from '../../src/transport/nats-transport.js';
import { decodeJson } from '../../src/transport/transport.js';
import { operatorSetup } from '../helpers/nats-jwt.js';
import { waitFor } from '../helpers/wait.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const DOCKER_NATS_CONF = fileURLToPath(new URL('../../../docker/nats.conf', import.meta.url));

/** The environment a test's child gets: none of this machine's DYNAMO_* settings, then `extra`. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('DYNAMO_')));
  return { ...env, ...extra };
}

function dynamo(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', env: cleanEnv(env), timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr, all: r.stdout + r.stderr };
}

const tlsBlock = (pki: Pki, verify = false) =>
  `tls { cert_file: ${JSON.stringify(pki.serverCert)}, key_file: ${JSON.stringify(pki.serverKey)}, ca_file: ${JSON.stringify(pki.ca)}, timeout: 2${verify ? ', verify: true' : ''} }\n`;

/** Ask every responder on `subject` and collect the replies for `ms`. */
async function gather(url: string, login: NatsSecurity, subject: string, ms = 700): Promise<Record<string, unknown>[]> {
  const nc = await connect({ servers: url, ...securityOptions(login) });
  try {
    const out: Record<string, unknown>[] = [];
    for await (const m of await nc.requestMany(subject, '', { maxWait: ms })) out.push(m.json());
    return out;
  } finally {
    await nc.close();
  }
}

describe('NATS security (real nats-server: TLS, users and permissions, nkeys, tokens, credentials)', function () {
  this.timeout(120_000);
  const dir = mkdtempSync(join(tmpdir(), 'dynamo-security-'));
  let pki: Pki;
  let redis: ServerProcess;
  before(async () => {
    pki = ensurePki(join(dir, 'pki'));
    redis = await startRedisServer(join(dir, 'redis'));
  });
  after(async () => {
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('docker/nats.conf behind TLS, with two node processes', () => {
    const pw = { node: '', client: '', operator: '', cart: '' };
    for (const k of Object.keys(pw) as (keyof typeof pw)[]) pw[k] = `pw${randomBytes(12).toString('hex')}`; // nats-server reads a $VARIABLE that starts with a digit as a number
    const login = (user: keyof typeof pw): NatsSecurity => ({ user, password: pw[user], tlsCa: pki.ca });
    let nats: ServerProcess;
    const extraRedis: ServerProcess[] = [];
    const nodes: ChildProcess[] = [];
    const logs: string[] = [];
    let operator: NatsTransport;

    before(async () => {
      const natsDir = join(dir, 'nats');
      mkdirSync(natsDir, { recursive: true });
      copyFileSync(DOCKER_NATS_CONF, join(natsDir, 'docker-nats.conf'));
      // The shipped permissions as they are, their passwords from the server's environment, TLS added.
      nats = await startNatsServer(
        natsDir,
        undefined,
        `${tlsBlock(pki)}include "docker-nats.conf"\n`,
        cleanEnv({
          DYNAMO_NODE_PASSWORD: pw.node,
          DYNAMO_CLIENT_PASSWORD: pw.client,
          DYNAMO_OPERATOR_PASSWORD: pw.operator,
          DYNAMO_CART_PASSWORD: pw.cart,
        }),
      );
      for (const id of ['n1', 'n2']) {
        const r = id === 'n1' ? redis : await startRedisServer(join(dir, `redis-${id}`));
        if (r !== redis) extraRedis.push(r);
        const child = spawn(
          process.execPath,
          [CLI, 'node', '--id', id, '--nats', nats.url, '--redis', r.url, '--n', '2', '--r', '1', '--w', '2', ...(id === 'n2' ? ['--seeds', 'n1'] : [])],
          { stdio: ['pipe', 'pipe', 'pipe'], env: cleanEnv({ ...securityEnv(login('node')), DYNAMO_SUPERVISED: '1' }) },
        );
        child.stdout!.on('data', (d: Buffer) => logs.push(d.toString()));
        child.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
        nodes.push(child);
      }
      operator = await NatsTransport.connect(nats.url, 'security-test', login('operator'));
      await waitFor(
        async () => {
          const st = await operator
            .request('dynamo.node.n1.admin.status', '', 500)
            .then((d) => decodeJson<{ members: { id: string; state: string }[] }>(d))
            .catch(() => null);
          return st?.members.filter((m) => m.state === 'up').length === 2;
        },
        30_000,
        'n1 and n2 up, as n1 sees them',
      );
    });
    after(async () => {
      await operator?.close();
      await Promise.all(nodes.map((n) => stopProcess(n)));
      await Promise.all(extraRedis.map((r) => r.stop()));
      await nats?.stop();
    });

    it('the CLI works with the client login, is refused without it or with a wrong one, and prints no secret', async () => {
      const asClient = { DYNAMO_NATS_URL: nats.url, ...securityEnv(login('client')) };
      const put = dynamo(['put', 'cart:alice', '["book"]'], asClient);
      expect(put.code, put.err).to.equal(0);
      const get = dynamo(['get', 'cart:alice'], asClient);
      expect(get.code, get.err).to.equal(0);
      expect(JSON.parse(get.out)).to.deep.include({ found: true, values: [['book']] });
      expect(dynamo(['status'], asClient).out).to.match(/2\/2 nodes up/);

      const untrusted = dynamo(['get', 'cart:alice'], { DYNAMO_NATS_URL: nats.url });
      expect(untrusted.code).to.equal(1);
      expect(untrusted.err).to.contain('--tls-ca');
      const anonymous = dynamo(['get', 'cart:alice'], { DYNAMO_NATS_URL: nats.url, DYNAMO_NATS_TLS_CA: pki.ca });
      expect(anonymous.code).to.equal(1);
      expect(anonymous.err).to.contain('Authorization Violation');
      const wrong = dynamo(['get', 'cart:alice', '--user', 'client', '--tls-ca', pki.ca], { DYNAMO_NATS_URL: nats.url, DYNAMO_NATS_PASSWORD: 'not-it' });
      expect(wrong.code).to.equal(1);
      expect(wrong.err).to.contain('NATS refused the login');

      const leave = dynamo(['leave', 'n2'], asClient);
      expect(leave.code).to.equal(1);
      expect(leave.err).to.contain('NATS refused dynamo.node.n2.admin.leave');
      const setBucket = dynamo(['bucket', 'set', 'x', '--resolver', 'union'], asClient);
      expect(setBucket.code).to.equal(1);
      const asOperator = { DYNAMO_NATS_URL: nats.url, ...securityEnv(login('operator')) };
      expect(dynamo(['bucket', 'set', 'x', '--resolver', 'union'], asOperator).code).to.equal(0);
      for (const r of [put, get, untrusted, anonymous, wrong, leave, setBucket]) {
        for (const secret of Object.values(pw)) expect(r.all).to.not.contain(secret);
      }
      expect(logs.join('')).to.not.contain(pw.node);
    });

    it('the client library logs in; a client user is refused on node-to-node and operator subjects, the operator is not', async () => {
      const client = await DynamoClient.connect(nats.url, { security: login('client') });
      try {
        await client.put('lib:1', { n: 1 });
        expect((await client.get('lib:1')).values).to.deep.equal([{ n: 1 }]);
      } finally {
        await client.close();
      }
      const plain = await NatsTransport.connect(nats.url, 'security-test-client', login('client'));
      try {
        for (const subject of [
          'dynamo.node.n1.replica.get',
          'dynamo.node.n1.replica.put',
          'dynamo.node.n1.replica.reap',
          'dynamo.node.n1.replica.compact',
          'dynamo.node.n1.gossip',
          'dynamo.node.n1.handoff.pull',
          'dynamo.node.n1.ae',
          'dynamo.node.n1.membership.control',
          'dynamo.node.n1.coord.batch',
          'dynamo.node.n1.admin.leave',
          'dynamo.admin.faults',
          'dynamo.admin.bucket.set',
        ]) {
          const e = await plain.request(subject, '{"items":[]}', 1000).then(
            () => null,
            (err: unknown) => err,
          );
          expect(e, subject).to.be.instanceOf(TransportError);
          expect((e as TransportError).kind, subject).to.equal('refused');
        }
        expect(decodeJson(await plain.request('dynamo.node.n1.admin.ping', '', 1000))).to.have.property('state', 'serving');
      } finally {
        await plain.close();
      }
      // The operator may: the node answers (with a refusal of its own, as it runs without --allow-faults).
      expect(decodeJson(await operator.request('dynamo.node.n1.admin.faults', '{}', 1000))).to.have.property('ok', false);
    });

    it('a bucket-scoped user reaches its bucket on the bucket subjects, and is refused on any other', async () => {
      const cart = await NatsTransport.connect(nats.url, 'security-test-cart', login('cart'));
      try {
        const ask = async (subject: string, body: unknown) => decodeJson<Record<string, unknown>>(await cart.request(subject, JSON.stringify(body), 2000));
        expect(await ask('dynamo.kv.cart.put', { key: 'bob', value: ['milk'] })).to.include({ ok: true });
        expect(await ask('dynamo.kv.cart.get', { key: 'bob' })).to.deep.include({ ok: true, values: [['milk']] });
        // A body naming another bucket cannot get round the subject.
        expect(await ask('dynamo.kv.cart.get', { key: 'bob', bucket: 'default' })).to.have.nested.property('error.code', 'BAD_REQUEST');
        for (const subject of ['dynamo.kv.other.get', 'dynamo.kv.get', 'dynamo.node.n1.kv.get', 'dynamo.kv.batch']) {
          const e = await cart.request(subject, '{"key":"bob"}', 1000).then(
            () => null,
            (err: unknown) => err,
          );
          expect((e as TransportError | null)?.kind, subject).to.equal('refused');
        }
      } finally {
        await cart.close();
      }
      // What the bucket user wrote is the cart bucket's, as any client reads it.
      const client = await DynamoClient.connect(nats.url, { security: login('client') });
      try {
        expect((await client.get('bob', { bucket: 'cart' })).values).to.deep.equal([['milk']]);
        expect((await client.get('bob')).found).to.equal(false);
      } finally {
        await client.close();
      }
    });

    it("$SRV.PING, INFO and STATS (what nats micro ls reads) list every node's client service, for a client user", async () => {
      const pings = await gather(nats.url, login('client'), '$SRV.PING.dynamo-kv');
      expect(pings.map((p) => (p['metadata'] as Record<string, string>)['node']).sort()).to.deep.equal(['n1', 'n2']);
      const infos = await gather(nats.url, login('client'), '$SRV.INFO.dynamo-kv');
      for (const info of infos) {
        const endpoints = (info['endpoints'] as { name: string; subject: string; queue_group: string }[]).map(({ name, subject, queue_group }) => ({
          name,
          subject,
          queue_group,
        }));
        expect(endpoints).to.deep.include({ name: 'get', subject: 'dynamo.kv.get', queue_group: 'dynamo.kv' });
        expect(endpoints.map((e) => e.subject)).to.include.members(['dynamo.kv.*.put', 'dynamo.kv.batch']);
      }
      const stats = await gather(nats.url, login('client'), '$SRV.STATS.dynamo-kv');
      const served = stats.flatMap((s) => s['endpoints'] as { name: string; num_requests: number }[]).filter((e) => e.name === 'bucket-put');
      // The earlier test's two bucket puts were served by one node or the other.
      expect(served.reduce((a, e) => a + e.num_requests, 0)).to.be.at.least(1);
    });
  });

  describe('other ways to log in, checked with dynamo node --check-config', () => {
    const check = (nats: ServerProcess, env: NodeJS.ProcessEnv, flags: string[] = []) =>
      dynamo(['node', '--id', 'n1', '--nats', nats.url, '--redis', redis.url, '--check-config', ...flags], env);

    it('an nkey seed file with a client certificate, against a server that verifies clients', async () => {
      const user = createUser();
      const seedFile = join(dir, 'user.nk');
      writeFileSync(seedFile, `${new TextDecoder().decode(user.getSeed())}\n`, { mode: 0o600 });
      const nats = await startNatsServer(
        join(dir, 'nats-nkey'),
        undefined,
        `${tlsBlock(pki, true)}authorization { users: [{ nkey: ${user.getPublicKey()} }] }\n`,
      );
      try {
        const ok = check(nats, {}, ['--nkey', seedFile, '--tls-ca', pki.ca, '--tls-cert', pki.clientCert, '--tls-key', pki.clientKey]);
        expect(ok.code, ok.all).to.equal(0);
        expect(ok.out).to.contain('nkey seed');
        const noCert = check(nats, {}, ['--nkey', seedFile, '--tls-ca', pki.ca]);
        expect(noCert.code).to.equal(2);
        const other = createUser();
        writeFileSync(join(dir, 'other.nk'), new TextDecoder().decode(other.getSeed()));
        const stranger = check(nats, {}, ['--nkey', join(dir, 'other.nk'), '--tls-ca', pki.ca, '--tls-cert', pki.clientCert, '--tls-key', pki.clientKey]);
        expect(stranger.code).to.equal(2);
        expect(stranger.err).to.contain('Authorization Violation');
        for (const r of [ok, noCert, stranger]) expect(r.all).to.not.contain(new TextDecoder().decode(user.getSeed()));
      } finally {
        await nats.stop();
      }
    });

    it('a token, given in its variable, never echoed', async () => {
      const token = randomBytes(16).toString('hex');
      const nats = await startNatsServer(join(dir, 'nats-token'), undefined, `authorization { token: ${JSON.stringify(token)} }\n`);
      try {
        const ok = check(nats, { DYNAMO_NATS_TOKEN: token });
        expect(ok.code, ok.all).to.equal(0);
        const wrong = check(nats, { DYNAMO_NATS_TOKEN: `${token}x` });
        expect(wrong.code).to.equal(2);
        const none = check(nats, {});
        expect(none.code).to.equal(2);
        expect(none.err).to.contain('none was given');
        for (const r of [ok, wrong, none]) expect(r.all).to.not.contain(token);
      } finally {
        await nats.stop();
      }
    });

    it('a credentials file, against a server in operator mode', async () => {
      const op = operatorSetup();
      const credsFile = join(dir, 'user.creds');
      writeFileSync(credsFile, op.creds, { mode: 0o600 });
      const nats = await startNatsServer(join(dir, 'nats-op'), undefined, op.serverConfig);
      try {
        const ok = check(nats, { DYNAMO_NATS_CREDS: credsFile });
        expect(ok.code, ok.all).to.equal(0);
        expect(ok.out).to.contain(`credentials ${credsFile}`);
        expect(check(nats, {}).code).to.equal(2);
        const missing = check(nats, { DYNAMO_NATS_CREDS: join(dir, 'nope.creds') });
        expect(missing.code).to.equal(2);
        expect(missing.err).to.contain('--creds: cannot read');
        const both = check(nats, { DYNAMO_NATS_CREDS: credsFile, DYNAMO_NATS_TOKEN: 't' });
        expect(both.code).to.equal(2);
        expect(both.err).to.contain('choose one way to log in');
      } finally {
        await nats.stop();
      }
    });
  });

  describe('dynamo up --secure', () => {
    const cwd = join(dir, 'up');
    let child: ChildProcess | undefined;
    let output = '';
    after(async () => {
      if (child && child.exitCode === null) {
        child.kill('SIGTERM');
        await exited(child);
      }
    });

    it('starts a TLS NATS with the shipped permissions; the CLI works with the logins it wrote, and is refused without them', async () => {
      mkdirSync(cwd, { recursive: true });
      child = spawn(process.execPath, [CLI, 'up', '--secure', '--no-console'], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv() });
      child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
      await waitFor(() => /node\(s\) serving/.test(output) || child!.exitCode !== null, 60_000, 'dynamo up --secure to serve');
      expect(child.exitCode, output).to.equal(null);
      const file = JSON.parse(readFileSync(join(cwd, '.dynamo', 'cluster.json'), 'utf8')) as ClusterFile;
      const clientEnv = file.clientEnvFile!;
      expect(output).to.contain(`. ${clientEnv}`);
      const users = JSON.parse(readFileSync(join(cwd, '.dynamo', 'secure', 'users.json'), 'utf8')) as Record<string, string>;
      for (const secret of Object.values(users)) expect(output).to.not.contain(secret);
      // What `. client.env` would export.
      const vars = Object.fromEntries([...readFileSync(clientEnv, 'utf8').matchAll(/^export (\w+)='([^']*)'$/gm)].map((m) => [m[1]!, m[2]!]));
      expect(vars).to.have.keys('DYNAMO_NATS_USER', 'DYNAMO_NATS_PASSWORD', 'DYNAMO_NATS_TLS_CA');

      const refused = dynamo(['status'], {}, cwd);
      expect(refused.code).to.equal(1);
      expect(refused.err).to.contain(clientEnv);
      const put = dynamo(['put', 'k', '"v"'], vars, cwd);
      expect(put.code, put.all).to.equal(0);
      const get = dynamo(['get', 'k'], vars, cwd);
      expect(JSON.parse(get.out)).to.deep.include({ values: ['v'] });
      expect(dynamo(['status'], vars, cwd).out).to.match(/3\/3 nodes up/);
      expect(dynamo(['leave', 'n3'], vars, cwd).code).to.equal(1);

      // Logins travel to the nodes in their environment: never on a command line that ps shows.
      for (const c of file.children) {
        const cmdline = readFileSync(`/proc/${c.pid}/cmdline`, 'utf8');
        for (const secret of Object.values(users)) expect(cmdline, c.name).to.not.contain(secret);
      }
      const pings = await gather(
        file.natsUrl,
        { user: vars['DYNAMO_NATS_USER'], password: vars['DYNAMO_NATS_PASSWORD'], tlsCa: vars['DYNAMO_NATS_TLS_CA'] },
        '$SRV.PING',
      );
      expect(pings.map((p) => (p['metadata'] as Record<string, string>)['node']).sort()).to.deep.equal(['n1', 'n2', 'n3']);

      child.kill('SIGINT');
      await exited(child);
      expect(child.exitCode, output).to.equal(0);
    });
  });
});
