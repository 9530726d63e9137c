import { errorText, TransportError, UsageError } from '../errors.js';
import { subjects } from '../protocol/subjects.js';
import { BUCKET_NAME, MAX_TTL_MS } from '../protocol/requests.js';
import { Watch } from '../client/watch.js';
import { NatsTransport } from '../transport/nats-transport.js';
import { decodeJson } from '../transport/transport.js';
import { durationFlag, intFlag, NATS_SECURITY_OPTIONS, securityFlags, type OptionSpec, type OptionSpecs } from './args.js';
import { describeSecurity, redactUrl } from '../transport/nats-security.js';
import { resolveNatsUrl } from './resolve-nats.js';
import type { MemberStatus } from '../../actors/node/admin-server.js';

export const CLIENT_OPTIONS: OptionSpecs = {
  nats: { type: 'string', help: 'NATS URL of the cluster' },
  ...NATS_SECURITY_OPTIONS,
  prefix: { type: 'string', help: 'subject prefix (default: dynamo)' },
  bucket: { type: 'string', help: 'bucket (default: default)' },
  context: { type: 'string', help: 'causal context from an earlier get' },
  op: { type: 'string', help: 'put: an op for a CRDT bucket instead of a VALUE: \'{"add":["milk"],"remove":["eggs"]}\' (orset), \'{"incr":1}\' (counter)' },
  'if-match': { type: 'string', help: 'put/delete: only if this context (from a get) still covers what the key holds' },
  'if-none-match': { type: 'boolean', help: 'put: only if the key does not exist' },
  node: { type: 'string', help: 'send the request to this node (its own subject) rather than to any node' },
  r: { type: 'string', help: 'replicas that must answer a get' },
  w: { type: 'string', help: 'replicas that must acknowledge a put or delete' },
  timeout: { type: 'string', help: 'request timeout in ms (default 1000)' },
  ttl: { type: 'string', help: "put: the value expires after this long (30s, 5m, 2h, 1d; default: the bucket's ttl, if any)" },
  json: { type: 'boolean', help: 'status: print the raw JSON reply' },
};

/** A client command's outcome: the text to print and the exit code. */
export interface Outcome {
  readonly out: string;
  readonly code: 0 | 1;
}

