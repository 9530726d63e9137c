import { once } from 'node:events';
import { createReadStream, createWriteStream, renameSync, rmSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { MemberStatus } from '../../actors/node/admin-server.js';
import { TransportError, UsageError } from '../errors.js';
import { MAX_BACKUP_PAGE } from '../protocol/backup.js';
import { subjects } from '../protocol/subjects.js';
import { decodeJson } from '../transport/transport.js';
import { NATS_SECURITY_OPTIONS, type OptionSpecs } from './args.js';
import { withCluster, type Outcome } from './client-commands.js';
import { progressLine } from './progress.js';

export const BACKUP_OPTIONS: OptionSpecs = {
  nats: { type: 'string', help: 'NATS URL of the cluster' },
  ...NATS_SECURITY_OPTIONS,
  prefix: { type: 'string', help: 'subject prefix (default: dynamo)' },
};

/** Keys asked of a node per backup page. */
const BACKUP_PAGE = 200;
/** Bytes of lines per restore request, at most (about; one larger line still goes, alone). */
const RESTORE_BATCH_BYTES = 256 * 1024;
const RESTORE_BATCH_ITEMS = 500;

type PageReply = { ok: boolean; cursor?: string; lines?: unknown[]; rest?: { b: string; k: string }[]; error?: { message: string } };

/**
 * `dynamo backup FILE`: every key of every node that answers, each replica's copy a line of
 * NDJSON with all its versions (siblings, clocks, tombstones). Written to FILE.partial and
 * renamed when complete, so FILE is never half a backup.
 */
export async function backupCommand(positionals: string[], values: Record<string, unknown>): Promise<Outcome> {
  if (positionals.length !== 1) throw new UsageError('usage: dynamo backup FILE');
  const file = positionals[0] as string;
  const partial = `${file}.partial`;
  return withCluster(values, async (t, prefix) => {
    const s = subjects(prefix);
    const status = decodeJson<{ ok: boolean; members: MemberStatus[] }>(await t.request(s.status, '', 5000));
    // Every member not known to be gone is read. The status's counts say nothing of that: a node
    // busy folding its tree can miss the status's half-second ping and still serve its pages.
    const members = status.members.filter((m) => m.state !== 'left' && m.state !== 'down');
    const down = status.members.filter((m) => m.state === 'down').map((m) => m.id);
    const total = members.reduce((a, m) => a + (m.keys ?? 0) + (m.tombstones ?? 0), 0);
    const silent: string[] = [];
    const out = createWriteStream(partial);
    const write = async (line: string) => {
      if (!out.write(`${line}\n`)) await once(out, 'drain');
    };
    const progress = progressLine('records');
    let records = 0;
    try {
      for (const m of members) {
        for (let cursor = '0'; ; ) {
          let reply: Uint8Array;
          try {
            reply = await t.request(s.nodeBackup(m.id), JSON.stringify({ cursor, count: BACKUP_PAGE }), 30_000);
          } catch (e) {
            // A node that does not answer its first page is left out; one that stops halfway fails the backup.
            if (cursor !== '0' || !(e instanceof TransportError) || (e.kind !== 'no-responders' && e.kind !== 'timeout')) throw e;
            silent.push(m.id);
            break;
          }
          const page = decodeJson<PageReply>(reply);
          if (!page.ok) throw new Error(`node ${m.id} refused a backup page: ${page.error?.message ?? 'unknown error'}`);
          for (const line of page.lines ?? []) await write(JSON.stringify(line));
          records += page.lines?.length ?? 0;
          // Keys that did not fit the page's message come one at a time.
          for (const k of page.rest ?? []) {
            const one = decodeJson<PageReply>(await t.request(s.nodeBackup(m.id), JSON.stringify({ keys: [k] }), 30_000));
            if (!one.ok || (one.lines?.length ?? 0) === 0)
              throw new Error(`node ${m.id}: key ${k.b}/${k.k} does not fit one message: ${one.error?.message ?? 'too large'}`);
            for (const line of one.lines ?? []) await write(JSON.stringify(line));
            records += one.lines?.length ?? 0;
          }
          progress.show('backup', records, Math.max(total, records));
          cursor = page.cursor ?? '0';
          if (cursor === '0') break;
        }
      }
      out.end();
      await once(out, 'finish');
      if (silent.length === members.length) {
        rmSync(partial, { force: true });
        return { out: 'dynamo backup: no node answers; nothing backed up', code: 1 };
      }
      renameSync(partial, file);
    } catch (e) {
      out.destroy();
      rmSync(partial, { force: true });
      throw e;
    } finally {
      progress.end();
    }
    const unread = [...down, ...silent];
    if (unread.length > 0) process.stderr.write(`not read: ${unread.join(', ')} (down or not answering; their keys are read from the other replicas)\n`);
    const read = members.filter((m) => !silent.includes(m.id)).map((m) => m.id);
    return { out: `backed up ${records} records (each replica's copy of a key) from ${read.join(', ')} to ${file}`, code: 0 };
  });
}

/**
 * `dynamo restore FILE`: merge a backup into the running cluster, each key into its
 * replicas in the ring as it is now. Versions merge by their clocks: restoring twice, or
 * the copies of one key from several replicas, changes nothing more.
 */
export async function restoreCommand(positionals: string[], values: Record<string, unknown>): Promise<Outcome> {
  if (positionals.length !== 1) throw new UsageError('usage: dynamo restore FILE');
  const file = positionals[0] as string;
  let size: number;
  try {
    size = statSync(file).size;
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as Error).message}`);
  }
  return withCluster(values, async (t, prefix) => {
    const s = subjects(prefix);
    const input = createReadStream(file);
    const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
    const progress = progressLine('bytes');
    let batch: string[] = [];
    let bytes = 0;
    let read = 0;
    let restored = 0;
    const failed: string[] = [];
    let lineNo = 0;
    const send = async () => {
      if (batch.length === 0) return;
      const reply = decodeJson<{ ok: boolean; restored?: number; failed?: { b: string; k: string }[]; error?: { message: string } }>(
        await t.request(s.restore, `{"items":[${batch.join(',')}]}`, 60_000),
      );
      if (!reply.ok) throw new Error(`the cluster refused lines ${lineNo - batch.length + 1}-${lineNo}: ${reply.error?.message ?? 'unknown error'}`);
      restored += reply.restored ?? 0;
      for (const f of reply.failed ?? []) failed.push(`${f.b}/${f.k}`);
      batch = [];
      bytes = 0;
      progress.show('restore', Math.min(read, size), size);
    };
    try {
      for await (const line of lines) {
        lineNo++;
        read += Buffer.byteLength(line, 'utf8') + 1;
        if (line.trim() === '') continue;
        try {
          JSON.parse(line);
        } catch {
          throw new Error(`${file} line ${lineNo} is not JSON; the lines before it were restored`);
        }
        if (batch.length >= Math.min(RESTORE_BATCH_ITEMS, MAX_BACKUP_PAGE) || (batch.length > 0 && bytes + line.length > RESTORE_BATCH_BYTES)) await send();
        batch.push(line);
        bytes += line.length;
      }
      await send();
    } finally {
      progress.end();
      input.destroy();
    }
    const summary = `restored ${restored} records from ${file}`;
    if (failed.length === 0) return { out: summary, code: 0 };
    return { out: `${summary}; ${failed.length} did not reach enough replicas (W), for example ${failed.slice(0, 5).join(', ')}: run it again`, code: 1 };
  });
}
