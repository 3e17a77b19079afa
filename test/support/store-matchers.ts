/**
 * Matchers for store spies that compare what a store call carries: the trailing `call`
 * argument (its signal) and a timestamp left `undefined` are not part of the comparison.
 * `storeArgs(spy)` gives the same view of every call.
 */
import { expect } from 'vitest';

interface Spy {
  mock: { calls: unknown[][] };
}

/** A call's arguments without the trailing `{ signal }` and trailing `undefined`s. */
export function meaningfulArgs(args: readonly unknown[]): unknown[] {
  const kept = [...args];
  const last = kept[kept.length - 1];
  if (typeof last === 'object' && last !== null && 'signal' in last) kept.pop();
  while (kept.length > 0 && kept[kept.length - 1] === undefined) kept.pop();
  return kept;
}

/** Every call of a store spy, as `meaningfulArgs`. */
export function storeArgs(spy: Spy): unknown[][] {
  return spy.mock.calls.map(meaningfulArgs);
}

expect.extend({
  toHaveStoreCall(received: Spy, ...expected: unknown[]) {
    const calls = storeArgs(received);
    const pass = calls.some((call) => this.equals(call, expected));
    return {
      pass,
      message: () =>
        `expected a store call ${pass ? 'not ' : ''}with ${this.utils.printExpected(expected)}, calls were ${this.utils.printReceived(calls)}`,
    };
  },
  toHaveLastStoreCall(received: Spy, ...expected: unknown[]) {
    const calls = storeArgs(received);
    const pass = calls.length > 0 && this.equals(calls[calls.length - 1], expected);
    return {
      pass,
      message: () =>
        `expected the last store call ${pass ? 'not ' : ''}to be ${this.utils.printExpected(expected)}, calls were ${this.utils.printReceived(calls)}`,
    };
  },
  toHaveNthStoreCall(received: Spy, n: number, ...expected: unknown[]) {
    const calls = storeArgs(received);
    const pass = this.equals(calls[n - 1], expected);
    return {
      pass,
      message: () =>
        `expected store call ${n} ${pass ? 'not ' : ''}to be ${this.utils.printExpected(expected)}, calls were ${this.utils.printReceived(calls)}`,
    };
  },
});

interface StoreMatchers<R = unknown> {
  /** Some call carried these arguments (the trailing signal and undefineds aside). */
  toHaveStoreCall(...args: unknown[]): R;
  toHaveLastStoreCall(...args: unknown[]): R;
  toHaveNthStoreCall(n: number, ...args: unknown[]): R;
}

declare module 'vitest' {
  // biome-ignore lint/suspicious/noExplicitAny: vitest declares Matchers with `T = any`.
  interface Matchers<T = any> extends StoreMatchers<T> {}
}