/** Turn the VALUE argument into JSON text: valid JSON is taken as it is, anything else as a string. */
export function valueArgument(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export async function withCluster<T>(values: Record<string, unknown>, work: (t: NatsTransport, prefix: string) => Promise<T>): Promise<T> {
  const found = resolveNatsUrl(values['nats'] as string | undefined);
  const prefix = (values['prefix'] as string | undefined) ?? found.prefix ?? 'dynamo';
  const security = securityFlags(values);
  const where = `NATS at ${redactUrl(found.url)} (from ${found.source}, ${describeSecurity(security)})`;
  // A cluster `up --secure` started: say where its client login is, rather than guess at a running cluster.
  const hint = found.clientEnvFile
    ? `This cluster was started with --secure: log in with the variables in ${found.clientEnvFile} (. ${found.clientEnvFile})`
    : 'Is a cluster running? Start one with: npx dynamo up';
  let transport: NatsTransport;
  try {
    transport = await NatsTransport.connect(found.url, 'dynamo-cli', security);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new Error(`cannot connect to ${where}: ${(e as Error).message}. ${hint}`, { cause: e });
  }
  try {
    return await work(transport, prefix);
  } catch (e) {
    if (e instanceof TransportError && e.kind === 'no-responders') {
      throw new Error(`no dynamo node answers on prefix "${prefix}" at ${redactUrl(found.url)}`, { cause: e });
    }
    if (e instanceof TransportError && e.kind === 'refused') throw new Error(`${e.message}: not permitted for ${describeSecurity(security)}`, { cause: e });
    throw e;
  } finally {
    await transport.close();
  }
}

export async function kvCommand(op: 'get' | 'put' | 'delete', positionals: string[], values: Record<string, unknown>): Promise<Outcome> {
  const crdtOp = values['op'] as string | undefined;
  if (crdtOp !== undefined && op !== 'put') throw new UsageError('--op goes with put');
  const want = op === 'put' && crdtOp === undefined ? 2 : 1;
  if (positionals.length !== want) throw new UsageError(op === 'put' ? 'usage: dynamo put KEY VALUE, or dynamo put KEY --op OP' : `usage: dynamo ${op} KEY`);
  const key = positionals[0];
  const timeoutMs = intFlag(values, 'timeout', 1, 60_000) ?? 1000;
  const body: Record<string, unknown> = {
    key,
    bucket: values['bucket'],
    r: op === 'get' ? intFlag(values, 'r', 1, 64) : undefined,
    w: op === 'get' ? undefined : intFlag(values, 'w', 1, 64),
    context: values['context'],
    ifMatch: values['if-match'],
    ifNoneMatch: values['if-none-match'] === true ? true : undefined,
    timeoutMs: values['timeout'] === undefined ? undefined : timeoutMs,
    ttlMs: durationFlag(values, 'ttl', 1, MAX_TTL_MS),
  };
  if (body['ttlMs'] !== undefined && op !== 'put') throw new UsageError('--ttl goes with put');
  if (op === 'put') {
    if (crdtOp === undefined) body['value'] = valueArgument(positionals[1]);
    else {
      try {
        body['op'] = JSON.parse(crdtOp);
      } catch {
        throw new UsageError(`--op must be JSON, e.g. '{"add":["milk"]}'`);
      }
    }
  }
  const node = values['node'] as string | undefined;
  return withCluster(values, async (t, prefix) => {
    const s = subjects(prefix);
    try {
      // A little longer than the request's own timeout, so the node's TIMEOUT reply wins the race.
      const reply = await t.request(node ? s.nodeKv(node, op) : s.kv(op), JSON.stringify(body), timeoutMs + 500);
      const text = new TextDecoder().decode(reply);
      return { out: text, code: (decodeJson<{ ok: boolean }>(reply).ok ? 0 : 1) as 0 | 1 };
    } catch (e) {
      if (e instanceof TransportError && e.kind === 'timeout') return { out: errorText('TIMEOUT', `no reply within ${timeoutMs} ms`), code: 1 };
      if (e instanceof TransportError && e.kind === 'no-responders' && node)
        throw new Error(`node "${node}" does not answer on prefix "${prefix}"`, { cause: e });
      throw e;
    }
  });
}

export const KEYS_OPTIONS: OptionSpecs = {
  nats: CLIENT_OPTIONS['nats'],
  ...NATS_SECURITY_OPTIONS,
  'subject-prefix': { type: 'string', help: "subject prefix of the cluster (default: dynamo); --prefix here is the keys' prefix", env: 'DYNAMO_PREFIX' },
  bucket: CLIENT_OPTIONS['bucket'],
  prefix: { type: 'string', help: 'only keys that start with this', env: null },
  limit: { type: 'string', help: 'print at most this many (default: all)' },
  r: { type: 'string', help: 'live replicas asked per range of the ring (default 1)' },
  timeout: CLIENT_OPTIONS['timeout'],
};

/** Keys asked for per request while listing (the most one page may hold). */
const KEYS_PAGE = 1000;

/**
 * `dynamo keys [--bucket B] [--prefix P] [--limit N]`: a bucket's keys, one a line in
 * UTF-8 byte order, page by page as they come (the pages' cursors followed to the end).
 */
export async function keysCommand(
  positionals: string[],
  values: Record<string, unknown>,
  write: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
): Promise<Outcome> {
  if (positionals.length > 0) throw new UsageError('usage: dynamo keys [--bucket B] [--prefix P] [--limit N]');
  const limit = intFlag(values, 'limit', 1, Number.MAX_SAFE_INTEGER);
  const timeoutMs = intFlag(values, 'timeout', 1, 60_000) ?? 5000;
  const r = intFlag(values, 'r', 1, 64);
  return withCluster({ ...values, prefix: values['subject-prefix'] }, async (t, prefix) => {
    const s = subjects(prefix);
    let printed = 0;
    for (let cursor: string | null = null; limit === undefined || printed < limit; ) {
      const body = {
        bucket: values['bucket'],
        prefix: values['prefix'],
        cursor: cursor ?? undefined,
        limit: Math.min(KEYS_PAGE, (limit ?? KEYS_PAGE) - printed),
        r,
        timeoutMs,
      };
      let reply: { ok: boolean; keys?: string[]; cursor?: string | null };
      try {
        reply = decodeJson(await t.request(s.kvKeys, JSON.stringify(body), timeoutMs + 500));
      } catch (e) {
        if (e instanceof TransportError && e.kind === 'timeout') return { out: errorText('TIMEOUT', `no reply within ${timeoutMs} ms`), code: 1 };
        throw e;
      }
      if (!reply.ok) return { out: JSON.stringify(reply), code: 1 };
      for (const key of reply.keys ?? []) write(key);
      printed += reply.keys?.length ?? 0;
      if (reply.cursor === null || reply.cursor === undefined) break;
      cursor = reply.cursor;
    }
    return { out: '', code: 0 };
  });
}

export const WATCH_OPTIONS: OptionSpecs = {
  nats: CLIENT_OPTIONS['nats'],
  ...NATS_SECURITY_OPTIONS,
  'subject-prefix': KEYS_OPTIONS['subject-prefix'] as OptionSpec,
  bucket: CLIENT_OPTIONS['bucket'],
  prefix: { type: 'string', help: 'only keys that start with this', env: null },
  from: { type: 'string', help: 'resume after this position (printed when a watch stops)', env: null },
  count: { type: 'string', help: 'stop after this many events (default: run until Ctrl-C)', env: null },
};

/**
 * `dynamo watch [--bucket B] [--prefix P] [--from POSITION] [--count N]`: the bucket's change
 * events, one JSON line each, until Ctrl-C (or N events); then where to resume, on stderr.
 */
export async function watchCommand(
  positionals: string[],
  values: Record<string, unknown>,
  write: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
): Promise<Outcome> {
  if (positionals.length > 0) throw new UsageError('usage: dynamo watch [--bucket B] [--prefix P] [--from POSITION] [--count N]');
  const count = intFlag(values, 'count', 1, Number.MAX_SAFE_INTEGER);
  const bucket = (values['bucket'] as string | undefined) ?? 'default';
  if (!BUCKET_NAME.test(bucket)) throw new UsageError('--bucket must be 1-64 characters of letters, digits, "_", "." or "-"');
  return withCluster({ ...values, prefix: values['subject-prefix'] }, async (t, prefix) => {
    let watch: Watch;
    try {
      watch = new Watch(t, subjects(prefix), bucket, { prefix: values['prefix'] as string | undefined, from: values['from'] as string | undefined });
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const stop = () => watch.stop();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    let seen = 0;
    try {
      for await (const e of watch) {
        write(JSON.stringify(e));
        if (count !== undefined && ++seen >= count) break;
      }
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      watch.stop();
    }
    if (watch.failure !== null) return { out: errorText('UNAVAILABLE', `watch failed: ${watch.failure.message}`), code: 1 };
    process.stderr.write(`to resume: dynamo watch --bucket ${bucket} --from ${watch.position()}\n`);
    return { out: '', code: 0 };
  });
}

export const BUCKET_OPTIONS: OptionSpecs = {
  nats: CLIENT_OPTIONS['nats'],
  ...NATS_SECURITY_OPTIONS,
  prefix: CLIENT_OPTIONS['prefix'],
  resolver: { type: 'string', help: "bucket set: lww, siblings, union, orset, counter, or an application resolver's name" },
  n: { type: 'string', help: "bucket set: replicas (the cluster's n in this version)" },
  r: { type: 'string', help: 'bucket set: default read quorum' },
  w: { type: 'string', help: 'bucket set: default write quorum' },
  ttl: { type: 'string', help: 'bucket set: time to live of values put without one (30s, 5m, 2h, 1d; 0 for none)' },
  'tombstone-grace': {
    type: 'string',
    help: "bucket set: how long deleted keys' tombstones are kept at least before they may be reaped (30s, 2h, 10d; 0: the node's --tombstone-grace)",
  },
};

/** `dynamo bucket set NAME [--resolver R] [--r N] [--w N]`, `bucket get NAME`, `bucket list`. */
export async function bucketCommand(positionals: string[], values: Record<string, unknown>): Promise<Outcome> {
  const [what, name, ...rest] = positionals;
  const usage = 'usage: dynamo bucket set NAME [--resolver R] [--r N] [--w N] [--ttl D] [--tombstone-grace D] | dynamo bucket get NAME | dynamo bucket list';
  if (rest.length > 0 || !(what === 'list' ? name === undefined : (what === 'set' || what === 'get') && name !== undefined)) throw new UsageError(usage);
  return withCluster(values, async (t, prefix) => {
    const s = subjects(prefix);
    let subject: string;
    let body: Record<string, unknown>;
    if (what === 'set') {
      subject = s.bucketSet;
      body = {
        bucket: name,
        resolver: values['resolver'],
        n: intFlag(values, 'n', 1, 64),
        r: intFlag(values, 'r', 1, 64),
        w: intFlag(values, 'w', 1, 64),
        ttlMs: durationFlag(values, 'ttl', 0, MAX_TTL_MS),
        tombstoneGraceMs: durationFlag(values, 'tombstone-grace', 0, MAX_TTL_MS),
      };
    } else {
      subject = what === 'get' ? s.bucketGet : s.bucketList;
      body = what === 'get' ? { bucket: name } : {};
    }
    const reply = await t.request(subject, JSON.stringify(body), 5000);
    return { out: new TextDecoder().decode(reply), code: decodeJson<{ ok: boolean }>(reply).ok ? 0 : 1 };
  });
}

function percent(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

function transferText(t: MemberStatus['transfer']): string {
  if (!t) return '-';
  return `${t.phase} ${t.total ? Math.min(100, Math.round((t.done / t.total) * 100)) : 0}%`;
}

/** A member's ranges in one word: in sync when every range's last compare found equal trees. */
export function syncText(ae: MemberStatus['antiEntropy']): string {
  if (ae === null) return '-';
  if (!ae.enabled) return 'off';
  if (ae.ranges.some((r) => r.inSync === false)) return ae.state === 'repairing' ? 'repairing' : 'out of sync';
  if (ae.ranges.length > 0 && ae.ranges.every((r) => r.inSync === true)) return 'in sync';
  return 'unknown';
}

export function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function ageText(ms: number | null): string {
  if (ms === null) return 'never';
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)}s ago` : `${Math.round(ms / 1000)}s ago`;
}

/** One row per range (node and peer): the last anti-entropy exchange. */
export function rangesTable(members: readonly MemberStatus[]): string {
  const rows = [['NODE', 'PEER', 'SHARED', 'LAST EXCHANGE', 'IN SYNC', 'OUTCOME']];
  for (const m of members) {
    for (const r of m.antiEntropy?.ranges ?? []) {
      rows.push([m.id, r.peer, percent(r.share), ageText(r.lastExchangeAgeMs), r.inSync === null ? '?' : r.inSync ? 'yes' : 'no', r.outcome]);
    }
  }
  return rows.length > 1 ? table(rows) : '';
}

export function statusTable(members: readonly MemberStatus[]): string {
  const rows = [['NODE', 'STATE', 'HEARTBEAT', 'WEIGHT', 'TOKENS', 'OWNS', 'KEYS', 'TOMBSTONES', 'HINTS', 'IN-FLIGHT', 'TRANSFER', 'SYNC', 'REPAIRED']];
  for (const m of members) {
    rows.push([
      m.id,
      m.state,
      `${m.heartbeatAgeMs}ms`,
      String(m.weight),
      String(m.tokens),
      percent(m.ownership),
      m.keys === null ? '-' : String(m.keys),
      m.tombstones === null || m.tombstones === undefined ? '-' : String(m.tombstones),
      m.hints === null ? '-' : String(m.hints),
      m.inFlight === null ? '-' : String(m.inFlight),
      transferText(m.transfer),
      syncText(m.antiEntropy),
      m.antiEntropy === null ? '-' : String(m.antiEntropy.keysRepaired),
    ]);
  }
  return table(rows);
}

export async function statusCommand(positionals: string[], values: Record<string, unknown>): Promise<Outcome> {
  if (positionals.length !== 0) throw new UsageError('usage: dynamo status [--json]');
  return withCluster(values, async (t, prefix) => {
    const reply = decodeJson<{ ok: boolean; members: MemberStatus[]; version: string; n: number; r: number; w: number }>(
      await t.request(values['node'] ? subjects(prefix).nodeStatus(values['node'] as string) : subjects(prefix).status, '', 5000),
    );
    if (values['json']) return { out: JSON.stringify(reply), code: reply.ok ? 0 : 1 };
    const members = reply.members.filter((m) => m.state !== 'left');
    const up = members.filter((m) => m.state === 'up').length;
    const head = `dynamo ${reply.version}: ${up}/${members.length} nodes up, N=${reply.n} R=${reply.r} W=${reply.w}`;
    // Exit 1 when any member is not up, so scripts can wait on `dynamo status`.
    const ranges = rangesTable(members);
    const waiting = members.filter((m) => m.tombstonesWaiting).map((m) => `${m.id}: ${m.tombstonesWaiting}`);
    const reaping = waiting.length > 0 ? `\n\ntombstones past their grace, not reaped yet:\n${waiting.join('\n')}` : '';
    const away = members
      .filter((m) => m.repairingFor)
      .map(
        (m) =>
          `${m.id}: away longer than the tombstone grace; serves no reads until anti-entropy has compared it with ${m.repairingFor?.join(', ') || 'its peers'}`,
      );
    const repairing = away.length > 0 ? `\n\nrepairing before serving reads:\n${away.join('\n')}` : '';
    const out = `${head}\n${statusTable(reply.members)}${reaping}${repairing}${ranges ? `\n\nanti-entropy, last exchange per range:\n${ranges}` : ''}`;
    return { out, code: up === members.length ? 0 : 1 };
  });
}
