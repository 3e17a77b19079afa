/**
 * Timestamps for the store (`timestamps: true`): what orders writes across coalescers and
 * replicas. One clock for the whole process — every coalescer, and both copies of the package
 * when ESM and CommonJS load it twice — so that a later write always carries a later stamp.
 * When pending patches are due is the deadlines' business, not this clock's.
 */

interface ClockState {
  last: number;
}

const SHARED = Symbol.for('event-coalescer.store-clock');
const holder = globalThis as { [SHARED]?: ClockState };
holder[SHARED] ??= { last: 0 };
const state: ClockState = holder[SHARED];

/** The smallest double above `value`: stamps within one millisecond step by this. */
function nextAfter(value: number): number {
  let step = 2 ** (Math.floor(Math.log2(Math.abs(value) || 1)) - 52);
  while (value + step === value) step *= 2;
  return value + step;
}

/**
 * Milliseconds since the epoch, strictly increasing across every call in the process, and
 * never ahead of `Date.now()` while fewer than 4,096 stamps fall in one millisecond (the
 * resolution of a double at today's epoch): within a millisecond, stamps step by fractions.
 */
export function nextTimestamp(): number {
  const now = Date.now();
  const last = state.last;
  state.last = now > last ? now : nextAfter(last);
  return state.last;
}
