import type { MemberStatus } from '../../actors/node/admin-server.js';
import { systemClock, type Clock } from '../clock/clock.js';
import { Budget, isTrace, type RunTrace, type Trace, type TransitionTrace } from '../inspect/trace.js';
import { subjects, type Subjects } from '../protocol/subjects.js';
import { decodeJson, type Subscription, type Transport } from '../transport/transport.js';
import { RateTracker, type RatePoint } from './rates.js';

/** What the console keeps, at most: recent runs, transitions and chart points. */
export const MAX_RUNS = 50;
export const MAX_TRANSITIONS = 300;
export const MAX_RATE_POINTS = 300;
/** Traces the console passes on to browsers per second; nodes bound theirs too. */
export const MAX_FORWARDED_TRACES_PER_SECOND = 200;

const STATUS_TIMEOUT_MS = 2500;
const RING_REFRESH_MS = 10_000;

export interface StatusReply {
  ok: boolean;
  node: string;
  version: string;
  n: number;
  r: number;
  w: number;
  members: MemberStatus[];
}

export interface RingReply {
  ok: boolean;
  n: number;
  members: { id: string; weight: number }[];
  /** [position, node] in ring order */
  tokens: [number, string][];
}

/** Everything the page shows, as of now. */
export interface ConsoleState {
  status: StatusReply | null;
  /** wall-clock ms of the last status that came back */
  statusAt: number | null;
  /** why the last status request failed, if it did */
  statusError: string | null;
  ring: RingReply | null;
  runs: RunTrace[];
  transitions: TransitionTrace[];
  rates: RatePoint[];
  tracesDropped: number;
}

export type ConsoleMessage =
  | { type: 'status'; status: StatusReply; at: number }
  | { type: 'statusError'; error: string; at: number }
  | { type: 'ring'; ring: RingReply }
  | { type: 'rate'; point: RatePoint }
  | { type: 'trace'; trace: Trace };

function pushBounded<T>(list: T[], item: T, max: number): void {
  list.push(item);
  if (list.length > max) list.splice(0, list.length - max);
}

/**
 * The console's view of a cluster over NATS: the status (members, their actors and
 * latency) once a pollMs while a page listens, the ring when it changes, and every trace
 * the nodes publish. Listeners hear each change; the page gets the whole state when it
 * connects, and a reading at once.
 *
 * With no page open the cluster is not asked: a status reading pings every node, and a
 * node folds its tree's dirty keys to count its live ones. Polled regardless, `dynamo up`
 * had every node fold every second for a console nobody was looking at.
 */
export class ConsoleBridge {
  private readonly subjects: Subjects;
  private readonly state: ConsoleState = {
    status: null,
    statusAt: null,
    statusError: null,
    ring: null,
    runs: [],
    transitions: [],
    rates: [],
    tracesDropped: 0,
  };
  private readonly listeners = new Set<(m: ConsoleMessage) => void>();
  private rates = new RateTracker();
  private readonly forwarded = new Budget(MAX_FORWARDED_TRACES_PER_SECOND);
  private subscription: Subscription | null = null;
  private timer: unknown = null;
  /** the reading under way, if any: never two at once */
  private reading: Promise<void> | null = null;
  private ringKey = '';
  private ringAt = -Infinity;
  private stopped = false;

  constructor(
    private readonly transport: Transport,
    prefix: string,
    private readonly pollMs = 1000,
    private readonly clock: Clock = systemClock,
  ) {
    this.subjects = subjects(prefix);
  }

  snapshot(): ConsoleState {
    return this.state;
  }

  /**
   * The state for a request that does not listen (the page's /api/state): read afresh first
   * when no page keeps it current and the last reading is older than pollMs.
   */
  async current(): Promise<ConsoleState> {
    const stale = this.state.statusAt === null || this.clock.now() - this.state.statusAt > this.pollMs;
    if (!this.stopped && this.listeners.size === 0 && stale) await this.read();
    return this.state;
  }

