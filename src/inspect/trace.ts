/**
 * What a node tells watchers about its actors, and the bounds on how much: pure, no
 * I/O and no clock reads (times are passed in), so the sampling and the bounds are
 * tested directly.
 */

/** The actors whose transitions a node traces; coordinators are traced as whole runs. */
export const TRACED_ACTORS = ['node', 'gossiper', 'anti-entropy', 'hinted-handoff', 'reaper', 'coordinator'] as const;
export type TracedActor = (typeof TRACED_ACTORS)[number];

/** Coordinator runs a node traces per second at most, by default (`--inspect-runs-per-second`). */
export const DEFAULT_RUNS_PER_SECOND = 20;
/** Trace messages of all kinds a node publishes per second at most; the rest are counted as dropped. */
export const MAX_TRACE_MESSAGES_PER_SECOND = 200;
/**
 * Of the sampled runs, those also sent to the Stately inspector each second, per node: its
 * UI shows each run as an actor of its own, and each costs a machine definition on the wire.
 */
export const STATELY_RUNS_PER_SECOND = 2;
/** Inspection events a node sends the Stately relay per second at most (the relay repeats each to every other node). */
export const MAX_STATELY_EVENTS_PER_SECOND = 300;
/** A run records this many phases and replica answers at most (a run has a handful of each). */
export const MAX_RUN_STEPS = 32;
/** Keys longer than this are cut in traces (a key may be up to 1 KiB). */
export const MAX_TRACED_KEY_CHARS = 80;

/** A long-lived actor moved from one state to another. */
export interface TransitionTrace {
  readonly type: 'transition';
  readonly node: string;
  readonly actor: Exclude<TracedActor, 'coordinator'>;
  /** wall-clock ms */
  readonly at: number;
  readonly from: string | null;
  readonly to: string;
  /** the event that caused it, as eventText names it (e.g. "after interval", "done", "LEAVE") */
  readonly event: string;
}

export interface RunStep {
  /** ms since the run started */
  readonly atMs: number;
  /** a phase entered (a state of the coordinator machine) or a replica's answer */
  readonly kind: 'phase' | 'ack' | 'read' | 'fail';
  /** the phase's name, or the replica's node id */
  readonly name: string;
}

/** One coordinator run, start to finish: what the console's feed shows. */
export interface RunTrace {
  readonly type: 'run';
  readonly node: string;
  readonly actor: 'coordinator';
  readonly requestId: string;
  readonly at: number;
  readonly op: string;
  readonly bucket: string;
  readonly key: string;
  readonly replicas: readonly string[];
  readonly steps: readonly RunStep[];
  /** ok, or the error code the client got */
  readonly outcome: string;
  /** ms from the start to the client's reply, and to the run's end (a read repairs after replying) */
  readonly replyMs: number | null;
  readonly totalMs: number;
  /** steps not recorded past MAX_RUN_STEPS */
  readonly truncated: number;
}

export type Trace = TransitionTrace | RunTrace;

const STEP_KINDS: readonly string[] = ['phase', 'ack', 'read', 'fail'];
const isString = (x: unknown, max = 1024): x is string => typeof x === 'string' && x.length <= max;
const isNumber = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

/**
 * A trace as received from NATS, checked field by field: anyone can publish on the
 * trace subjects, and what passes is drawn in browsers.
 */
export function isTrace(x: unknown): x is Trace {
  if (typeof x !== 'object' || x === null) return false;
  const t = x as Record<string, unknown>;
  if (!isString(t['node'], 64) || !isNumber(t['at'])) return false;
  if (t['type'] === 'transition') {
    return (
      (TRACED_ACTORS as readonly unknown[]).includes(t['actor']) &&
      t['actor'] !== 'coordinator' &&
      (t['from'] === null || isString(t['from'])) &&
      isString(t['to']) &&
      isString(t['event'])
    );
  }
  if (t['type'] !== 'run' || t['actor'] !== 'coordinator') return false;
  const steps = t['steps'];
  const replicas = t['replicas'];
  return (
    isString(t['requestId'], 128) &&
    isString(t['op'], 16) &&
    isString(t['bucket'], 256) &&
    isString(t['key'], MAX_TRACED_KEY_CHARS + 1) &&
    isString(t['outcome'], 64) &&
    isNumber(t['totalMs']) &&
    (t['replyMs'] === null || isNumber(t['replyMs'])) &&
    isNumber(t['truncated']) &&
    Array.isArray(replicas) &&
    replicas.length <= 64 &&
    replicas.every((r) => isString(r, 64)) &&
    Array.isArray(steps) &&
    steps.length <= MAX_RUN_STEPS &&
    steps.every(
      (s) =>
        typeof s === 'object' && s !== null && isNumber((s as RunStep).atMs) && STEP_KINDS.includes((s as RunStep).kind) && isString((s as RunStep).name, 256),
    )
  );
}

/**
 * A token bucket over a caller-supplied clock: `perSecond` tokens a second, at most a
 * second's worth saved. Used both to sample coordinator runs and to bound trace messages.
 */
export class Budget {
  private tokens: number;
  private last: number | null = null;
  /** takes refused since the start */
  refused = 0;

  constructor(private readonly perSecond: number) {
    if (!(perSecond >= 0)) throw new Error('a budget needs a rate of zero or more per second');
    this.tokens = perSecond;
  }

  take(nowMs: number): boolean {
    if (this.last !== null) this.tokens = Math.min(this.perSecond, this.tokens + ((nowMs - this.last) * this.perSecond) / 1000);
    this.last = nowMs;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    this.refused++;
    return false;
  }
}

