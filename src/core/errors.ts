/**
 * The errors the package raises at run time, each with a stable `code`, so that an `onError`
 * or a `retry.retryable` can tell them apart without matching messages (undici's model).
 */

/** Every `code` an {@link EventCoalescerError} carries. */
export type ErrorCode =
  /** `close()` passed `drainTimeoutMs` before the write or removal landed. */
  | 'EC_DRAIN_TIMEOUT'
  /** The store did not answer within `callTimeoutMs`; the call counts as failed. */
  | 'EC_CALL_TIMEOUT'
  /** Past `maxBacklog`, the oldest waiting write was given up. */
  | 'EC_BACKLOG_FULL'
  /** The Redis client was not connected: nothing was sent. */
  | 'EC_NOT_CONNECTED'
  /** The connection dropped while the command was out: it may or may not have run. */
  | 'EC_CONNECTION_LOST'
  /** The write ran on the master, but fewer replicas than asked acknowledged it in time. */
  | 'EC_REPLICAS_UNACKNOWLEDGED'
  /** A field value the store cannot carry (JSON cannot represent it exactly). */
  | 'EC_VALUE_REFUSED'
  /** The store's user lacks a permission (an ACL refusal). */
  | 'EC_ACL_REFUSED'
  /** The store's script failed for a reason a retry cannot mend. */
  | 'EC_SCRIPT_ERROR'
  /** A `settled()` receipt: the workspace was removed before its fields landed. */
  | 'EC_REMOVED'
  /** A `settled()` receipt asked of a coalescer already closed, with nothing left to land. */
  | 'EC_CLOSED';

/** Codes that a retry cannot mend: the default `retry.retryable` gives up on them at once. */
const PERMANENT: ReadonlySet<string> = new Set<ErrorCode>([
  'EC_VALUE_REFUSED',
  'EC_ACL_REFUSED',
  'EC_SCRIPT_ERROR',
]);

/**
 * An error raised by event-coalescer itself; `code` is stable, the message is for people.
 *
 * @example
 * onError(error) {
 *   if (error instanceof EventCoalescerError && error.code === 'EC_DRAIN_TIMEOUT') …
 * }
 */
export class EventCoalescerError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(`event-coalescer: ${message}`, options);
    this.name = 'EventCoalescerError';
    this.code = code;
  }
}

/** The `code` of an error of this package (or any error carrying a string `code`). */
export function errorCode(error: unknown): string | undefined {
  if (error === null || typeof error !== 'object') return undefined;
  try {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the error carries a code a retry cannot mend. */
export function isPermanentCode(error: unknown): boolean {
  const code = errorCode(error);
  return code !== undefined && PERMANENT.has(code);
}
