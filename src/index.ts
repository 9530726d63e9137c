/** The package entry point: the client library. */
export {
  DynamoClient,
  type ClientOptions,
  type CallOptions,
  type GetOptions,
  type KeysOptions,
  type WriteOptions,
  type UpdateOptions,
  type GetResult,
  type PutResult,
  type Outcome,
} from './client/client.js';
export {
  DynamoError,
  BadRequestError,
  TooLargeError,
  QuorumNotMetError,
  DynamoTimeoutError,
  ConflictError,
  UnavailableError,
  InternalError,
  AbortedError,
} from './client/errors.js';
export type { ErrorCode } from './errors.js';
export type { NatsSecurity } from './transport/nats-security.js';
export { Watch, type WatchOptions, type WatchItem, type LostChanges } from './client/watch.js';
export type { ChangeEvent } from './protocol/changes.js';
