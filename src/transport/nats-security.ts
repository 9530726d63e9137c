import { readFileSync } from 'node:fs';
import { credsAuthenticator, nkeyAuthenticator, tokenAuthenticator, usernamePasswordAuthenticator, type Authenticator } from '@nats-io/transport-node';
import type { NodeConnectionOptions } from '@nats-io/transport-node';
import { UsageError } from '../errors.js';

/**
 * How a process logs in to NATS and checks the server: at most one way to
 * authenticate (a credentials file, an nkey seed file, a user and password, or a
 * token), and TLS files. Paths are read when connecting; secrets are never printed.
 */
export interface NatsSecurity {
  /** a .creds file (user JWT and nkey seed), as `nsc` writes it */
  readonly creds?: string;
  /** a file holding an nkey user seed (SU...) */
  readonly nkey?: string;
  readonly user?: string;
  readonly password?: string;
  readonly token?: string;
  /** the CA that signed the server's certificate (PEM) */
  readonly tlsCa?: string;
  /** a client certificate and its key (PEM), for servers that verify clients */
  readonly tlsCert?: string;
  readonly tlsKey?: string;
}

/** Each setting's flag, environment variable and whether it is a secret. */
export const SECURITY_SETTINGS = [
  { field: 'creds', flag: 'creds', env: 'DYNAMO_NATS_CREDS', secret: false, help: 'NATS credentials file (user JWT and nkey seed)' },
  { field: 'nkey', flag: 'nkey', env: 'DYNAMO_NATS_NKEY', secret: false, help: 'file holding an nkey user seed' },
  { field: 'user', flag: 'user', env: 'DYNAMO_NATS_USER', secret: false, help: 'NATS user (with --password)' },
  { field: 'password', flag: 'password', env: 'DYNAMO_NATS_PASSWORD', secret: true, help: 'NATS password (prefer the variable: flags show in ps)' },
  { field: 'token', flag: 'token', env: 'DYNAMO_NATS_TOKEN', secret: true, help: 'NATS token (prefer the variable: flags show in ps)' },
  { field: 'tlsCa', flag: 'tls-ca', env: 'DYNAMO_NATS_TLS_CA', secret: false, help: "CA file that signed the NATS server's certificate (turns TLS on)" },
  { field: 'tlsCert', flag: 'tls-cert', env: 'DYNAMO_NATS_TLS_CERT', secret: false, help: 'client certificate file, for a server that verifies clients' },
  { field: 'tlsKey', flag: 'tls-key', env: 'DYNAMO_NATS_TLS_KEY', secret: false, help: "the client certificate's key file" },
] as const satisfies readonly { field: keyof NatsSecurity; flag: string; env: string; secret: boolean; help: string }[];

/** Settings that do not make sense together, as a sentence; null when they do. */
export function securityProblem(s: NatsSecurity): string | null {
  const ways = [s.creds && '--creds', s.nkey && '--nkey', s.user !== undefined && '--user', s.token !== undefined && '--token'].filter(Boolean);
  if (ways.length > 1) return `choose one way to log in to NATS, not ${ways.join(' and ')}`;
  if (s.password !== undefined && s.user === undefined) return '--password goes with --user';
  if (s.user !== undefined && s.user === '') return '--user is empty';
  if ((s.tlsCert === undefined) !== (s.tlsKey === undefined)) return '--tls-cert and --tls-key go together';
  return null;
}

function readSetting(path: string, flag: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new UsageError(`--${flag}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function checkReadable(path: string | undefined, flag: string): void {
  if (path !== undefined) readSetting(path, flag);
}

/** The nats.js connect options for `s`; files are read (and checked) here. */
export function securityOptions(s: NatsSecurity): Pick<NodeConnectionOptions, 'authenticator' | 'tls'> {
  const problem = securityProblem(s);
  if (problem !== null) throw new UsageError(problem);
  let authenticator: Authenticator | undefined;
  if (s.creds) authenticator = credsAuthenticator(readSetting(s.creds, 'creds'));
  else if (s.nkey) authenticator = nkeyAuthenticator(new TextEncoder().encode(new TextDecoder().decode(readSetting(s.nkey, 'nkey')).trim()));
  else if (s.user !== undefined) authenticator = usernamePasswordAuthenticator(s.user, s.password ?? '');
  else if (s.token !== undefined) authenticator = tokenAuthenticator(s.token);
  const tlsWanted = s.tlsCa !== undefined || s.tlsCert !== undefined;
  checkReadable(s.tlsCa, 'tls-ca');
  checkReadable(s.tlsCert, 'tls-cert');
  checkReadable(s.tlsKey, 'tls-key');
  return {
    ...(authenticator ? { authenticator } : {}),
    ...(tlsWanted ? { tls: { caFile: s.tlsCa, certFile: s.tlsCert, keyFile: s.tlsKey } } : {}),
  };
}

/** What `s` logs in with, for a banner or a log line: never a secret. */
export function describeSecurity(s: NatsSecurity): string {
  const login = s.creds
    ? `credentials ${s.creds}`
    : s.nkey
      ? `nkey seed ${s.nkey}`
      : s.user !== undefined
        ? `user "${s.user}"`
        : s.token !== undefined
          ? 'a token'
          : 'no login';
  const tls = s.tlsCa !== undefined || s.tlsCert !== undefined ? `, TLS${s.tlsCert ? ' with a client certificate' : ''}` : '';
  return `${login}${tls}`;
}

/** The environment variables that hand `s` to a child process (never its command line, which `ps` shows). */
export function securityEnv(s: NatsSecurity): Record<string, string> {
  const env: Record<string, string> = {};
  for (const { field, env: name } of SECURITY_SETTINGS) {
    const v = s[field];
    if (v !== undefined) env[name] = v;
  }
  return env;
}

/** Every security variable, so a child given `securityEnv` does not also inherit another login from ours. */
export function withoutSecurityEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const { env: name } of SECURITY_SETTINGS) delete out[name];
  return out;
}

/** A URL as it may be printed: `nats://user:secret@host` loses its password or token. */
export function redactUrl(url: string): string {
  return url.replace(/(\/\/)([^/@:]+)(:[^/@]*)?@/g, (_m, slashes: string, who: string, pass: string | undefined) =>
    pass ? `${slashes}${who}:***@` : `${slashes}***@`,
  );
}
