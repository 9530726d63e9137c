import { createAccount, createOperator, createUser, type KeyPair } from '@nats-io/nkeys';

/**
 * A NATS operator, account and user, as `nsc` would make them: for a real
 * nats-server in operator mode (resolver MEMORY) and a .creds file that logs in.
 */
export interface OperatorSetup {
  /** the server config lines: operator, resolver, the account preloaded */
  readonly serverConfig: string;
  /** a .creds file's text: the user's JWT and its nkey seed */
  readonly creds: string;
}

const b64url = (s: string | Uint8Array) => Buffer.from(s).toString('base64url');

function signedJwt(signer: KeyPair, subject: string, name: string, nats: Record<string, unknown>): string {
  const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }));
  const claims = {
    jti: b64url(String(Math.random())).toUpperCase(),
    iat: Math.floor(Date.now() / 1000),
    iss: signer.getPublicKey(),
    name,
    sub: subject,
    nats: { ...nats, version: 2 },
  };
  const body = b64url(JSON.stringify(claims));
  return `${header}.${body}.${b64url(signer.sign(new TextEncoder().encode(`${header}.${body}`)))}`;
}

export function operatorSetup(): OperatorSetup {
  const operator = createOperator();
  const account = createAccount();
  const user = createUser();
  const operatorJwt = signedJwt(operator, operator.getPublicKey(), 'test-operator', { type: 'operator' });
  const unlimited = { subs: -1, conn: -1, leaf: -1, imports: -1, exports: -1, data: -1, payload: -1, wildcards: true };
  const accountJwt = signedJwt(operator, account.getPublicKey(), 'test-account', { type: 'account', limits: unlimited });
  const userJwt = signedJwt(account, user.getPublicKey(), 'test-user', { type: 'user', pub: {}, sub: {}, subs: -1, data: -1, payload: -1 });
  const seed = new TextDecoder().decode(user.getSeed());
  return {
    serverConfig: `operator: ${operatorJwt}\nresolver: MEMORY\nresolver_preload: { ${account.getPublicKey()}: ${accountJwt} }\n`,
    creds: `-----BEGIN NATS USER JWT-----\n${userJwt}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`,
  };
}
