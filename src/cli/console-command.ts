import { startConsole, type ConsoleServer } from '../console/server.js';
import { UsageError } from '../errors.js';
import { PREFIX } from '../config.js';
import { NatsTransport } from '../transport/nats-transport.js';
import { requiredIntFlag, type OptionSpecs } from './args.js';
import { resolveNatsUrl } from './resolve-nats.js';

export const CONSOLE_OPTIONS: OptionSpecs = {
  nats: { type: 'string', help: 'NATS URL of the cluster (default: the cluster `dynamo up` runs from here, else nats://127.0.0.1:4222)' },
  prefix: { type: 'string', help: 'subject prefix (default: dynamo)' },
  port: { type: 'string', help: 'port of the web console', default: '8080' },
  host: { type: 'string', help: 'address the web console listens on', default: '127.0.0.1' },
};

/** The console's address as a person types it into a browser. */
export function consoleUrl(server: ConsoleServer): string {
  return server.url.replace(/^http:\/\/(127\.0\.0\.1|0\.0\.0\.0|\[::\])(?=:)/, 'http://localhost');
}

/** `dynamo console`: the web console for any cluster, until Ctrl-C. */
export async function consoleCommand(positionals: string[], values: Record<string, unknown>): Promise<number> {
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const port = requiredIntFlag(values, 'port', 0, 65_535);
  const nats = resolveNatsUrl(values['nats'] as string | undefined);
  const prefix = (values['prefix'] as string | undefined) ?? nats.prefix ?? 'dynamo';
  if (!PREFIX.test(prefix)) throw new UsageError(`--prefix "${prefix}" is not a valid NATS subject prefix`);
  let transport: NatsTransport;
  try {
    transport = await NatsTransport.connect(nats.url, 'dynamo-console');
  } catch (e) {
    process.stderr.write(`dynamo console: cannot connect to NATS at ${nats.url} (from ${nats.source}): ${(e as Error).message}\n`);
    return 1;
  }
  let server: ConsoleServer;
  try {
    server = await startConsole({ transport, prefix, port, host: values['host'] as string });
  } catch (e) {
    await transport.close();
    process.stderr.write(`dynamo console: cannot listen on ${values['host'] as string}:${port}: ${(e as Error).message}\n`);
    return 1;
  }
  process.stdout.write(`console for the cluster at ${nats.url} (prefix "${prefix}"): ${consoleUrl(server)}\nCtrl-C stops it.\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  await transport.close();
  return 0;
}
