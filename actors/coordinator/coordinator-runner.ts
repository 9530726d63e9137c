import { inject, injectable } from 'tsyringe';
import { Inspection } from '../../src/inspect/inspection.js';
import type { NodeConfig } from '../../src/config.js';
import { errorText } from '../../src/errors.js';
import { TOKENS, type Logger, type Random } from '../../src/di/tokens.js';
import type { ClientRequest } from '../../src/protocol/requests.js';
import { replicaGetItem, replicaPutItem, replicaPutText } from '../../src/protocol/replica.js';
import type { Subjects } from '../../src/protocol/subjects.js';
import { sleep, type Clock } from '../../src/clock/clock.js';
import { getReplyText } from '../../src/quorum/read.js';
import type { Resolver } from '../../src/resolvers/index.js';
import { MAX_SIBLINGS, SiblingLimitError, type CoordinatedResult, type Storage } from '../../src/storage/storage.js';
import { ConflictError } from '../../src/errors.js';
import { counterOf, expired, isTombstone, merge as mergeClocks, fullClock, prune, type VClock } from '../../src/versioning/index.js';
import { randomBytes } from 'node:crypto';
import { decodeJson, type Transport } from '../../src/transport/transport.js';
import { ReplicaBatcher } from './replica-batcher.js';
import { AWAY_REPAIR_REFUSAL, AwayRepair } from '../node/away-repair.js';
import { ChangeLog } from '../node/change-log.js';
import {
  getCoordinatorMachine,
  putCoordinatorMachine,
  READ_REPAIR_TIMEOUT_MS,
  startRun,
  tell,
  type CoordinatorInput,
  type CoordinatorIo,
  type LocalWrite,
} from './coordinator-machine.js';
import { present } from '../../src/invariant.js';

interface PutReply {
  ok: boolean;
  stored?: boolean[];
}

/**
 * Runs coordinator machines for this node: binds the machine's I/O actors to this
 * node's storage and transport once, then starts one run of the machine per request (an
 * XState actor when the run is sampled for inspection).
 * A finished actor is dropped, so nothing accumulates per request.
 */
@injectable()
export class CoordinatorRunner {
  private readonly putMachine;
  private readonly getMachine;
  private active = 0;
  private readonly batcher: ReplicaBatcher;

