/** The error codes of the client contract (docs/protocol.md, *Error codes*). */
export type ErrorCode = 'BAD_REQUEST' | 'TOO_LARGE' | 'QUORUM_NOT_MET' | 'TIMEOUT' | 'CONFLICT' | 'UNAVAILABLE' | 'INTERNAL';

/** An expected failure, sent to the client as a value rather than thrown through the node. */
export interface ErrorReply {
  readonly ok: false;
  readonly error: { readonly code: ErrorCode; readonly message: string; readonly [detail: string]: unknown };
}

export function errorReply(code: ErrorCode, message: string, details: Record<string, unknown> = {}): ErrorReply {
  return { ok: false, error: { ...details, code, message } };
}

/** An error reply as the JSON text that goes on the wire. */
export function errorText(code: ErrorCode, message: string, details: Record<string, unknown> = {}): string {
  return JSON.stringify(errorReply(code, message, details));
}

/** Raised by a transport when a request could not be delivered or answered. */
export class TransportError extends Error {
  override readonly name: string = 'TransportError';
  constructor(
    message: string,
    /** refused: NATS denied the subject to this connection's user */
    readonly kind: 'no-responders' | 'timeout' | 'closed' | 'refused' | 'other',
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Raised by a storage backend when the store fails (connection lost, script error). */
export class StorageError extends Error {
  override readonly name = 'StorageError';
}

/** A conditional write found a version its context did not cover. */
export class ConflictError extends Error {
  override readonly name = 'ConflictError';
}

/** Bad command-line usage: the CLI prints it with the usage text and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
