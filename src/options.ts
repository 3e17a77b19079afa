import { expected } from './describe.js';
import { isPlainObject } from './merge.js';
import type {
  CoalescerOptions,
  ErrorHandler,
  Fields,
  Logger,
  Patch,
  RetryOptions,
  SnapshotStore,
} from './types.js';

/** The options with every default filled in. */
export interface ResolvedOptions<F extends object> {
  windowMs: number;
  maxWaitMs: number;
  maxPending: number;
  canCreate: (fields: Patch<F>) => boolean;
  timestamps: boolean;
  attempts: number;
  retryDelayMs: number;
  drainTimeoutMs: number;
  logger: Logger;
  onError: ErrorHandler<F> | undefined;
}

const noop = (): void => {};
const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

/** Only a defined `projectId` lets a patch create a workspace: the host's reconciliation seeds the rest. */
export const defaultCanCreate = (fields: Patch<Fields>): boolean => fields.projectId !== undefined;

function bindLogger(logger: Partial<Logger> | undefined): Logger {
  if (logger === undefined) return silentLogger;
  if (logger === null || typeof logger !== 'object') {
    throw new TypeError(expected('logger', 'an object with debug, info, warn and error', logger));
  }
  const method = (name: keyof Logger): Logger[keyof Logger] => {
    const fn = logger[name];
    return typeof fn === 'function' ? fn.bind(logger) : noop;
  };
  return {
    debug: method('debug'),
    info: method('info'),
    warn: method('warn'),
    error: method('error'),
  };
}

function nonNegative(
  name: string,
  value: unknown,
  fallback: number,
  allowInfinity: boolean,
): number {
  if (value === undefined) return fallback;
  const ok =
    typeof value === 'number' &&
    value >= 0 &&
    (Number.isFinite(value) || (allowInfinity && value === Infinity));
  if (!ok) {
    const what = allowInfinity
      ? 'a number from 0 and up, or Infinity'
      : 'a finite number from 0 and up';
    throw new RangeError(expected(name, what, value));
  }
  return value;
}

function atLeastOne(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new RangeError(expected(name, 'a whole number from 1 and up', value));
  }
  return value;
}

/** Validates a coalescer's options, throwing at the call on a programmer error. */
export function resolveOptions<F extends object>(
  options: CoalescerOptions<F> | undefined,
): ResolvedOptions<F> {
  if (options !== undefined && !isPlainObject(options)) {
    throw new TypeError(expected('options', 'an object or a number (windowMs)', options));
  }
  const o: CoalescerOptions<F> = options ?? {};
  const retry: RetryOptions = o.retry ?? {};
  if (o.canCreate !== undefined && typeof o.canCreate !== 'function') {
    throw new TypeError(expected('canCreate', 'a function', o.canCreate));
  }
  if (o.onError !== undefined && typeof o.onError !== 'function') {
    throw new TypeError(expected('onError', 'a function', o.onError));
  }
  return {
    windowMs: nonNegative('windowMs', o.windowMs, 150, false),
    maxWaitMs: nonNegative('maxWaitMs', o.maxWaitMs, 1000, true),
    maxPending: atLeastOne('maxPending', o.maxPending, 100_000),
    canCreate: (o.canCreate ?? defaultCanCreate) as (fields: Patch<F>) => boolean,
    timestamps: o.timestamps === true,
    attempts: atLeastOne('retry.attempts', retry.attempts, 3),
    retryDelayMs: nonNegative('retry.delayMs', retry.delayMs, 100, false),
    drainTimeoutMs: nonNegative('drainTimeoutMs', o.drainTimeoutMs, 5000, true),
    logger: bindLogger(o.logger),
    onError: o.onError,
  };
}

/** Checks that `store` has the three methods of the store contract. */
export function assertStore<F extends object>(store: unknown): asserts store is SnapshotStore<F> {
  const s = store as Partial<SnapshotStore<F>> | null | undefined;
  if (
    s === null ||
    typeof s !== 'object' ||
    typeof s.upsert !== 'function' ||
    typeof s.getByWorkspaceId !== 'function' ||
    typeof s.remove !== 'function'
  ) {
    throw new TypeError(
      expected('store', 'an object with upsert, getByWorkspaceId and remove methods', store),
    );
  }
}
