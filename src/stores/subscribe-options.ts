/** The options of a store's `subscribe`, checked the same way for every store. */
import { assertKnownKeys, expected } from '../core/describe.js';
import { isPlainObject } from '../core/merge.js';
import type { SubscribeOptions } from '../core/types.js';

/** The `since` position asked for, if any. */
export function sinceOption(options: SubscribeOptions): string | undefined {
  if (!isPlainObject(options)) throw new TypeError(expected('options', 'an object', options));
  assertKnownKeys('options', options, ['since']);
  const { since } = options;
  if (since !== undefined && typeof since !== 'string') {
    throw new TypeError(expected('since', "a change's id (a string)", since));
  }
  return since;
}
