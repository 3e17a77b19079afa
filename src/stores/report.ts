/**
 * How a store reports what it cannot throw at anyone (a listener that threw, a value it
 * could not decode): to the user's `onError`, or to the console when there is none.
 */
import { expected } from '../core/describe.js';
import type { StoreErrorContext, StoreErrorHandler } from '../core/types.js';

const consoleReport: StoreErrorHandler = (error, context) => {
  console.error(`event-coalescer: snapshot store ${context.operation} error`, context, error);
};

/** The store's `onError` option, checked, made safe to call. */
export function storeErrorHandler(onError: unknown, name = 'onError'): StoreErrorHandler {
  if (onError !== undefined && typeof onError !== 'function') {
    throw new TypeError(expected(name, 'a function', onError));
  }
  const handler = (onError as StoreErrorHandler | undefined) ?? consoleReport;
  return (error: unknown, context: StoreErrorContext): void => {
    try {
      handler(error, context);
    } catch {
      // A handler that throws has been told; nothing else may be disturbed by it.
    }
  };
}

/** Calls every listener with `change`; one that throws is reported, the others still run. */
export function notifyAll<C extends { workspaceId: string }>(
  listeners: Iterable<(change: C) => void>,
  change: C,
  report: StoreErrorHandler,
): void {
  for (const listener of [...listeners]) {
    try {
      listener(change);
    } catch (error) {
      report(error, { operation: 'listener', workspaceId: change.workspaceId });
    }
  }
}
