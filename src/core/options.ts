import { assertKnownKeys, expected, numberOption } from './describe.js';
import { bindLogger, silentLogger } from './guard.js';
import { isPlainObject } from './merge.js';
import { type RetryRule, resolveRetryRule, WRITE_RETRY_DEFAULTS } from './retry-rule.js';
import type {
  CoalescerOptions,
  ErrorHandler,
  Fields,
  Logger,
  Patch,
  SnapshotStore,
} from './types.js';

/** The options with every default filled in. */
export interface ResolvedOptions<F extends object> {
  windowMs: number;
  maxWaitMs: number;
  leading: boolean;
  maxPending: number;
  canCreate: (fields: Patch<F>) => boolean;
  timestamps: boolean;
  retry: RetryRule;
  callTimeoutMs: number;
  maxConcurrentWrites: number;
  batchSize: number;
  maxBacklog: number;
  drainTimeoutMs: number;
  logger: Logger;
  onError: ErrorHandler<F> | undefined;
}

/**
 * Only a patch with a `projectId` creates a workspace the store does not know: any falsy one —
 * `null`, `''`, `0`, `false` — counts as absent. The others are seeded by the host (its
 * reconciliation), or let in by a `canCreate` of the host's own.
 */
export const defaultCanCreate = (fields: Patch<Fields>): boolean => Boolean(fields.projectId);

function loggerOption(logger: Partial<Logger> | undefined): Logger {
  if (logger === undefined) return silentLogger;
  if (logger === null || typeof logger !== 'object') {
    throw new TypeError(expected('logger', 'an object with debug, info, warn and error', logger));
  }
  return bindLogger(logger);
}

function booleanOption(name: string, value: unknown): boolean {
  if (value !== undefined && typeof value !== 'boolean') {
    throw new TypeError(expected(name, 'a boolean', value));
  }
  return value === true;
}

function functionOption<T>(name: string, value: T): T {
  if (value !== undefined && typeof value !== 'function') {
    throw new TypeError(expected(name, 'a function', value));
  }
  return value;
}

/** Every key `CoalescerOptions` has: any other is a misspelling. */
export const COALESCER_OPTIONS = [
  'windowMs',
  'maxWaitMs',
  'leading',
  'maxPending',
  'canCreate',
  'timestamps',
  'retry',
  'callTimeoutMs',
  'maxConcurrentWrites',
  'batchSize',
  'maxBacklog',
  'drainTimeoutMs',
  'logger',
  'onError',
] as const;

/** Validates a coalescer's options, throwing at the call on a programmer error. */
export function resolveOptions<F extends object>(
  options: CoalescerOptions<F> | undefined,
): ResolvedOptions<F> {
  if (options !== undefined && !isPlainObject(options)) {
    throw new TypeError(expected('options', 'an object or a number (windowMs)', options));
  }
  const o: CoalescerOptions<F> = options ?? {};
  assertKnownKeys('options', o, COALESCER_OPTIONS);
  return {
    windowMs: numberOption('windowMs', o.windowMs, 150, 'duration'),
    maxWaitMs: numberOption('maxWaitMs', o.maxWaitMs, 1000, 'bound'),
    leading: booleanOption('leading', o.leading),
    maxPending: numberOption('maxPending', o.maxPending, 100_000, 'count'),
    canCreate: (functionOption('canCreate', o.canCreate) ?? defaultCanCreate) as (
      fields: Patch<F>,
    ) => boolean,
    timestamps: booleanOption('timestamps', o.timestamps),
    retry: resolveRetryRule('retry', o.retry, WRITE_RETRY_DEFAULTS),
    callTimeoutMs: numberOption('callTimeoutMs', o.callTimeoutMs, 10_000, 'bound'),
    maxConcurrentWrites: numberOption(
      'maxConcurrentWrites',
      o.maxConcurrentWrites,
      128,
      'countOrInfinity',
    ),
    batchSize: numberOption('batchSize', o.batchSize, 100, 'count'),
    maxBacklog: numberOption('maxBacklog', o.maxBacklog, Infinity, 'countOrInfinity'),
    drainTimeoutMs: numberOption('drainTimeoutMs', o.drainTimeoutMs, 5000, 'bound'),
    logger: loggerOption(o.logger),
    onError: functionOption('onError', o.onError),
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
