import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { findBinary } from './servers.js';

/** The files of a local certificate authority and the certificates it signed. */
export interface Pki {
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  /** a client certificate, for a server that verifies its clients */
  readonly clientCert: string;
  readonly clientKey: string;
}

export function pkiFiles(dir: string): Pki {
  return {
    ca: join(dir, 'ca.pem'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.pem'),
    clientKey: join(dir, 'client.key'),
  };
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/**
 * A CA, a server certificate for 127.0.0.1 and localhost, and a client certificate,
 * made with the openssl command in `dir` (kept if they are there already, so that a
 * restarted cluster keeps the CA its users trust). Keys are readable by their owner only.
 */
export function ensurePki(dir: string): Pki {
  const files = pkiFiles(dir);
  if (Object.values(files).every((f) => existsSync(f))) return files;
  const openssl = findBinary('openssl');
  if (openssl === null) throw new UsageError('openssl not found on PATH; --secure makes its certificates with it. Install it: sudo apt-get install -y openssl');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const run = (args: string[]) => {
    try {
      execFileSync(openssl, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      throw new Error(`openssl ${args[0]} failed: ${String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim()}`);
    }
  };
  const caKey = join(dir, 'ca.key');
  run(['req', '-x509', ...EC_KEY, '-keyout', caKey, '-out', files.ca, '-days', '3650', '-subj', '/CN=dynamo local CA']);
  chmodSync(caKey, 0o600);
  const sign = (name: string, cn: string, ext: string, cert: string, key: string) => {
    const csr = join(dir, `${name}.csr`);
    const extFile = join(dir, `${name}.ext`);
    writeFileSync(extFile, `${ext}\n`);
    run(['req', ...EC_KEY, '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`]);
    chmodSync(key, 0o600);
    run(['x509', '-req', '-in', csr, '-CA', files.ca, '-CAkey', caKey, '-CAcreateserial', '-out', cert, '-days', '825', '-extfile', extFile]);
    rmSync(csr);
    rmSync(extFile);
  };
  sign('server', 'localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth', files.serverCert, files.serverKey);
  sign('client', 'dynamo client', 'extendedKeyUsage=clientAuth', files.clientCert, files.clientKey);
  return files;
}