/** An XState state value as one dotted path per active leaf, joined by ", " for parallel states. */
export function stateText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null || typeof value !== 'object') return String(value);
  return Object.entries(value as Record<string, unknown>)
    .map(([k, v]) => (v !== null && typeof v === 'object' && Object.keys(v).length === 0 ? k : `${k}.${stateText(v)}`))
    .join(', ');
}

/** Shorter names for XState's generated event types, as a person reads them. */
export function eventText(type: string): string {
  if (type.startsWith('xstate.done.actor.')) return 'done';
  if (type.startsWith('xstate.error.actor.')) return 'error';
  // xstate.after.<delay>.<state id>: a number of ms, or a named delay (`tick`, `remaining`)
  const after = /^xstate\.after\.([^.]+)\./.exec(type);
  if (after) return /^\d+$/.test(after[1]) ? `after ${after[1]} ms` : `after ${after[1]}`;
  if (type === 'xstate.init') return 'init';
  return type;
}

/** Follows one long-lived actor's snapshots and says when its state changed. */
export class TransitionTracker {
  private last: string | null = null;

  constructor(
    private readonly node: string,
    private readonly actor: TransitionTrace['actor'],
  ) {}

  /** The current state, or null before the first snapshot. */
  get current(): string | null {
    return this.last;
  }

  /** A snapshot of the actor: a trace when its state differs from the last one seen, else null. */
  next(value: unknown, eventType: string, at: number): TransitionTrace | null {
    const to = stateText(value);
    if (to === this.last) return null;
    const from = this.last;
    this.last = to;
    return { type: 'transition', node: this.node, actor: this.actor, at, from, to, event: eventText(eventType) };
  }
}

/** Records one sampled coordinator run from its snapshots, within MAX_RUN_STEPS. */
export class RunRecorder {
  private readonly steps: RunStep[] = [];
  private phase: string | null = null;
  private truncated = 0;

  constructor(
    private readonly head: Pick<RunTrace, 'node' | 'requestId' | 'at' | 'op' | 'bucket' | 'replicas'> & { key: string },
    private readonly startedMs: number,
  ) {}

  private push(step: RunStep): void {
    if (this.steps.length < MAX_RUN_STEPS) this.steps.push(step);
    else this.truncated++;
  }

  /** A snapshot of the run's machine, with the event that led to it. */
  snapshot(value: unknown, event: { type: string; node?: unknown }, nowMs: number): void {
    const atMs = this.since(nowMs);
    const replicaKind = event.type === 'REPLICA.ACK' ? 'ack' : event.type === 'REPLICA.READ' ? 'read' : event.type === 'REPLICA.FAIL' ? 'fail' : null;
    if (replicaKind !== null && typeof event.node === 'string') this.push({ atMs, kind: replicaKind, name: event.node });
    const phase = stateText(value);
    if (phase !== this.phase) {
      this.phase = phase;
      this.push({ atMs, kind: 'phase', name: phase });
    }
  }

  private outcome: string | null = null;
  private replyMs: number | null = null;

  /** The client got its answer (the run may go on, to repair replicas). */
  replied(outcome: string, nowMs: number): void {
    this.outcome = outcome;
    this.replyMs = this.since(nowMs);
  }

  private since(nowMs: number): number {
    return Math.max(0, Math.round((nowMs - this.startedMs) * 100) / 100);
  }

  /** The run's trace, once its machine has stopped; a run that never replied is INTERNAL (a bug). */
  finish(nowMs: number): RunTrace {
    const key = this.head.key.length > MAX_TRACED_KEY_CHARS ? `${this.head.key.slice(0, MAX_TRACED_KEY_CHARS)}…` : this.head.key;
    return {
      type: 'run',
      actor: 'coordinator',
      ...this.head,
      key,
      steps: this.steps,
      outcome: this.outcome ?? 'INTERNAL',
      replyMs: this.replyMs,
      totalMs: this.since(nowMs),
      truncated: this.truncated,
    };
  }
}

/** The outcome a reply tells: "ok", or its error code (anything unexpected is "other", keeping label sets small). */
export const OUTCOMES = ['ok', 'BAD_REQUEST', 'TOO_LARGE', 'QUORUM_NOT_MET', 'TIMEOUT', 'CONFLICT', 'UNAVAILABLE', 'INTERNAL', 'other'] as const;
export type Outcome = (typeof OUTCOMES)[number];

const OK_PREFIX = '{"ok":true';
const CODE_MARK = '"code":"';

const OK_BYTES = new TextEncoder().encode(OK_PREFIX);

function startsOk(bytes: Uint8Array): boolean {
  if (bytes.byteLength < OK_BYTES.length) return false;
  for (let i = 0; i < OK_BYTES.length; i++) if (bytes[i] !== OK_BYTES[i]) return false;
  return true;
}

/** Read a reply's outcome without parsing it: replies are produced by this code, `{"ok":true...` or `{"ok":false,"error":{"code":"X"...`. */
export function outcomeOf(reply: string | Uint8Array): Outcome {
  if (typeof reply !== 'string' && startsOk(reply)) return 'ok';
  const text = typeof reply === 'string' ? reply : Buffer.from(reply.buffer, reply.byteOffset, Math.min(reply.byteLength, 160)).toString('utf8');
  if (text.startsWith(OK_PREFIX)) return 'ok';
  const at = text.indexOf(CODE_MARK);
  if (at < 0) return 'other';
  const code = text.slice(at + CODE_MARK.length, text.indexOf('"', at + CODE_MARK.length));
  return (OUTCOMES as readonly string[]).includes(code) ? (code as Outcome) : 'other';
}
