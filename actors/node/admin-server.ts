import { inject, injectable } from 'tsyringe';
import type { NodeConfig } from '../../src/config.js';
import { TOKENS } from '../../src/di/tokens.js';
import type { Membership } from '../../src/membership/membership.js';
import { subjects, type Subjects } from '../../src/protocol/subjects.js';
import { RING_BITS } from '../../src/ring/index.js';
import type { Storage } from '../../src/storage/storage.js';
import { decodeJson, type Incoming, type Subscription, type Transport } from '../../src/transport/transport.js';
import { VERSION } from '../../src/version.js';

/** How long a status request waits for each peer's ping. */
export const PING_TIMEOUT_MS = 500;

export interface PingReply {
  ok: true;
  node: string;
  state: string;
  keys: number;
  inFlight: number;
  version: string;
}

export interface MemberStatus {
  id: string;
  state: string;
  weight: number;
  tokens: number;
  /** fraction of the ring this member owns as primary */
  ownership: number;
  keys: number | null;
  inFlight: number | null;
}

/** Admin subjects: liveness of this node, and cluster status and ring for any client. */
@injectable()
export class AdminServer {
  private readonly subjects: Subjects;
  /** Set by the node: what its lifecycle machine says now, and requests in flight. */
  probe: () => { state: string; inFlight: number } = () => ({ state: 'unknown', inFlight: 0 });

  constructor(
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Transport) private readonly transport: Transport,
    @inject(TOKENS.Storage) private readonly storage: Storage,
    @inject(TOKENS.Membership) private readonly membership: Membership,
  ) {
    this.subjects = subjects(config.prefix);
  }

  listen(): Subscription[] {
    const reply = (m: Incoming, work: () => Promise<unknown>) =>
      void work().then(
        (body) => m.respond(JSON.stringify(body)),
        (e: Error) => m.respond(JSON.stringify({ ok: false, error: { code: 'INTERNAL', message: e.message } })),
      );
    return [
      this.transport.subscribe(this.subjects.ping(this.config.nodeId), (m) => reply(m, () => this.ping())),
      this.transport.subscribe(this.subjects.status, (m) => reply(m, () => this.status()), { queue: this.subjects.queue.admin }),
      this.transport.subscribe(this.subjects.ring, (m) => reply(m, async () => this.ring()), { queue: this.subjects.queue.admin }),
    ];
  }

  async ping(): Promise<PingReply> {
    const { state, inFlight } = this.probe();
    return { ok: true, node: this.config.nodeId, state, keys: await this.storage.keyCount(), inFlight, version: VERSION };
  }

  private async status() {
    const ring = this.membership.ring();
    const ownership = ring.ownership();
    const tokens = new Map<string, number>();
    for (const t of ring.tokens) tokens.set(t.node, (tokens.get(t.node) ?? 0) + 1);
    const members: MemberStatus[] = await Promise.all(
      ring.members.map(async (m) => {
        const base = { id: m.id, weight: m.weight, tokens: tokens.get(m.id) ?? 0, ownership: ownership.get(m.id) ?? 0 };
        try {
          const p = m.id === this.config.nodeId ? await this.ping() : decodeJson<PingReply>(await this.transport.request(this.subjects.ping(m.id), '', PING_TIMEOUT_MS));
          return { ...base, state: p.state, keys: p.keys, inFlight: p.inFlight };
        } catch {
          return { ...base, state: 'unreachable', keys: null, inFlight: null };
        }
      }),
    );
    const n = Math.min(this.config.n, ring.size);
    return { ok: true, node: this.config.nodeId, version: VERSION, n, r: Math.min(this.config.r, n), w: Math.min(this.config.w, n), members };
  }

  private ring() {
    const ring = this.membership.ring();
    return {
      ok: true,
      hash: `md5, first ${RING_BITS} bits, of "bucket/key"`,
      n: Math.min(this.config.n, ring.size),
      members: ring.members,
      tokens: ring.tokens.map((t) => [t.position, t.node]),
    };
  }
}
