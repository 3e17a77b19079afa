/**
 * The one retry rule, shared by write lanes and refresh runs: whether a failure is tried again
 * and after what delay — exponential, capped and jittered, as gRPC's connection back-off — or
 * given up because the error will not heal or a bound the host set is reached.
 */
import { assertKnownKeys, describeValue, expected, numberOption } from './describe.js';
import { isPermanentCode } from './errors.js';
import { attempt } from './guard.js';
import { isPlainObject } from './merge.js';
import type { RetryContext, RetryOptions } from './types.js';

/** A retry rule with every default filled in. */
export interface RetryRule {
  readonly attempts: number;
  readonly delayMs: number;
  readonly maxDelayMs: number;
  readonly maxElapsedMs: number;
  readonly jitter: number;
  readonly retryable: (error: unknown, context: RetryContext) => boolean;
}

/**
 * The default `retry.retryable`: gives up at once on what a retry cannot mend — an error with
 * a permanent code (a value the store cannot carry, an ACL refusal, a script error), an ACL
 * refusal of another client (`NOPERM`), and a `TypeError` or `RangeError` the store threw at
 * the call (a bad argument). Everything else is taken as transient.
 */
export function defaultRetryable(error: unknown, context: RetryContext): boolean {
  if (isPermanentCode(error)) return false;
  if (context.thrown && (error instanceof TypeError || error instanceof RangeError)) return false;
  let message = '';
  try {
    message = String((error as { message?: unknown } | null)?.message ?? '');
  } catch {
    // A message getter that throws tells nothing either way.
  }
  return !/^NOPERM|\bNOPERM\b/.test(message);
}

type RuleDefaults = Omit<RetryRule, 'retryable'>;

/** The coalescer's defaults: keep trying, 100 ms doubling up to 5 s, ±20 %. */
export const WRITE_RETRY_DEFAULTS: RuleDefaults = {
  attempts: Infinity,
  delayMs: 100,
  maxDelayMs: 5000,
  maxElapsedMs: Infinity,
  jitter: 0.2,
};

/** A refresh source's defaults: keep trying, 1 s doubling up to 30 s, ±20 %. */
export const REFRESH_RETRY_DEFAULTS: RuleDefaults = {
  attempts: Infinity,
  delayMs: 1000,
  maxDelayMs: 30_000,
  maxElapsedMs: Infinity,
  jitter: 0.2,
};

/** Validates `retry` options (named `name` in errors) over `defaults`. */
/** Every key `RetryOptions` has. */
const RETRY_OPTIONS = [
  'attempts',
  'delayMs',
  'maxDelayMs',
  'maxElapsedMs',
  'jitter',
  'retryable',
] as const;

export function resolveRetryRule(
  name: string,
  options: RetryOptions | undefined,
  defaults: RuleDefaults,
): RetryRule {
  if (options !== undefined && !isPlainObject(options)) {
    throw new TypeError(expected(name, 'an object', options));
  }
  const o: RetryOptions = options ?? {};
  assertKnownKeys(name, o, RETRY_OPTIONS);
  const jitter = o.jitter ?? defaults.jitter;
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) {
    throw new RangeError(
      `Expected \`${name}.jitter\` to be a number from 0 to 1, got ${describeValue(jitter)}`,
    );
  }
  const retryable = o.retryable ?? defaultRetryable;
  if (typeof retryable !== 'function') {
    throw new TypeError(expected(`${name}.retryable`, 'a function', retryable));
  }
  const delayMs = numberOption(`${name}.delayMs`, o.delayMs, defaults.delayMs, 'duration');
  return {
    attempts: numberOption(`${name}.attempts`, o.attempts, defaults.attempts, 'countOrInfinity'),
    delayMs,
    // A cap below the first delay would make the first delay the cap: keep the larger.
    maxDelayMs: Math.max(
      delayMs,
      numberOption(`${name}.maxDelayMs`, o.maxDelayMs, defaults.maxDelayMs, 'bound'),
    ),
    maxElapsedMs: numberOption(
      `${name}.maxElapsedMs`,
      o.maxElapsedMs,
      defaults.maxElapsedMs,
      'bound',
    ),
    jitter,
    retryable,
  };
}

/**
 * The delay before the try that follows `failures` failed ones (1 and up): `delayMs`, doubling
 * with each failure, capped at `maxDelayMs`, then spread by ±`jitter` so that many waiting
 * workspaces or replicas do not come back in the same millisecond.
 */
export function backoffDelay(rule: RetryRule, failures: number): number {
  const exponent = Math.min(failures - 1, 1023);
  const capped = Math.min(rule.maxDelayMs, rule.delayMs * 2 ** exponent);
  if (rule.jitter === 0) return capped;
  return capped * (1 + rule.jitter * (2 * Math.random() - 1));
}

/** Why a failure is not retried. */
export type GiveUpReason = 'not retryable' | 'attempts' | 'maxElapsedMs';

/**
 * Whether a failure is given up, and why: the error will not heal (`retryable`, whose throw
 * counts as "retry"), or `attempts` or `maxElapsedMs` is reached. `undefined` means retry.
 */
export function giveUpReason(
  rule: RetryRule,
  error: unknown,
  context: RetryContext,
): GiveUpReason | undefined {
  // Only `false` gives up: a predicate that throws or answers something else keeps the write.
  if (attempt(rule.retryable, undefined, error, context) === false) return 'not retryable';
  if (context.attempt >= rule.attempts) return 'attempts';
  if (context.elapsedMs >= rule.maxElapsedMs) return 'maxElapsedMs';
  return undefined;
}
