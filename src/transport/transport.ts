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

/** One request subject of a service. */
export interface Endpoint {
  /** letters, digits, "-" and "_": how `nats micro info` names it */
  readonly name: string;
  readonly subject: string;
  /** queue group; none: every subscriber gets each request */
  readonly queue?: string;
  readonly handler: (msg: Incoming) => void;
}

/** A service's identity, as `$SRV.INFO` reports it. */
export interface ServiceSpec {
  /** letters, digits, "-" and "_" */
  readonly name: string;
  /** semver */
  readonly version: string;
  readonly description: string;
  readonly metadata: Readonly<Record<string, string>>;
}

/** A service's subscriptions; `ready` settles once every endpoint is subscribed. */
export interface ServiceSubscription extends Subscription {
  readonly ready: Promise<void>;
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
  /**
   * Subscribe `endpoints` as one service: on NATS a micro service that `$SRV.PING`,
   * `$SRV.INFO` and `$SRV.STATS` (and so `nats micro ls`) find, with per-endpoint stats.
   */
  serve(spec: ServiceSpec, endpoints: readonly Endpoint[]): ServiceSubscription;
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
