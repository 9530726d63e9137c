import type { StatelyInspectionEvent } from '@statelyai/inspect';
import type { AnyActorLogic, InspectionEvent } from 'xstate';
import WebSocket from 'ws';

/** Inspection events held while the relay is unreachable; older ones are dropped. */
export const MAX_QUEUED_INSPECTION_EVENTS = 500;
/** The @statelyai/inspect protocol version these events speak (a test holds it to the installed package). */
export const STATELY_INSPECT_VERSION = '0.7.2';
/** How deep, how long and how many items of a context or event are copied for the inspector. */
const MAX_DEPTH = 4;
const MAX_STRING_CHARS = 256;
const MAX_ITEMS = 32;
const RECONNECT_MS = 3000;

/**
 * A bounded plain copy of a context or event: functions named, Maps and Sets as
 * objects and arrays, long strings and collections cut. Events can carry whole values
 * (a replica read, up to 1 MiB); the inspector needs their shape, not their bytes.
 */
export function plain(value: unknown, depth = MAX_DEPTH): unknown {
  if (typeof value === 'string') return value.length > MAX_STRING_CHARS ? `${value.slice(0, MAX_STRING_CHARS)}…(${value.length} chars)` : value;
  if (typeof value === 'function') return { type: value.name || 'function' };
  if (value === null || typeof value !== 'object') return typeof value === 'bigint' ? String(value) : value;
  if (depth <= 0) return Array.isArray(value) ? `[${value.length} items]` : '{…}';
  if (value instanceof Map) return plain(Object.fromEntries([...value.entries()].slice(0, MAX_ITEMS)), depth);
  if (value instanceof Set || Array.isArray(value)) {
    const items = [...value];
    const head = items.slice(0, MAX_ITEMS).map((v) => plain(v, depth - 1));
    return items.length > MAX_ITEMS ? [...head, `…${items.length - MAX_ITEMS} more`] : head;
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return plain((value as { toJSON(): unknown }).toJSON(), depth);
  const out: Record<string, unknown> = {};
  let n = 0;
  for (const [k, v] of Object.entries(value)) {
    if (n++ >= MAX_ITEMS) {
      out['…'] = `${Object.keys(value).length - MAX_ITEMS} more keys`;
      break;
    }
    out[k] = plain(v, depth - 1);
  }
  return out;
}

/** A machine's context without its input (functions and the whole request). */
function contextOf(snapshot: { context?: unknown }): unknown {
  const ctx = snapshot.context;
  if (ctx === null || typeof ctx !== 'object') return ctx;
  const { input: _input, ...rest } = ctx as Record<string, unknown>;
  return plain(rest);
}

const definitions = new WeakMap<object, string>();
/** A machine's definition as the inspector draws it, serialised once per machine. */
function definitionOf(logic: AnyActorLogic): string | undefined {
  const config = (logic as { config?: object }).config;
  if (config === undefined) return undefined;
  let text = definitions.get(config);
  if (text === undefined) {
    text = JSON.stringify(config, (_k, v: unknown) => (typeof v === 'function' ? { type: v.name || 'function' } : v));
    definitions.set(config, text);
  }
  return text;
}

/** XState's inspection event as the Stately inspector takes it, or null for the kinds it does not show. */
export function toStatelyEvent(ev: InspectionEvent): StatelyInspectionEvent | null {
  const base = {
    sessionId: ev.actorRef.sessionId,
    rootId: ev.rootId,
    createdAt: Date.now().toString(),
    id: null as unknown as string,
    _version: STATELY_INSPECT_VERSION,
  };
  switch (ev.type) {
    case '@xstate.actor': {
      const ref = ev.actorRef as typeof ev.actorRef & { logic: AnyActorLogic; _parent?: { sessionId: string }; id: string };
      // Registered before its first snapshot exists.
      const snap = (ref.getSnapshot() ?? { status: 'active' }) as { status?: string; value?: unknown; context?: unknown };
      const definition = definitionOf(ref.logic);
      return {
        ...base,
        type: '@xstate.actor',
        name: ref.id,
        definition,
        parentId: ref._parent?.sessionId,
        snapshot: { status: snap.status as never, value: snap.value, context: contextOf(snap) },
      };
    }
    case '@xstate.event':
      return { ...base, type: '@xstate.event', event: plain(ev.event) as never, sourceId: ev.sourceRef?.sessionId };
    case '@xstate.snapshot': {
      const snap = ev.snapshot as { status?: string; value?: unknown; context?: unknown };
      return {
        ...base,
        type: '@xstate.snapshot',
        event: plain(ev.event) as never,
        snapshot: { status: snap.status as never, value: snap.value, context: contextOf(snap) } as never,
      };
    }
    default:
      return null;
  }
}

/**
 * Sends a node's inspection events to the Stately inspector's WebSocket relay
 * (src/inspect/relay-server.ts, which `dynamo up --inspect`
 * runs), in the inspector's own event format. It does not use the package's
 * `createInspector`: that serialises every snapshot, machine definition included, to
 * depth 10, and halved a cluster's throughput (npm run bench:inspect). Its queue is
 * bounded, its reconnect timer never holds the process open, and stop() ends it.
 */
export class StatelyRelay {
  private ws: WebSocket | null = null;
  private open = false;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly queue: string[] = [];
  dropped = 0;

  constructor(private readonly url: string) {
    this.connect();
  }

  private connect(): void {
    if (this.stopped) return;
    const ws = new WebSocket(this.url, { perMessageDeflate: false });
    this.ws = ws;
    ws.on('open', () => {
      this.open = true;
      for (const m of this.queue.splice(0)) ws.send(m);
    });
    const retry = () => {
      this.open = false;
      if (this.stopped || this.timer !== null) return;
      this.timer = setTimeout(() => {
        this.timer = null;
        this.connect();
      }, RECONNECT_MS);
      this.timer.unref();
    };
    ws.on('close', retry);
    ws.on('error', retry);
  }

  send(ev: InspectionEvent): void {
    const event = toStatelyEvent(ev);
    if (event === null) return;
    const text = JSON.stringify(event);
    if (this.open && this.ws !== null) return void this.ws.send(text);
    this.queue.push(text);
    if (this.queue.length > MAX_QUEUED_INSPECTION_EVENTS) {
      this.queue.shift();
      this.dropped++;
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.ws?.on('error', () => {});
    this.ws?.close();
  }
}
