import { isAlive, readClusterFile } from './cluster-file.js';

/** How a client command finds its cluster: --nats, DYNAMO_NATS_URL, the cluster `dynamo up` runs from here, then the default. */
export function resolveNatsUrl(flag: string | undefined): { url: string; prefix?: string; source: string; clientEnvFile?: string } {
  if (flag) return { url: flag, source: process.env['DYNAMO_NATS_URL'] === flag ? 'DYNAMO_NATS_URL' : '--nats' };
  const file = readClusterFile();
  if (file && isAlive(file.pid)) return { url: file.natsUrl, prefix: file.prefix, source: '.dynamo/cluster.json', clientEnvFile: file.clientEnvFile };
  return { url: 'nats://127.0.0.1:4222', source: 'default' };
}