  onMessage(listener: (m: ConsoleMessage) => void): () => void {
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.resume();
    return () => this.listeners.delete(listener);
  }

  /** The first page since none: read now, and every pollMs while a page listens. */
  private resume(): void {
    if (this.stopped || this.timer !== null) return;
    // Rates would span the gap since the last reading: start them again.
    this.rates = new RateTracker();
    // A reading under way (the start's, or /api/state's) is shared (read()); whichever poll
    // ends first sets the one timer (poll()).
    void this.poll();
  }

  /** A listener that throws (a browser socket gone bad) loses that message; the others and the bridge go on. */
  private emit(m: ConsoleMessage): void {
    for (const l of this.listeners) {
      try {
        l(m);
      } catch {
        /* that listener's problem */
      }
    }
  }

  async start(): Promise<void> {
    this.subscription = this.transport.subscribe(this.subjects.traceAll, (m) => {
      let trace: unknown;
      try {
        trace = decodeJson(m.data);
      } catch {
        return;
      }
      if (!isTrace(trace)) return;
      if (!this.forwarded.take(this.clock.monotonic())) return void this.state.tracesDropped++;
      if (trace.type === 'run') pushBounded(this.state.runs, trace, MAX_RUNS);
      else pushBounded(this.state.transitions, trace, MAX_TRANSITIONS);
      this.emit({ type: 'trace', trace });
    });
    await this.transport.flush();
    await this.poll();
  }

  /** One status reading, then the next one pollMs later while a page listens. */
  private async poll(): Promise<void> {
    this.timer = null;
    if (this.stopped) return;
    await this.read();
    if (!this.stopped && this.listeners.size > 0 && this.timer === null) this.timer = this.clock.setTimeout(() => void this.poll(), this.pollMs);
  }

  /**
   * One status reading, or the one under way. Any NATS client can answer the status
   * subject: a reply that is not what a node sends is reported on the page, and never
   * ends the process hosting the console (dynamo up).
   */
  private read(): Promise<void> {
    this.reading ??= this.readStatus()
      .catch((e: unknown) => {
        this.state.statusError = `unreadable status from the cluster: ${(e as Error).message}`;
        this.emit({ type: 'statusError', error: this.state.statusError, at: this.clock.now() });
      })
      .finally(() => {
        this.reading = null;
      });
    return this.reading;
  }

  private async readStatus(): Promise<void> {
    const at = this.clock.now();
    let status: StatusReply;
    try {
      status = decodeJson<StatusReply>(await this.transport.request(this.subjects.status, '', STATUS_TIMEOUT_MS));
      if (!status.ok || !Array.isArray(status.members)) throw new Error('the status reply was not ok');
    } catch (e) {
      this.state.statusError = `no status from the cluster: ${(e as Error).message}`;
      this.emit({ type: 'statusError', error: this.state.statusError, at });
      return;
    }
    Object.assign(this.state, { status, statusAt: at, statusError: null });
    this.emit({ type: 'status', status, at });
    const point = this.rates.next(new Map(status.members.map((m) => [m.id, m.latency])), at);
    if (point !== null) {
      pushBounded(this.state.rates, point, MAX_RATE_POINTS);
      this.emit({ type: 'rate', point });
    }
    const key = status.members.map((m) => `${m.id}:${m.weight}:${m.tokens}`).join(',');
    if (key !== this.ringKey || this.clock.monotonic() - this.ringAt > RING_REFRESH_MS) await this.readRing(key);
  }

  private async readRing(key: string): Promise<void> {
    try {
      const ring = decodeJson<RingReply>(await this.transport.request(this.subjects.ring, '', STATUS_TIMEOUT_MS));
      if (!ring.ok || !Array.isArray(ring.tokens)) return;
      this.ringKey = key;
      this.ringAt = this.clock.monotonic();
      this.state.ring = ring;
      this.emit({ type: 'ring', ring });
    } catch {
      /* asked again on the next reading */
    }
  }

  stop(): void {
    this.stopped = true;
    this.subscription?.unsubscribe();
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.listeners.clear();
  }
}
