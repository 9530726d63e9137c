import { createInspector, type StatelyInspectionEvent } from '@statelyai/inspect';
import type { InspectionEvent, Observer } from 'xstate';
import WebSocket from 'ws';

/** Inspection events held while the relay is unreachable; older ones are dropped. */
export const MAX_QUEUED_INSPECTION_EVENTS = 500;
const RECONNECT_MS = 3000;

/** Contexts shrunk before they leave the process: inputs carry functions and whole replies. */
function sanitizeContext(context: Record<string, unknown> | undefined): Record<string, unknown> {
  if (context === null || typeof context !== 'object') return {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(context)) {
    if (k === 'input' || typeof v === 'function') continue;
    out[k] = v instanceof Map ? Object.fromEntries(v) : v;
  }
  return out;
}

/**
 * Sends a node's inspection events to the Stately inspector's WebSocket relay
 * (`createInspectorServer` from @statelyai/inspect/server, which `dynamo up --inspect`
 * runs). Unlike the stock WebSocket adapter, its queue is bounded, its reconnect timer
 * never holds the process open, and stop() ends it for good.
 */
export class StatelyRelay {
  private ws: WebSocket | null = null;
  private open = false;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly queue: string[] = [];
  dropped = 0;
  readonly observer: Observer<InspectionEvent>;

  constructor(private readonly url: string) {
    const inspector = createInspector({ send: (e: StatelyInspectionEvent) => this.send(e) }, { sanitizeContext: sanitizeContext as never, autoStart: false });
    this.observer = inspector.inspect;
    this.connect();
  }

  private connect(): void {
    if (this.stopped) return;
    const ws = new WebSocket(this.url);
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

  private send(event: StatelyInspectionEvent): void {
    let text: string;
    try {
      // The registration carries the live snapshot (with child actor refs): keep its plain parts.
      const e = event.type === '@xstate.actor' ? { ...event, snapshot: { status: event.snapshot.status, value: event.snapshot.value, context: event.snapshot.context } } : event;
      text = JSON.stringify(e);
    } catch {
      this.dropped++;
      return;
    }
    if (this.open) return void this.ws!.send(text);
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
    this.ws?.close();
    this.ws?.on('error', () => {});
  }
}
