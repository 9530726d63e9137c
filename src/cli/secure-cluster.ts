import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { authorizationBlock, type Role } from '../protocol/permissions.js';
import { securityEnv, type NatsSecurity } from '../transport/nats-security.js';
import { ensurePki } from './pki.js';

/** The users `dynamo up --secure` makes, one per role of the permission model. */
const USERS = ['node', 'client', 'operator'] as const;
type UserName = (typeof USERS)[number];

/** What `up --secure` hands to nats-server, to its own processes and to its users. */
export interface SecureCluster {
  /** the TLS and authorization blocks of the nats-server config */
  readonly natsConfig: string;
  readonly login: Readonly<Record<UserName, NatsSecurity>>;
  /** files of `export` lines that log a shell in as the client user and as the operator */
  readonly clientEnvFile: string;
  readonly operatorEnvFile: string;
}

function passwords(file: string): Record<UserName, string> {
  if (existsSync(file)) {
    try {
      const kept = JSON.parse(readFileSync(file, 'utf8')) as Partial<Record<UserName, unknown>>;
      if (USERS.every((u) => typeof kept[u] === 'string' && /^[A-Za-z0-9_-]{16,}$/.test(kept[u] as string))) return kept as Record<UserName, string>;
    } catch {
      /* unreadable: make new ones */
    }
  }
  const made = Object.fromEntries(USERS.map((u) => [u, randomBytes(18).toString('base64url')])) as Record<UserName, string>;
  writeFileSync(file, JSON.stringify(made, null, 2), { mode: 0o600 });
  chmodSync(file, 0o600);
  return made;
}

function envFile(path: string, who: string, login: NatsSecurity): void {
  const lines = Object.entries(securityEnv(login)).map(([k, v]) => `export ${k}='${v}'`);
  writeFileSync(path, `# The ${who} login of the cluster \`dynamo up --secure\` runs; use it with: . ${path}\n${lines.join('\n')}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/**
 * Certificates, users and permissions for a local cluster behind a TLS NATS, kept in
 * `<dir>/secure` so that a restart keeps the logins its users hold. Passwords are
 * random; every file that holds one is readable by its owner only.
 */
export function prepareSecureCluster(dir: string, prefix: string): SecureCluster {
  const secureDir = resolve(join(dir, 'secure'));
  const pki = ensurePki(secureDir);
  const pw = passwords(join(secureDir, 'users.json'));
  const roles: Record<UserName, Role> = { node: 'node', client: 'client', operator: 'operator' };
  const login = Object.fromEntries(USERS.map((u) => [u, { user: u, password: pw[u], tlsCa: pki.ca }])) as Record<UserName, NatsSecurity>;
  const natsConfig = [
    `tls { cert_file: ${JSON.stringify(pki.serverCert)}, key_file: ${JSON.stringify(pki.serverKey)}, ca_file: ${JSON.stringify(pki.ca)}, timeout: 2 }`,
    authorizationBlock(
      prefix,
      USERS.map((u) => ({ user: u, password: pw[u], role: roles[u] })),
    ),
  ].join('\n');
  const clientEnvFile = join(secureDir, 'client.env');
  const operatorEnvFile = join(secureDir, 'operator.env');
  envFile(clientEnvFile, 'client', login.client);
  envFile(operatorEnvFile, 'operator', login.operator);
  return { natsConfig, login, clientEnvFile, operatorEnvFile };
}
