import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseFlags, securityFlags, NATS_SECURITY_OPTIONS } from '../../src/cli/args.js';
import { UsageError } from '../../src/errors.js';
import { authorizationBlock, permissions, type NatsUser } from '../../src/protocol/permissions.js';
import { parseBucketRequest, type Limits } from '../../src/protocol/requests.js';
import { BUILTIN_RESOLVERS } from '../../src/resolvers/index.js';
import { describeSecurity, redactUrl, securityEnv, securityOptions, securityProblem, withoutSecurityEnv } from '../../src/transport/nats-security.js';

const DOCKER_NATS_CONF = fileURLToPath(new URL('../../../docker/nats.conf', import.meta.url));

/** The users docker/nats.conf ships, with passwords read from the server's environment. */
const DOCKER_USERS: NatsUser[] = [
  { user: 'node', password: '$DYNAMO_NODE_PASSWORD', role: 'node' },
  { user: 'client', password: '$DYNAMO_CLIENT_PASSWORD', role: 'client' },
  { user: 'operator', password: '$DYNAMO_OPERATOR_PASSWORD', role: 'operator' },
  { user: 'cart', password: '$DYNAMO_CART_PASSWORD', role: { bucket: 'cart' } },
];

describe('NATS permission model', () => {
  it('gives clients the kv and read-only admin subjects, never node-to-node or operator ones', () => {
    const p = permissions('dynamo', 'client');
    expect(p.publish).to.include.members(['dynamo.kv.>', 'dynamo.node.*.kv.>', 'dynamo.admin.status', 'dynamo.admin.ring', '$SRV.>']);
    for (const s of p.publish) expect(s, s).to.not.match(/replica|gossip|handoff|\.ae$|membership|faults|leave|bucket\.set|^dynamo\.>$|admin\.>$/);
    expect(p.subscribe).to.deep.equal(['_INBOX.>', 'dynamo.watch.>']);
  });

  it('lets operators use every admin subject and the trace stream; a bucket user its own bucket only', () => {
    const op = permissions('p', 'operator');
    expect(op.publish).to.include.members(['p.admin.>', 'p.node.*.admin.>']);
    expect(op.subscribe).to.include('p.trace.>');
    expect(permissions('p', { bucket: 'cart' })).to.deep.equal({ publish: ['p.kv.cart.*'], subscribe: ['_INBOX.>', 'p.watch.cart'] });
    expect(permissions('p', 'node').publish).to.include.members(['p.>', '_INBOX.>', '$SRV.>']);
  });

  it('writes a literal password quoted and a $VARIABLE bare, for nats-server to read from its environment', () => {
    const block = authorizationBlock('p', [
      { user: 'a', password: 'x"y', role: 'client' },
      { user: 'b', password: '$B_PASSWORD', role: 'node' },
    ]);
    expect(block).to.contain('{ user: "a", password: "x\\"y",');
    expect(block).to.contain('{ user: "b", password: $B_PASSWORD,');
  });

  it('docker/nats.conf holds exactly the generated permissions for the prefix "dynamo"', () => {
    expect(readFileSync(DOCKER_NATS_CONF, 'utf8')).to.contain(authorizationBlock('dynamo', DOCKER_USERS));
  });
});

describe('NATS login settings', () => {
  it('takes each setting from its flag or its DYNAMO_NATS_* variable, an empty variable as unset', () => {
    const { values } = parseFlags(['--user', 'alice', '--tls-ca', '/ca.pem'], NATS_SECURITY_OPTIONS, {
      DYNAMO_NATS_PASSWORD: 'pw',
      DYNAMO_NATS_TOKEN: '',
    });
    expect(securityFlags(values)).to.deep.equal({ user: 'alice', password: 'pw', tlsCa: '/ca.pem' });
  });

  it('refuses settings that do not go together, with the flags named', () => {
    expect(securityProblem({ user: 'a', token: 't' })).to.equal('choose one way to log in to NATS, not --user and --token');
    expect(securityProblem({ password: 'p' })).to.equal('--password goes with --user');
    expect(securityProblem({ tlsCert: 'c' })).to.equal('--tls-cert and --tls-key go together');
    expect(securityProblem({ creds: 'f', tlsCa: 'ca' })).to.equal(null);
    expect(() => securityFlags({ token: 't', nkey: 'f' })).to.throw(UsageError, '--nkey and --token');
  });

  it('names a file it cannot read, and the flag that gave it', () => {
    expect(() => securityOptions({ creds: '/nonexistent/u.creds' })).to.throw(UsageError, '--creds: cannot read /nonexistent/u.creds: ENOENT');
    expect(() => securityOptions({ tlsCa: '/nonexistent/ca.pem' })).to.throw(UsageError, '--tls-ca: cannot read');
  });

  it('never shows a password or token: not in a description, not in a printed URL', () => {
    expect(describeSecurity({ user: 'alice', password: 'hunter2', tlsCa: '/ca' })).to.equal('user "alice", TLS');
    expect(describeSecurity({ token: 's3cret' })).to.equal('a token');
    expect(redactUrl('nats://alice:hunter2@127.0.0.1:4222,nats://s3cret@h:1')).to.equal('nats://alice:***@127.0.0.1:4222,nats://***@h:1');
    expect(redactUrl('nats://127.0.0.1:4222')).to.equal('nats://127.0.0.1:4222');
  });

  it('hands a login to a child process in variables, replacing any it would inherit', () => {
    expect(securityEnv({ user: 'node', password: 'pw', tlsCa: '/ca' })).to.deep.equal({
      DYNAMO_NATS_USER: 'node',
      DYNAMO_NATS_PASSWORD: 'pw',
      DYNAMO_NATS_TLS_CA: '/ca',
    });
    expect(withoutSecurityEnv({ PATH: '/bin', DYNAMO_NATS_TOKEN: 't', DYNAMO_NATS_CREDS: 'f' })).to.deep.equal({ PATH: '/bin' });
  });
});

describe('bucket subjects', () => {
  const limits: Limits = {
    n: 3,
    defaultR: 2,
    defaultW: 2,
    defaultTimeoutMs: 1000,
    maxTimeoutMs: 10_000,
    maxKeyBytes: 1024,
    maxValueBytes: 1024,
    resolver: BUILTIN_RESOLVERS.get('lww')!,
  };
  const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));

  it('takes the bucket from the subject, and forwards a body that names it', () => {
    const { req, body } = parseBucketRequest('put', enc({ key: 'k', value: 1 }), 'cart', () => limits);
    expect(req).to.include({ op: 'put', bucket: 'cart', key: 'k' });
    expect(body).to.deep.equal({ key: 'k', value: 1, bucket: 'cart' });
  });

  it("refuses a body naming another bucket than the subject's", () => {
    const { req } = parseBucketRequest('get', enc({ key: 'k', bucket: 'admin' }), 'cart', () => limits);
    expect(req).to.have.nested.property('error.code', 'BAD_REQUEST');
    expect(req).to.have.nested.property('error.message').that.contains('"admin"');
  });
});