  constructor(
    @inject(TOKENS.Subjects) private readonly subjects: Subjects,
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Transport) private readonly transport: Transport,
    @inject(TOKENS.Storage) private readonly storage: Storage,
    @inject(TOKENS.Clock) private readonly clock: Clock,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.Random) private readonly random: Random,
    private readonly inspection: Inspection,
    private readonly changes: ChangeLog,
    private readonly away: AwayRepair,
  ) {
    this.batcher = new ReplicaBatcher(transport, this.subjects);
    const io: CoordinatorIo = {
      writeLocal: ({ self }, w) => {
        this.writeLocal(w).then(
          (output) => tell(self, { type: 'LOCAL.DONE', output }),
          (error: unknown) => tell(self, { type: 'LOCAL.FAIL', error }),
        );
      },
      replicateWrite: ({ self }, input) => {
        const item = replicaPutItem(input.bucket, input.key, input.siblingsText);
        for (const node of input.extras) this.batcher.put(node, item, input.timeoutMs).catch(() => {});
        for (const node of input.replicas) {
          const hintFor = input.hints.get(node);
          // A hinted write goes alone: a full hint store refuses its whole message.
          const sent =
            hintFor === undefined
              ? this.batcher.put(node, item, input.timeoutMs)
              : this.transport
                  .request(this.subjects.replicaPut(node), replicaPutText(input.bucket, input.key, input.siblingsText, hintFor), input.timeoutMs)
                  .then((data) => {
                    if (!decodeJson<PutReply>(data).ok) throw new Error('replica refused the write');
                  });
          sent.then(
            () => tell(self, { type: 'REPLICA.ACK', node }),
            (e: Error) => tell(self, { type: 'REPLICA.FAIL', node, reason: e.message }),
          );
        }
      },
      readReplicas: ({ self }, input) => {
        const item = replicaGetItem(input.bucket, input.key);
        for (const node of input.replicas) {
          const read =
            node !== this.config.nodeId
              ? this.batcher.get(node, item, input.timeoutMs)
              : this.away.repairing
                ? Promise.reject(new Error(AWAY_REPAIR_REFUSAL))
                : this.storage.read(input.bucket, input.key);
          read.then(
            (versions) => tell(self, { type: 'REPLICA.READ', node, versions }),
            (e: Error) => tell(self, { type: 'REPLICA.FAIL', node, reason: e.message }),
          );
        }
      },
      repair: ({ self }, input) => {
        const sends: Promise<unknown>[] = [];
        for (const [node, versions] of input.plan) {
          sends.push(
            node === this.config.nodeId
              ? this.storage.apply(input.bucket, input.key, versions)
              : this.transport.request(
                  this.subjects.replicaPut(node),
                  replicaPutText(input.bucket, input.key, JSON.stringify(versions)),
                  READ_REPAIR_TIMEOUT_MS,
                ),
          );
        }
        void Promise.allSettled(sends).then(() => tell(self, { type: 'REPAIR.DONE' }));
      },
    };
    this.putMachine = putCoordinatorMachine.provide({ actions: io });
    this.getMachine = getCoordinatorMachine.provide({ actions: io });
  }

  /** Every acknowledged write goes to the change log: one function for all runs, not a closure per request. */
  private readonly acknowledged: NonNullable<CoordinatorInput['acknowledged']> = (request, version, context) =>
    this.changes.record(request.op, request.bucket, request.key, version, context);

  /** Requests this node has coordinated; a request's id is `<node>-<n>` (in traces and log lines). */
  private sequence = 0;

  requestId(seq: number): string {
    return `${this.config.nodeId}-${seq}`;
  }

  /** Requests being coordinated right now (including read repairs still running). */
  get inFlight(): number {
    return this.active;
  }

  run(request: ClientRequest, replicas: readonly string[], extras: readonly string[], hints: ReadonlyMap<string, string>, reply: (text: string) => void): void {
    this.active++;
    const seq = ++this.sequence;
    let replied = false;
    // Sampled runs only (a bounded number a second); the rest are created with no observer at all.
    const traced = this.inspection.sampleRun(request, replicas, seq);
    const deadline = this.clock.monotonic() + request.timeoutMs;
    const once = (text: string) => {
      if (replied) return;
      replied = true;
      reply(text);
      traced?.replied(text);
    };
    startRun(
      request.op === 'get' ? this.getMachine : this.putMachine,
      {
        request,
        replicas,
        extras,
        hints,
        self: this.config.nodeId,
        nowMs: this.clock.now(),
        remainingMs: () => Math.max(0, deadline - this.clock.monotonic()),
        reply: once,
        acknowledged: this.acknowledged,
        render: (merged) => this.render(request.resolver, merged, seq),
      },
      this.clock,
      {
        complete: () => this.active--,
        error: (e) => {
          this.active--;
          // A bug, not an expected failure: the client still gets exactly one answer.
          this.logger.error(`coordinator failed: ${(e as Error).message}`, { requestId: this.requestId(seq), op: request.op, bucket: request.bucket });
          once(errorText('INTERNAL', `coordinator failed: ${(e as Error).message}`));
          traced?.finish();
        },
      },
      traced !== null ? { inspect: traced.inspect, id: `coordinator-${request.op}` } : {},
    );
  }

  /** A get's reply; an application resolver that throws fails this request alone, with a log line. */
  private render(resolver: Resolver, merged: Parameters<typeof getReplyText>[0], seq: number): string {
    try {
      return getReplyText(merged, resolver, this.clock.now());
    } catch (e) {
      this.logger.error(`resolver "${resolver.name}" failed: ${(e as Error).message}`, { requestId: this.requestId(seq) });
      return errorText('INTERNAL', `resolver "${resolver.name}" failed: ${(e as Error).message}`);
    }
  }

  /**
   * The coordinator's own write, as the bucket's resolver wants it: last-write-wins
   * supersedes what is stored; CRDT buckets apply their op to the merge of the stored
   * states; other buckets keep siblings, folding them (or refusing) beyond MAX_SIBLINGS.
   */
  private async writeLocal(w: LocalWrite): Promise<CoordinatedResult> {
    const { resolver, crdt: _crdt, ...write } = w;
    if (resolver.kind === 'crdt') return this.rewrite(w);
    if (resolver.name === 'lww') return this.storage.coordinate({ ...write, supersede: true });
    try {
      return await this.storage.coordinate({ ...write, maxSiblings: MAX_SIBLINGS });
    } catch (e) {
      if (!(e instanceof SiblingLimitError)) throw e;
      if (resolver.fold === undefined)
        throw new ConflictError(`${e.message}, over the limit of ${MAX_SIBLINGS}: read the key and write with its context to resolve them`);
      this.siblingsFolded++;
      return this.rewrite(w);
    }
  }

  /** Keys whose siblings a write folded into one (the sibling bound). */
  siblingsFolded = 0;

  /**
   * Read the local siblings, settle them into one value (a CRDT op applied to their
   * merged state, or the resolver's fold with the new value), and write that with a
   * context covering them all, conditionally: a write that got in between makes it
   * start over.
   */
  private rewrite(w: LocalWrite): Promise<CoordinatedResult> {
    // One rewrite of a key at a time on this node: they would only refuse each other.
    const name = `${w.bucket}/${w.key}`;
    const before = this.rewriting.get(name) ?? Promise.resolve();
    const run = before.then(() => this.rewriteNow(w));
    const settled = run.then(
      () => {},
      () => {},
    );
    this.rewriting.set(name, settled);
    void settled.then(() => {
      if (this.rewriting.get(name) === settled) this.rewriting.delete(name);
    });
    return run;
  }

  /** The tail of each key's queue of rewrites on this node. */
  private readonly rewriting = new Map<string, Promise<void>>();

  private async rewriteNow(w: LocalWrite): Promise<CoordinatedResult> {
    const { resolver, crdt, ...write } = w;
    for (let attempt = 0; ; attempt++) {
      // An expired value counts as deleted: it is not folded in, and ifNoneMatch may write over it.
      const stored = expired(await this.storage.read(w.bucket, w.key), w.ts);
      if (w.condition === 'match' && stored.some((s) => counterOf(w.context, s.d[0]) < s.d[1]))
        throw new ConflictError('a version was written since the context was read');
      if (w.condition === 'none-match' && stored.some((s) => !isTombstone(s))) throw new ConflictError('the key exists');
      let context: VClock = w.context;
      for (const s of stored) context = mergeClocks(context, fullClock(s));
      const values = stored.filter((s) => !isTombstone(s)).flatMap((s) => (s.v === undefined ? [] : [s.v]));
      let value: string | undefined;
      if (resolver.kind === 'crdt') {
        const state = values.length === 0 ? null : present(resolver.fold, 'a CRDT resolver folds')(values);
        const writer = await this.storage.writerId(this.config.nodeId);
        value = present(resolver.apply, 'a CRDT resolver applies ops')(state, crdt ?? null, { writer, newTag: () => randomBytes(9).toString('base64url') });
      } else {
        value = write.value === undefined ? undefined : present(resolver.fold, 'a rewrite happens only for a resolver that folds')([...values, write.value]);
      }
      try {
        return await this.storage.coordinate({ ...write, value, context: prune(context), condition: 'match' });
      } catch (e) {
        // Another node wrote the key in between (this node's own rewrites are queued).
        if (!(e instanceof ConflictError) || attempt >= 20) throw e;
        await sleep(this.clock, 1 + Math.floor(this.random() * 5 * (attempt + 1)));
      }
    }
  }
}
