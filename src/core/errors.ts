/**
 * The errors the package raises at run time, each with a stable `code`, so that an `onError`
 * or a `retry.retryable` can tell them apart without matching messages (undici's model).
 */

/** Every `code` an {@link EventCoalescerError} can carry, with what it means. */
export const ERROR_CODES = {
  /** `close()` passed `drainTimeoutMs` with this write or removal unfinished. */
  EC_DRAIN_TIMEOUT: 'close() passed drainTimeoutMs before the store call finished',
  /** The store did not answer within `callTimeoutMs`; the call counts as failed. */
  EC_CALL_TIMEOUT: 'the store did not answer within callTimeoutMs',
  /** Past `maxBacklog`, the oldest waiting write was given up. */
  EC_BACKLOG_FULL: 'the backlog passed maxBacklog',
  /** The Redis client was not connected: nothing was sent. */
  EC_NOT_CONNECTED: 'the Redis client is not connected',
  /** The connection dropped while the command was out: it may or may not have run. */
  EC_CONNECTION_LOST: 'the Redis connection dropped before the command was answered',
  /** The write ran on the master, but fewer replicas than asked acknowledged it in time. */
  EC_REPLICAS_UNACKNOWLEDGED: 'fewer replicas than waitForReplicas.count acknowledged the write',
  /** A field value the store cannot carry (JSON cannot represent it exactly). */
  EC_VALUE_REFUSED: 'a field value the store cannot carry',
  /** The store's user lacks a permission (an ACL refusal). */
  EC_ACL_REFUSED: "the store's user lacks a permission",
  /** The store's script failed for a reason a retry cannot mend. */
  EC_SCRIPT_ERROR: "the store's script failed",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

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
