/** An incoming request or message. `respond` is a no-op for messages sent without a reply subject. */
export interface Incoming {
  readonly subject: string;
  readonly data: Uint8Array;
  respond(data: Uint8Array | string): void;
}

export interface Subscription {
  unsubscribe(): void;
}

export interface SubscribeOptions {
  /** queue group: each message goes to one member of the group */
  readonly queue?: string;
}

/**
 * Message transport between actors and clients. Production binds NATS; unit tests
 * bind an in-memory network. Failures reject with TransportError.
 */
export interface Transport {
  /** Largest payload the transport carries, in bytes. */
  readonly maxPayload: number;
  request(subject: string, data: Uint8Array | string, timeoutMs: number): Promise<Uint8Array>;
  publish(subject: string, data: Uint8Array | string): void;
  subscribe(subject: string, handler: (msg: Incoming) => void, options?: SubscribeOptions): Subscription;
  /** Resolves when the server has seen every subscription and message sent so far. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

const decoder = new TextDecoder();
export function decodeJson<T = unknown>(data: Uint8Array): T {
  return JSON.parse(decoder.decode(data)) as T;
}

/** The parsed body, or undefined when it is not JSON: for handlers that answer bad input with an error reply. */
export function tryDecodeJson(data: Uint8Array): unknown {
  try {
    return decodeJson(data);
  } catch {
    return undefined;
  }
}
