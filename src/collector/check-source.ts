/**
 * Checks a collector's source whole before anything is attached: a malformed member is a
 * `TypeError` (or `RangeError`) that names it, `sources[i].name` and the like.
 */
import { expected, numberOption } from '../core/describe.js';
import { isPlainObject } from '../core/merge.js';
import { REFRESH_RETRY_DEFAULTS, resolveRetryRule } from '../core/retry-rule.js';
import type { RetryOptions } from '../core/types.js';
import { isEmitterLike } from './emitter-adapter.js';
import type { RefreshSource, Source } from './sources.js';

export const isRefreshSource = <F extends object>(source: Source<F>): source is RefreshSource<F> =>
  typeof (source as RefreshSource<F>).refresh === 'function';

/** Throws when `source` (at `sources[index]`) is malformed. */
export function checkSource(source: unknown, index: number): void {
  const at = `sources[${index}]`;
  const fail = (what: string, value: unknown, expectation: string): never => {
    throw new TypeError(expected(`${at}${what}`, expectation, value));
  };
  if (!isPlainObject(source)) throw new TypeError(expected(at, 'a source object', source));
  if (typeof source.event !== 'string') fail('.event', source.event, 'an event name (string)');
  if (source.name !== undefined && typeof source.name !== 'string') {
    fail('.name', source.name, 'a string');
  }
  numberOption(`${at}.windowMs`, source.windowMs, 0, 'duration');
  numberOption(`${at}.maxWaitMs`, source.maxWaitMs, 0, 'bound');
  if (isRefreshSource(source as unknown as Source)) {
    if (typeof source.key !== 'function') fail('.key', source.key, 'a function');
    if (source.immediate !== undefined && typeof source.immediate !== 'boolean') {
      fail('.immediate', source.immediate, 'a boolean');
    }
    if (source.group !== undefined && typeof source.group !== 'string') {
      fail('.group', source.group, 'a string');
    }
    resolveRetryRule(`${at}.retry`, source.retry as RetryOptions, REFRESH_RETRY_DEFAULTS);
  } else if (typeof source.map !== 'function') {
    fail('.map', source.map, 'a function');
  }
  if (!isEmitterLike(source.emitter)) {
    const name = typeof source.name === 'string' ? source.name : `event:${source.event}`;
    fail(`.emitter (${name})`, source.emitter, EMITTER_SHAPES);
  }
}

export const EMITTER_SHAPES =
  'an emitter with on/off, addListener/removeListener or addEventListener/removeEventListener';
