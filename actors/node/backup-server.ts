import { inject, injectable } from 'tsyringe';
import { replicaCount } from '../../src/membership/placement.js';
import type { NodeConfig } from '../../src/config.js';
import { TOKENS, type Logger } from '../../src/di/tokens.js';
import { errorText } from '../../src/errors.js';
import type { Membership } from '../../src/membership/membership.js';
import { backupLine, parseBackupRequest, parseRestore, type BackupItem } from '../../src/protocol/backup.js';
import { BatchFill, itemsBody } from '../../src/protocol/batch-fill.js';
import { MAX_REPLICA_BATCH, replicaPutItem } from '../../src/protocol/replica.js';
import { isErrorReply } from '../../src/protocol/requests.js';
import type { Subjects } from '../../src/protocol/subjects.js';
import { keyPosition } from '../../src/ring/index.js';
import { SCAN_START, type Storage } from '../../src/storage/storage.js';
import { decodeJson, tryDecodeJson, type Incoming, type Subscription, type Transport } from '../../src/transport/transport.js';
import { Buckets } from './buckets.js';

/** How long a restore waits for each replica's answer. */
const RESTORE_TIMEOUT_MS = 10_000;

/**
 * Backup and restore. A backup reads every node's store page by page
 * (`<p>.node.<id>.admin.backup`), the stored versions passed on as they are. A restore
 * (`<p>.admin.restore`, any node) merges each key's versions into its replicas in the ring
 * as it is now, so a backup loads into a cluster of any size, and twice changes nothing.
 */
@injectable()
export class BackupServer {
  constructor(
    @inject(TOKENS.Subjects) private readonly subjects: Subjects,
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Transport) private readonly transport: Transport,
    @inject(TOKENS.Storage) private readonly storage: Storage,
    @inject(TOKENS.Membership) private readonly membership: Membership,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    private readonly buckets: Buckets,
  ) {}

  listen(): Subscription[] {
    const s = this.subjects;
    return [
      this.transport.subscribe(s.nodeBackup(this.config.nodeId), (m) => void this.page(m)),
      this.transport.subscribe(s.restore, (m) => void this.restore(m), { queue: s.queue.admin }),
    ];
  }

  /** Bytes of lines in one page, at most: the rest of a scan page is named for the caller to fetch one by one. */
  private get pageBytes(): number {
    return Math.max(1024, this.transport.maxPayload - 4096);
  }

  private async page(m: Incoming): Promise<void> {
    const req = parseBackupRequest(tryDecodeJson(m.data));
    if (isErrorReply(req)) return void m.respond(JSON.stringify(req));
    try {
      let cursor = SCAN_START;
      let keys: { bucket: string; key: string }[];
      if ('keys' in req) keys = req.keys.map((k) => ({ bucket: k.b, key: k.k }));
      else {
        const page = await this.storage.scan(req.cursor, req.count);
        cursor = page.cursor;
        keys = page.keys;
      }
      const raws = await this.storage.readRawMany(keys);
      const lines: string[] = [];
      const rest: string[] = [];
      let bytes = 0;
      keys.forEach((k, i) => {
        const raw = raws[i];
        if (raw === null || raw === undefined) return; // deleted outright between the scan and the read
        const line = backupLine(k.bucket, k.key, raw);
        const size = Buffer.byteLength(line, 'utf8');
        if (bytes + size > this.pageBytes && (lines.length > 0 || size > this.pageBytes)) {
          rest.push(JSON.stringify({ b: k.bucket, k: k.key }));
          return;
        }
        bytes += size;
        lines.push(line);
      });
      m.respond(`{"ok":true,"node":${JSON.stringify(this.config.nodeId)},"cursor":"${cursor}","lines":[${lines.join(',')}],"rest":[${rest.join(',')}]}`);
    } catch (e) {
      m.respond(errorText('UNAVAILABLE', `backup read failed: ${(e as Error).message}`));
    }
  }

  private async restore(m: Incoming): Promise<void> {
    const items = parseRestore(tryDecodeJson(m.data), this.config.maxKeyBytes);
    if (isErrorReply(items)) return void m.respond(JSON.stringify(items));
    const ring = this.membership.ring();
    if (ring.size === 0) return void m.respond(errorText('UNAVAILABLE', 'no node has joined the ring yet'));
    // Each item to every live replica of its key, a batch per replica.
    const perNode = new Map<string, number[]>();
    const needed: number[] = [];
    items.forEach((item, i) => {
      const props = this.buckets.props(item.b);
      const n = replicaCount(props.n, ring);
      const live = ring.walk(keyPosition(item.b, item.k), n).filter((id) => !this.membership.isDown(id));
      needed.push(Math.min(props.w, n));
      for (const node of live) {
        const list = perNode.get(node);
        if (list === undefined) perNode.set(node, [i]);
        else list.push(i);
      }
    });
    const acks = new Array<number>(items.length).fill(0);
    await Promise.all([...perNode].map(([node, indexes]) => this.storeOn(node, items, indexes, acks)));
    const failed = items.flatMap((item, i) => ((acks[i] ?? 0) >= (needed[i] ?? 1) ? [] : [{ b: item.b, k: item.k, acks: acks[i], needed: needed[i] }]));
    m.respond(JSON.stringify({ ok: true, restored: items.length - failed.length, failed }));
  }

  /** Merge the items into one replica; counts an ack for each item it took. */
  private async storeOn(node: string, items: readonly BackupItem[], indexes: readonly number[], acks: number[]): Promise<void> {
    if (node === this.config.nodeId) {
      await Promise.all(
        indexes.map(async (i) => {
          const it = items[i] as BackupItem;
          try {
            await this.storage.apply(it.b, it.k, it.x);
            acks[i] = (acks[i] ?? 0) + 1;
          } catch (e) {
            this.logger.warn(`restore of ${it.b}/${it.k} failed here: ${(e as Error).message}`);
          }
        }),
      );
      return;
    }
    const fill = new BatchFill<{ i: number; text: string }>(MAX_REPLICA_BATCH, this.pageBytes);
    const batches: { i: number; text: string }[][] = [];
    for (const i of indexes) {
      const it = items[i] as BackupItem;
      const text = replicaPutItem(it.b, it.k, JSON.stringify(it.x));
      const size = Buffer.byteLength(text, 'utf8');
      if (fill.wouldOverflow(size)) batches.push(fill.take());
      fill.add({ i, text }, size);
    }
    if (fill.length > 0) batches.push(fill.take());
    for (const batch of batches) {
      try {
        const body = itemsBody(batch.map((x) => x.text));
        const reply = decodeJson<{ ok: boolean }>(await this.transport.request(this.subjects.replicaPut(node), body, RESTORE_TIMEOUT_MS));
        if (reply.ok) for (const { i } of batch) acks[i] = (acks[i] ?? 0) + 1;
      } catch {
        // That replica counts no ack for these; anti-entropy brings it the versions later.
      }
    }
  }
}
