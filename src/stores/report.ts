/**
 * How a store reports what it cannot throw at anyone (a listener that threw, a value it
 * could not decode): to the user's `onError`, else to its `logger`, else one console line.
 */
import { expected } from '../core/describe.js';
import { bindLogger } from '../core/guard.js';
import type { Logger, StoreErrorContext, StoreErrorHandler } from '../core/types.js';

const message = (context: StoreErrorContext): string =>
  `event-coalescer: snapshot store ${context.operation} error`;

/** One line per report, so a host's log is not interleaved with stack traces. */
const consoleReport: StoreErrorHandler = (error, context) => {
  const about = 'workspaceId' in context ? ` (${context.workspaceId})` : '';
  const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  console.error(`${message(context)}${about}: ${reason}`);
};

/** The store's `onError` and `logger` options, checked, made one handler that never throws. */
export function storeErrorHandler(
  onError: unknown,
  logger?: unknown,
  name = 'onError',
): StoreErrorHandler {
  if (onError !== undefined && typeof onError !== 'function') {
    throw new TypeError(expected(name, 'a function', onError));
  }
  if (logger !== undefined && (logger === null || typeof logger !== 'object')) {
    throw new TypeError(expected('logger', 'an object with an error method', logger));
  }
  let handler = onError as StoreErrorHandler | undefined;
  if (handler === undefined && logger !== undefined) {
    const bound = bindLogger(logger as Partial<Logger>);
    handler = (error, context) => bound.error({ ...context, err: error }, message(context));
  }
  handler ??= consoleReport;
  return (error: unknown, context: StoreErrorContext): void => {
    try {
      handler(error, context);
    } catch {
      // A handler that throws has been told; nothing else may be disturbed by it.
    }
  };
}

/** Calls `listener` with `change`; one that throws is reported, nothing else disturbed. */
export function notify<C extends { type: string; workspaceId?: string }>(
  listener: (change: C) => void,
  change: C,
  report: StoreErrorHandler,
): void {
  try {
    listener(change);
  } catch (error) {
    report(
      error,
      change.workspaceId === undefined
        ? { operation: 'listener' }
        : { operation: 'listener', workspaceId: change.workspaceId },
    );
  }
}

/** Calls every listener with `change`; one that throws is reported, the others still run. */
export function notifyAll<C extends { type: string; workspaceId?: string }>(
  listeners: Iterable<(change: C) => void>,
  change: C,
  report: StoreErrorHandler,
): void {
  for (const listener of [...listeners]) notify(listener, change, report);
}
