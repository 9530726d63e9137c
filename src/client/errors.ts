import type { ErrorCode } from '../errors.js';

/** Any error reply from the cluster. `details` holds the reply's extra fields (acks, needed, field, limit...). */
export class DynamoError extends Error {
  override readonly name: string = 'DynamoError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Readonly<Record<string, unknown>> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The request was malformed (the reply names the `field`). */
export class BadRequestError extends DynamoError {
  override readonly name = 'BadRequestError';
}

/** The value is over the size limit. */
export class TooLargeError extends DynamoError {
  override readonly name = 'TooLargeError';
}

/** Fewer than R (or W) replicas answered. */
export class QuorumNotMetError extends DynamoError {
  override readonly name = 'QuorumNotMetError';
  get acks(): number {
    return this.details['acks'] as number;
  }
  get needed(): number {
    return this.details['needed'] as number;
  }
}

/** The request's time ran out: in the cluster (with acks and needed), or on the way (with the transport error as `cause`). */
export class DynamoTimeoutError extends DynamoError {
  override readonly name = 'DynamoTimeoutError';
}

/** A conditional write lost: `ifMatch` met a version its context did not see, or `ifNoneMatch` found the key, or a key's siblings hit their bound. */
export class ConflictError extends DynamoError {
  override readonly name = 'ConflictError';
}

/** No node could take the request (none listening, node not serving, overloaded); `cause` says which when known. */
export class UnavailableError extends DynamoError {
  override readonly name = 'UnavailableError';
}

/** A bug in the cluster; the message says what failed. */
export class InternalError extends DynamoError {
  override readonly name = 'InternalError';
}

/** The caller's AbortSignal fired before the reply came. */
export class AbortedError extends Error {
  override readonly name = 'AbortedError';
}

const CLASSES: Record<ErrorCode, new (code: ErrorCode, message: string, details?: Record<string, unknown>) => DynamoError> = {
  BAD_REQUEST: BadRequestError,
  TOO_LARGE: TooLargeError,
  QUORUM_NOT_MET: QuorumNotMetError,
  TIMEOUT: DynamoTimeoutError,
  CONFLICT: ConflictError,
  UNAVAILABLE: UnavailableError,
  INTERNAL: InternalError,
};

/** The typed error for an error reply. */
export function errorFromReply(error: { code: ErrorCode; message: string; [k: string]: unknown }): DynamoError {
  const { code, message, ...details } = error;
  const Cls = CLASSES[code] ?? DynamoError;
  return new Cls(code, message, details);
}
