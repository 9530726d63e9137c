import { inject, injectable } from 'tsyringe';
import type { NodeConfig } from '../../src/config.js';
import { NODE_ID } from '../../src/config.js';
import { TOKENS, type Logger } from '../../src/di/tokens.js';
import { errorText } from '../../src/errors.js';
import { sendsTo } from '../../src/membership/handoff.js';
import type { Subjects } from '../../src/protocol/subjects.js';
import { BatchFill } from '../../src/protocol/batch-fill.js';
import { keyPosition, MAX_TOTAL_WEIGHT, MAX_WEIGHT, Ring, totalWeight, type RingMember } from '../../src/ring/index.js';
import { SCAN_START, type Storage, type StoredKey } from '../../src/storage/storage.js';
import { decodeJson, type Incoming, type Subscription, type Transport } from '../../src/transport/transport.js';

/** Where a pull stands: the storage scan cursor and keys of the last page not yet sent. */
export interface PullCursor {
  readonly scan: string;
  readonly pending: readonly (readonly [bucket: string, key: string])[];
  readonly started: boolean;
}

export const PULL_START: PullCursor = { scan: SCAN_START, pending: [], started: false };

export interface PullRequest {
  readonly target: string;
  readonly n: number;
  readonly current: readonly RingMember[];
  readonly future: readonly RingMember[];
  readonly sources: readonly string[];
  readonly cursor: PullCursor;
}

export interface PullReply {
  readonly ok: true;
  /** replica.put items: bucket, key and the stored siblings */
  readonly items: { b: string; k: string; x: unknown }[];
  readonly cursor: PullCursor;
  readonly done: boolean;
  /** keys examined by this page */
  readonly scanned: number;
}

const isMembers = (x: unknown): x is RingMember[] =>
  Array.isArray(x) &&
  x.length <= 1024 &&
  x.every((m) => typeof m?.id === 'string' && NODE_ID.test(m.id) && typeof m.weight === 'number' && m.weight > 0 && m.weight <= MAX_WEIGHT) &&
  totalWeight(x as RingMember[]) <= MAX_TOTAL_WEIGHT;

function parsePull(data: Uint8Array): PullRequest | null {
  let b: Record<string, unknown>;
  try {
    b = decodeJson(data);
  } catch {
    return null;
  }
  if (typeof b !== 'object' || b === null) return null;
  const c = b['cursor'] as Record<string, unknown> | undefined;
  const ok =
    typeof b['target'] === 'string' &&
    Number.isInteger(b['n']) &&
    (b['n'] as number) >= 1 &&
    isMembers(b['current']) &&
    isMembers(b['future']) &&
    Array.isArray(b['sources']) &&
    b['sources'].every((s) => typeof s === 'string') &&
    typeof c === 'object' &&
    c !== null &&
    typeof c['scan'] === 'string' &&
    typeof c['started'] === 'boolean' &&
    Array.isArray(c['pending']) &&
    c['pending'].length <= 4096 &&
    c['pending'].every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && typeof p[1] === 'string');
  return ok ? (b as unknown as PullRequest) : null;
}

/**
 * Serves pulls from joining nodes: one bounded page of this node's keys that the
 * joiner gains, per request. The cursor travels with the request, so a pull
 * resumes where it stopped, even across the joiner's restart.
 */
@injectable()
export class HandoffServer {
  private rings = new Map<string, Ring>();

  constructor(
    @inject(TOKENS.Subjects) private readonly subjects: Subjects,
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Transport) private readonly transport: Transport,
    @inject(TOKENS.Storage) private readonly storage: Storage,
    @inject(TOKENS.Logger) private readonly logger: Logger,
  ) {}

  listen(): Subscription[] {
    return [this.transport.subscribe(this.subjects.handoffPull(this.config.nodeId), (m) => void this.pull(m))];
  }

  private ring(members: readonly RingMember[]): Ring {
    const key = JSON.stringify(members);
    let ring = this.rings.get(key);
    if (!ring) {
      if (this.rings.size > 8) this.rings.clear();
      ring = new Ring(members);
      this.rings.set(key, ring);
    }
    return ring;
  }

  private async pull(m: Incoming): Promise<void> {
    const req = parsePull(m.data);
    if (req === null) return m.respond(errorText('BAD_REQUEST', 'malformed handoff pull'));
    try {
      m.respond(JSON.stringify(await this.page(req)));
    } catch (e) {
      this.logger.warn(`handoff pull for ${req.target} failed: ${(e as Error).message}`);
      m.respond(errorText('UNAVAILABLE', `handoff failed: ${(e as Error).message}`));
    }
  }

  private async page(req: PullRequest): Promise<PullReply> {
    const current = this.ring(req.current);
    const future = this.ring(req.future);
    let { scan, pending, started } = req.cursor;
    let candidates: StoredKey[];
    if (pending.length > 0) {
      candidates = pending.map(([bucket, key]) => ({ bucket, key }));
    } else if (started && scan === SCAN_START) {
      return { ok: true, items: [], cursor: req.cursor, done: true, scanned: 0 };
    } else {
      const pageOut = await this.storage.scan(scan, this.config.transferBatchKeys);
      scan = pageOut.cursor;
      started = true;
      candidates = pageOut.keys;
    }
    const selected = candidates.filter((k) => sendsTo(current, future, keyPosition(k.bucket, k.key), req.n, req.target, this.config.nodeId, req.sources));
    const raws = await this.storage.readRawMany(selected);
    // Stay well inside the transport's message limit; whatever does not fit waits in the cursor.
    const fill = new BatchFill<PullReply['items'][number]>(Number.POSITIVE_INFINITY, Math.floor(this.transport.maxPayload / 2));
    let i = 0;
    for (; i < selected.length; i++) {
      const raw = raws[i];
      if (raw === null || raw === undefined) continue;
      const size = raw.length + selected[i].key.length + 64;
      if (fill.wouldOverflow(size)) break;
      fill.add({ b: selected[i].bucket, k: selected[i].key, x: JSON.parse(raw) }, size);
    }
    const items = fill.take();
    const rest = selected.slice(i).map((k) => [k.bucket, k.key] as const);
    const scanned = req.cursor.pending.length > 0 ? 0 : candidates.length;
    const cursor: PullCursor = { scan, pending: rest, started };
    return { ok: true, items, cursor, done: rest.length === 0 && scan === SCAN_START, scanned };
  }
}
