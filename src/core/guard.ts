/**
 * The one way the core calls code it does not own: the logger, `onError`, `canCreate`, the
 * store's methods and whatever they answer. What such code throws never escapes from here;
 * what it returns is adopted as `await` would adopt it.
 */
import type { Counts } from './counts.js';
import { giveUpChannel } from './tracing.js';
import type { ErrorContext, ErrorHandler, Logger } from './types.js';

const noop = (): void => {};
const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

/** What a call into user code threw, kept apart from anything it could return. */
export class Thrown {
  readonly error: unknown;
  constructor(error: unknown) {
    this.error = error;
  }
}

/** Calls `fn` with `thisArg` and `args`; what it throws comes back as a `Thrown`. */
export function attempt<A extends unknown[], R>(
  fn: (...args: A) => R,
  thisArg: unknown,
  ...args: A
): R | Thrown {
  try {
    return fn.apply(thisArg, args);
  } catch (error) {
    return new Thrown(error);
  }
}

/** {@link attempt} for a function of one argument, called without an array of arguments. */
export function attemptOne<A, R>(fn: (arg: A) => R, arg: A): R | Thrown {
  try {
    return fn(arg);
  } catch (error) {
    return new Thrown(error);
  }
}

/** Calls `target[method](...args)`, the method read inside the guard (a getter may throw too). */
export function attemptMethod<T extends object>(
  target: T,
  method: keyof T & string,
  ...args: unknown[]
): unknown {
  try {
    return (target[method] as (...args: unknown[]) => unknown).apply(target, args);
  } catch (error) {
    return new Thrown(error);
  }
}

/**
 * The logger's own methods, bound (pino's need their `this`); a missing one is a no-op, and
 * one that throws is ignored: logging never changes what the coalescer does.
 */
export function bindLogger(logger: Partial<Logger>): Logger {
  const bound = { ...silentLogger };
  for (const level of LOG_LEVELS) {
    const method = logger[level];
    if (typeof method !== 'function') continue;
    bound[level] = (context, message) => {
      try {
        method.call(logger, context, message);
      } catch {
        // A logger that cannot log has nowhere to report that it cannot.
      }
    };
  }
  return bound;
}

const promiseThen = Promise.prototype.then;

/**
 * Adopts a store's answer exactly as `await` would: `undefined` for a plain value (the call
 * is done now), otherwise a native promise that settles once. A `then` that throws, or a
 * `then` getter that throws, is a rejection; a thenable that settles twice counts once.
 */
export function adopt(answer: unknown): Promise<unknown> | undefined {
  if (answer === null || (typeof answer !== 'object' && typeof answer !== 'function')) {
    return undefined;
  }
  let then: unknown;
  try {
    then = (answer as { then?: unknown }).then;
  } catch (error) {
    return Promise.reject(error);
  }
  if (typeof then !== 'function') return undefined;
  try {
    return Promise.resolve(answer);
  } catch (error) {
    // A native promise whose `constructor` getter throws.
    return Promise.reject(error);
  }
}

/** `promise.then(…)` that ignores a `then` the promise may carry of its own. */
export function whenSettled(
  promise: Promise<unknown>,
  onFulfilled: (value: unknown) => void,
  onRejected: (error: unknown) => void,
): void {
  promiseThen.call(promise, onFulfilled, onRejected);
}

export class Guard<F extends object> {
  readonly logger: Logger;
  readonly #onError: ErrorHandler<F> | undefined;
  readonly #counts: Counts;

  constructor(logger: Logger, onError: ErrorHandler<F> | undefined, counts: Counts) {
    this.logger = logger;
    this.#onError = onError;
    this.#counts = counts;
  }

  /** The one way something is given up: counted in `failed` and reported once. */
  giveUp(error: unknown, context: ErrorContext<F>): void {
    this.#counts.failed++;
    this.report(error, context);
  }

  /** Reports something given up to the logger and `onError`, never throwing into the caller. */
  report(error: unknown, context: ErrorContext<F>): void {
    if (giveUpChannel.hasSubscribers) giveUpChannel.publish({ error, context });
    this.logger.error({ ...context, err: error }, `event-coalescer: ${context.operation} given up`);
    const onError = this.#onError;
    if (onError === undefined) return;
    const result = attempt(onError, undefined, error, context);
    // Logged, not reported again: a throwing onError must not call itself.
    if (result instanceof Thrown) {
      this.logger.error({ err: result.error }, 'event-coalescer: onError threw');
    }
  }
}
