import { inject, injectable } from 'tsyringe';
import { createActor, fromCallback, fromPromise, type ActorRefFrom } from 'xstate';
import type { NodeConfig } from '../../src/config.js';
import { TOKENS, type Logger } from '../../src/di/tokens.js';
import type { Storage } from '../../src/storage/storage.js';
import type { Subscription, Transport } from '../../src/transport/transport.js';
import { AdminServer } from './admin-server.js';
import { ClientServer } from './client-server.js';
import { nodeMachine, STOP_TIMEOUT_MS } from './node-machine.js';
import { ReplicaServer } from './replica-server.js';

/**
 * One node of the cluster: its lifecycle machine, and the servers that answer on
 * its subjects while it serves. Assembled by the node's DI container.
 */
@injectable()
export class DynamoNode {
  readonly actor: ActorRefFrom<typeof nodeMachine>;
  private readonly done: Promise<void>;

  constructor(
    @inject(TOKENS.Config) readonly config: NodeConfig,
    @inject(TOKENS.Transport) private readonly transport: Transport,
    @inject(TOKENS.Storage) private readonly storage: Storage,
    @inject(TOKENS.Logger) private readonly logger: Logger,
    private readonly client: ClientServer,
    private readonly replica: ReplicaServer,
    private readonly admin: AdminServer,
  ) {
    admin.probe = () => ({ state: this.state, inFlight: this.client.inFlight });
    const machine = nodeMachine.provide({
      actors: {
        boot: fromPromise(async () => {
          await this.storage.connect();
        }),
        serve: fromCallback(() => {
          const subs: Subscription[] = [...this.replica.listen(), ...this.admin.listen(), ...this.client.listen()];
          return () => subs.forEach((s) => s.unsubscribe());
        }),
        shutdown: fromPromise(async () => {
          // Client subjects are gone (serving's exit unsubscribed them); let running requests finish.
          const deadline = performance.now() + STOP_TIMEOUT_MS;
          while (this.client.inFlight > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
          await this.storage.close();
          await this.transport.close();
        }),
      },
    });
    this.actor = createActor(machine, { id: `node-${config.nodeId}` });
    this.done = new Promise((resolve) => this.actor.subscribe({ complete: () => resolve(), error: () => resolve() }));
  }

  get id(): string {
    return this.config.nodeId;
  }

  /** Client requests this node is coordinating (read repairs included). */
  get inFlight(): number {
    return this.client.inFlight;
  }

  /** booting, serving, stopping or stopped */
  get state(): string {
    return String(this.actor.getSnapshot().value);
  }

  /** Boot and resolve once the node answers on its subjects; rejects if booting fails. */
  async start(): Promise<void> {
    this.actor.start();
    const snap = await new Promise<ReturnType<typeof this.actor.getSnapshot>>((resolve) => {
      const sub = this.actor.subscribe((s) => {
        if (s.value !== 'booting') {
          sub.unsubscribe();
          resolve(s);
        }
      });
    });
    if (snap.value !== 'serving') {
      await this.done;
      throw new Error(`node ${this.id} failed to start: ${snap.context.error ?? 'stopped while booting'}`);
    }
    // Every subscription was sent on entering `serving`; the flush makes sure the server has them.
    await this.transport.flush();
    this.logger.info(`serving on prefix "${this.config.prefix}" with ${this.config.members.length} member(s)`);
  }

  /** Stop serving, let in-flight requests finish, then close storage and transport. */
  async stop(): Promise<void> {
    this.actor.send({ type: 'STOP' });
    await this.done;
  }
}
