import { inject, injectable } from 'tsyringe';
import type { NodeConfig } from '../../src/config.js';
import { TOKENS, type Logger } from '../../src/di/tokens.js';
import { errorReply, errorText } from '../../src/errors.js';
import type { FaultyTransport } from '../../src/faults/faulty-transport.js';
import { parseFaults } from '../../src/faults/rules.js';
import { BUCKET_NAME } from '../../src/protocol/requests.js';
import type { Subjects } from '../../src/protocol/subjects.js';
import type { Storage } from '../../src/storage/storage.js';
import { tryDecodeJson, type Incoming, type Subscription, type Transport } from '../../src/transport/transport.js';

const OFF = errorReply('UNAVAILABLE', 'fault injection is off on this node; start it with --allow-faults');

/**
 * Test and demo subjects, answered only by nodes started with --allow-faults:
 * `<p>.admin.faults` (every node) and `<p>.node.<id>.admin.faults` set the faults
 * this node applies to its traffic to other nodes; `<p>.node.<id>.replica.inspect`
 * shows one key's stored versions on this replica.
 */
@injectable()
export class FaultsServer {
  constructor(
    @inject(TOKENS.Subjects) private readonly subjects: Subjects,
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Transport) private readonly transport: Transport,
    @inject(TOKENS.Storage) private readonly storage: Storage,
    @inject(TOKENS.Faults) control: { injector: FaultyTransport | null },
    @inject(TOKENS.Logger) private readonly logger: Logger,
  ) {
    this.faults = control.injector;
  }

  private readonly faults: FaultyTransport | null;

  listen(): Subscription[] {
    const s = this.subjects;
    const self = this.config.nodeId;
    return [
      this.transport.subscribe(s.faults, (m) => this.setFaults(m, true)),
      this.transport.subscribe(s.nodeFaults(self), (m) => this.setFaults(m, false)),
      this.transport.subscribe(s.replicaInspect(self), (m) => void this.inspect(m)),
    ];
  }

  private setFaults(m: Incoming, broadcast: boolean): void {
    // On the every-node subject only nodes that allow faults answer.
    if (this.faults === null) {
      if (!broadcast) m.respond(JSON.stringify(OFF));
      return;
    }
    const next = parseFaults(tryDecodeJson(m.data), this.faults.rules);
    if (typeof next === 'string') return void m.respond(errorText('BAD_REQUEST', next));
    this.faults.rules = next;
    this.logger.warn(`faults now ${JSON.stringify(next)}`);
    m.respond(JSON.stringify({ ok: true, node: this.config.nodeId, faults: next }));
  }

  private async inspect(m: Incoming): Promise<void> {
    if (this.faults === null) return m.respond(JSON.stringify(OFF));
    const b = tryDecodeJson(m.data) as { bucket?: unknown; key?: unknown } | undefined;
    const bucket = b?.bucket ?? 'default';
    if (typeof b?.key !== 'string' || b.key.length === 0 || typeof bucket !== 'string' || !BUCKET_NAME.test(bucket)) {
      return m.respond(errorText('BAD_REQUEST', 'expected {"key": "...", "bucket"?: "..."}'));
    }
    try {
      m.respond(JSON.stringify({ ok: true, node: this.config.nodeId, versions: await this.storage.read(bucket, b.key) }));
    } catch (e) {
      m.respond(errorText('UNAVAILABLE', (e as Error).message));
    }
  }
}
