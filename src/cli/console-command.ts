import { newConsoleToken, startConsole, type ConsoleServer } from '../console/server.js';
import { UsageError } from '../errors.js';
import { PREFIX } from '../config.js';
import { NatsTransport } from '../transport/nats-transport.js';
import { NATS_SECURITY_OPTIONS, requiredIntFlag, securityFlags, type OptionSpecs } from './args.js';
import { describeSecurity, redactUrl } from '../transport/nats-security.js';
import { resolveNatsUrl } from './resolve-nats.js';

export const CONSOLE_OPTIONS: OptionSpecs = {
  nats: { type: 'string', help: 'NATS URL of the cluster (default: the cluster `dynamo up` runs from here, else nats://127.0.0.1:4222)' },
  ...NATS_SECURITY_OPTIONS,
  prefix: { type: 'string', help: 'subject prefix (default: dynamo)' },
  port: { type: 'string', help: 'port of the web console', default: '8080' },
  host: { type: 'string', help: 'address the web console listens on', default: '127.0.0.1' },
  'console-token': { type: 'string', help: 'what a browser must show to see the console (default: a random one, in the printed URL)' },
};

/** --console-token, or a new random one: a console is never open to whoever reaches its port. */
export function consoleToken(values: Record<string, unknown>): string {
  const given = values['console-token'];
  if (given === undefined || given === '') return newConsoleToken();
  if (typeof given !== 'string' || !/^[A-Za-z0-9_-]{16,}$/.test(given)) throw new UsageError('--console-token must be at least 16 letters, digits, "-" or "_"');
  return given;
}

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
  const security = securityFlags(values);
  const token = consoleToken(values);
  let transport: NatsTransport;
  try {
    transport = await NatsTransport.connect(nats.url, 'dynamo-console', security);
  } catch (e) {
    process.stderr.write(
      `dynamo console: cannot connect to NATS at ${redactUrl(nats.url)} (from ${nats.source}, ${describeSecurity(security)}): ${(e as Error).message}\n`,
    );
    return 1;
  }
  let server: ConsoleServer;
  try {
    server = await startConsole({ transport, prefix, port, host: values['host'] as string, token });
  } catch (e) {
    await transport.close();
    process.stderr.write(`dynamo console: cannot listen on ${values['host'] as string}:${port}: ${(e as Error).message}\n`);
    return 1;
  }
  process.stdout.write(`console for the cluster at ${redactUrl(nats.url)} (prefix "${prefix}"): ${consoleUrl(server)}\nCtrl-C stops it.\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.close();
  await transport.close();
  return 0;
}
