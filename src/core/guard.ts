/**
 * The one way the core calls code it does not own: the logger, `onError`, `canCreate` and
 * the store's methods. What such code throws or returns is handled here, and only here.
 */
import type { ErrorContext, ErrorHandler, Logger } from './types.js';

const noop = (): void => {};
const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

/** The logger's own methods, bound (pino's need their `this`); a missing one is a no-op. */
export function bindLogger(logger: Partial<Logger>): Logger {
  const bound = { ...silentLogger };
  for (const level of LOG_LEVELS) {
    const method = logger[level];
    if (typeof method === 'function') bound[level] = method.bind(logger);
  }
  return bound;
}

export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function';
}

export class Guard<F extends object> {
  readonly logger: Logger;
  readonly #onError: ErrorHandler<F> | undefined;

  constructor(logger: Logger, onError: ErrorHandler<F> | undefined) {
    this.logger = logger;
    this.#onError = onError;
  }

  /** Reports something given up to the logger and `onError`, never throwing into the caller. */
  report(error: unknown, context: ErrorContext<F>): void {
    this.logger.error({ ...context, err: error }, `event-coalescer: ${context.operation} given up`);
    const onError = this.#onError;
    if (onError === undefined) return;
    try {
      onError(error, context);
    } catch (thrown) {
      this.logger.error({ err: thrown }, 'event-coalescer: onError threw');
    }
  }
}
