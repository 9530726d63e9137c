import { inject, injectable } from 'tsyringe';
import { createActor, fromCallback, fromPromise } from 'xstate';
import type { NodeConfig } from '../../src/config.js';
import { errorReply } from '../../src/errors.js';
import { TOKENS } from '../../src/di/tokens.js';
import type { ClientRequest } from '../../src/protocol/requests.js';
import { replicaGetText, replicaPutText } from '../../src/protocol/replica.js';
import { subjects, type Subjects } from '../../src/protocol/subjects.js';
import type { Clock } from '../../src/clock/clock.js';
import type { Storage } from '../../src/storage/storage.js';
import { decodeJson, type Transport } from '../../src/transport/transport.js';
import type { Version } from '../../src/versioning/index.js';
import { coordinatorMachine, REPAIR_TIMEOUT_MS, type ReadReplicasInput, type RepairInput, type ReplicaEvent, type ReplicateWriteInput } from './coordinator-machine.js';

interface PutReply {
  ok: boolean;
  stored?: boolean[];
}
interface GetReply {
  ok: boolean;
  found?: (Version[] | null)[];
}

/**
 * Runs coordinator machines for this node: binds the machine's I/O actors to this
 * node's storage and transport once, then starts one standalone actor per request.
 * A finished actor is dropped, so nothing accumulates per request.
 */
@injectable()
export class CoordinatorRunner {
  private readonly subjects: Subjects;
  private readonly machine;
  private active = 0;

  constructor(
    @inject(TOKENS.Config) private readonly config: NodeConfig,
    @inject(TOKENS.Transport) private readonly transport: Transport,
    @inject(TOKENS.Storage) private readonly storage: Storage,
    @inject(TOKENS.Clock) private readonly clock: Clock,
  ) {
    this.subjects = subjects(config.prefix);
    this.machine = coordinatorMachine.provide({
      actors: {
        coordinateLocal: fromPromise(({ input }) => this.storage.coordinate(input)),
        replicateWrite: fromCallback<ReplicaEvent, ReplicateWriteInput>(
          ({ input, sendBack }) => {
            let live = true;
            const body = replicaPutText(input.bucket, input.key, input.siblingsText);
            for (const node of input.extras) {
              this.transport.request(this.subjects.replicaPut(node), body, input.timeoutMs).catch(() => {});
            }
            for (const node of input.replicas) {
              const hintFor = input.hints.get(node);
              this.transport
                .request(this.subjects.replicaPut(node), hintFor === undefined ? body : replicaPutText(input.bucket, input.key, input.siblingsText, hintFor), input.timeoutMs)
                .then((data) => {
                  if (!decodeJson<PutReply>(data).ok) throw new Error('replica refused the write');
                })
                .then(
                  () => live && sendBack({ type: 'REPLICA.ACK', node }),
                  (e: Error) => live && sendBack({ type: 'REPLICA.FAIL', node, reason: e.message }),
                );
            }
            return () => {
              live = false;
            };
          },
        ),
        readReplicas: fromCallback<ReplicaEvent, ReadReplicasInput>(
          ({ input, sendBack }) => {
            let live = true;
            const body = replicaGetText(input.bucket, input.key);
            for (const node of input.replicas) {
              const read =
                node === this.config.nodeId
                  ? this.storage.read(input.bucket, input.key)
                  : this.transport.request(this.subjects.replicaGet(node), body, input.timeoutMs).then((data) => {
                      const reply = decodeJson<GetReply>(data);
                      if (!reply.ok || !reply.found) throw new Error('replica refused the read');
                      return reply.found[0] ?? [];
                    });
              read.then(
                (versions) => live && sendBack({ type: 'REPLICA.READ', node, versions }),
                (e: Error) => live && sendBack({ type: 'REPLICA.FAIL', node, reason: e.message }),
              );
            }
            return () => {
              live = false;
            };
          },
        ),
        repair: fromPromise<void, RepairInput>(async ({ input }) => {
          const sends: Promise<unknown>[] = [];
          for (const [node, versions] of input.plan) {
            sends.push(
              node === this.config.nodeId
                ? this.storage.apply(input.bucket, input.key, versions)
                : this.transport.request(this.subjects.replicaPut(node), replicaPutText(input.bucket, input.key, JSON.stringify(versions)), REPAIR_TIMEOUT_MS),
            );
          }
          await Promise.allSettled(sends);
        }),
      },
    });
  }

  /** Requests being coordinated right now (including read repairs still running). */
  get inFlight(): number {
    return this.active;
  }

  run(request: ClientRequest, replicas: readonly string[], extras: readonly string[], hints: ReadonlyMap<string, string>, reply: (text: string) => void): void {
    this.active++;
    let replied = false;
    const once = (text: string) => {
      if (replied) return;
      replied = true;
      reply(text);
    };
    const actor = createActor(this.machine, {
      clock: this.clock,
      input: { request, replicas, extras, hints, self: this.config.nodeId, nowMs: this.clock.now(), monotonic: () => this.clock.monotonic(), reply: once },
    });
    actor.subscribe({
      complete: () => this.active--,
      error: (e) => {
        this.active--;
        // A bug, not an expected failure: the client still gets exactly one answer.
        once(JSON.stringify(errorReply('INTERNAL', `coordinator failed: ${(e as Error).message}`)));
      },
    });
    actor.start();
  }
}
