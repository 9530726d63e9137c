import { inject, injectable } from 'tsyringe';
import type { Clock } from '../../src/clock/clock.js';
import type { NodeConfig } from '../../src/config.js';
import { TOKENS, type Logger } from '../../src/di/tokens.js';
import { errorText } from '../../src/errors.js';
import { MerkleTree, parseTreeField, ringFingerprint, sharedSegmentsOf } from '../../src/merkle/index.js';
import { parseAeRequest, type AeRequest } from '../../src/protocol/anti-entropy.js';
import type { Subjects } from '../../src/protocol/subjects.js';
import { BatchFill } from '../../src/protocol/batch-fill.js';
import type { Storage } from '../../src/storage/storage.js';
import { tryDecodeJson, type Incoming, type Subscription, type Transport } from '../../src/transport/transport.js';
import type { NodeMembership } from '../../src/membership/membership.js';

/** Keys a fetch reads from Redis at a time. */
const FETCH_CHUNK = 16;

/** An exchange not heard from for this long is dropped, freeing its place. */
export const SESSION_TTL_MS = 30_000;

interface Session {
  readonly from: string;
  readonly mask: Uint8Array;
  readonly tree: MerkleTree;
  lastUsed: number;
}

/**
 * The peer side of anti-entropy: answers another replica's exchange with this node
 * from a snapshot of this node's tree, within the byte bound per message and the
 * bound on exchanges served at once.
 */
@injectable()
export class ExchangeServer {
  private readonly sessions = new Map<string, Session>();
  /** exchanges others ran against this node, and bytes it answered with */
  served = 0;
  bytesSent = 0;

  constructor(
    @inject(TOKENS.Subjects) private readonly subjects: Subjects,
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Transport) private readonly transport: Transport,
    @inject(TOKENS.Storage) private readonly storage: Storage,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.Membership) private readonly membership: NodeMembership,
  ) {}

  listen(): Subscription[] {
    const sub = this.transport.subscribe(this.subjects.antiEntropy(this.config.nodeId), (m) => void this.handle(m));
    return [
      {
        unsubscribe: () => {
          sub.unsubscribe();
          this.sessions.clear();
        },
      },
    ];
  }

  private respond(m: Incoming, body: string): void {
    this.bytesSent += Buffer.byteLength(body);
    m.respond(body);
  }

  private async handle(m: Incoming): Promise<void> {
    const req = parseAeRequest(tryDecodeJson(m.data), this.config.maxKeyBytes);
    if (typeof req === 'string') return this.respond(m, errorText('BAD_REQUEST', req));
    try {
      this.respond(m, await this.answer(req));
    } catch (e) {
      this.logger.warn(`anti-entropy request failed: ${(e as Error).message}`);
      this.respond(m, errorText('UNAVAILABLE', `anti-entropy failed here: ${(e as Error).message}`));
    }
  }

  private refuse(reason: 'busy' | 'ring' | 'session', message: string): string {
    return errorText('UNAVAILABLE', message, { reason });
  }

  private async answer(req: AeRequest): Promise<string> {
    const now = this.clock.monotonic();
    for (const [x, s] of this.sessions) if (now - s.lastUsed > SESSION_TTL_MS) this.sessions.delete(x);
    if (req.op === 'end') {
      this.sessions.delete(req.x);
      return '{"ok":true}';
    }
    let session = this.sessions.get(req.x);
    if (req.op === 'tree' && 'from' in req && session === undefined) {
      if (this.sessions.size >= this.config.antiEntropyMaxExchanges) return this.refuse('busy', `this node already serves ${this.sessions.size} exchanges`);
      const ring = this.membership.ring();
      const n = Math.min(this.config.n, ring.size);
      if (ringFingerprint(ring, n) !== req.ring) return this.refuse('ring', 'this node sees another ring; try again once gossip settles');
      const mask = sharedSegmentsOf(ring, this.config.nodeId, req.from, n);
      session = { from: req.from, mask, tree: MerkleTree.fromLeaves(await this.storage.treeLeaves(), mask), lastUsed: now };
      this.sessions.set(req.x, session);
      this.served++;
    }
    if (session === undefined) return this.refuse('session', `no exchange "${req.x}" here (expired or never opened)`);
    session.lastUsed = now;
    const limit = this.config.antiEntropyMaxMessageBytes;
    switch (req.op) {
      case 'tree': {
        const parts = 'parents' in req ? req.parents.map((p) => session.tree.childBytes(req.level, p)) : [Buffer.from(session.tree.root, 'hex')];
        return JSON.stringify({ ok: true, h: Buffer.concat(parts).toString('base64') });
      }
      case 'keys': {
        // Whole segments only, as many as fit (at least one).
        const fill = new BatchFill<string>(Number.POSITIVE_INFINITY, limit);
        const inRange = req.segments.filter((s) => session.mask[s]);
        const found = new Map((await this.storage.segmentKeys(inRange)).map((keys, i) => [inRange[i], keys]));
        for (const segment of req.segments) {
          const text = JSON.stringify([...(found.get(segment) ?? [])]);
          const size = Buffer.byteLength(text);
          if (fill.wouldOverflow(size)) break;
          fill.add(text, size);
        }
        return `{"ok":true,"keys":[${fill.take().join(',')}]}`;
      }
      case 'fetch': {
        // Read a few keys at a time and stop once the reply is full: never more than one message's worth.
        const fill = new BatchFill<string>(Number.POSITIVE_INFINITY, limit);
        let full = false;
        for (let i = 0; i < req.keys.length && !full; i += FETCH_CHUNK) {
          const found = await this.storage.readRawMany(req.keys.slice(i, i + FETCH_CHUNK).map(parseTreeField));
          for (const raw of found) {
            const text = raw ?? 'null';
            const size = Buffer.byteLength(text);
            full = fill.wouldOverflow(size);
            if (full) break;
            fill.add(text, size);
          }
        }
        return `{"ok":true,"found":[${fill.take().join(',')}]}`;
      }
    }
  }
}
