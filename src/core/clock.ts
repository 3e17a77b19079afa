/**
 * Timestamps for the store (`timestamps: true`): what orders writes across coalescers and
 * replicas. One clock for the whole thread — every coalescer, and both copies of the package
 * when ESM and CommonJS load it twice — so that a later write always carries a later stamp.
 * Worker threads each have their own unless they share one (`shareTimestampClock`): then the
 * threads of a process draw strictly increasing stamps from one `SharedArrayBuffer`.
 * When pending patches are due is the deadlines' business, not this clock's.
 */
import { expected } from './describe.js';

interface ClockState {
  last: number;
  /** The shared clock's 8 bytes as integer bits, for compare-and-swap; unset: this thread's. */
  shared: BigInt64Array | undefined;
}

const SHARED = Symbol.for('event-coalescer.store-clock');
const holder = globalThis as { [SHARED]?: ClockState };
const state: ClockState = holder[SHARED] ?? { last: 0, shared: undefined };
holder[SHARED] = state;

/** A double and its bits, to move stamps in and out of the shared integer cell. */
const scratch = new ArrayBuffer(8);
const asDouble = new Float64Array(scratch);
const asBits = new BigInt64Array(scratch);

function bitsOf(value: number): bigint {
  asDouble[0] = value;
  return asBits[0] as bigint;
}

function doubleOf(bits: bigint): number {
  asBits[0] = bits;
  return asDouble[0] as number;
}

/** The smallest double above `value`: stamps within one millisecond step by this. */
function nextAfter(value: number): number {
  let step = 2 ** (Math.floor(Math.log2(Math.abs(value) || 1)) - 52);
  while (value + step === value) step *= 2;
  return value + step;
}

const after = (last: number, now: number): number => (now > last ? now : nextAfter(last));

/**
 * Milliseconds since the epoch, strictly increasing across every call in the thread (every
 * thread sharing the clock), and never ahead of `Date.now()` while fewer than 4,096 stamps
 * fall in one millisecond (the resolution of a double at today's epoch): within a
 * millisecond, stamps step by fractions.
 */
export function nextTimestamp(): number {
  const now = Date.now();
  const shared = state.shared;
  if (shared === undefined) {
    state.last = after(state.last, now);
    return state.last;
  }
  for (;;) {
    const seen = Atomics.load(shared, 0);
    const next = after(doubleOf(seen), now);
    if (Atomics.compareExchange(shared, 0, seen, bitsOf(next)) === seen) return next;
  }
}

/**
 * Makes the worker threads of a process draw their store timestamps from one clock, so that
 * two threads writing one field in one millisecond never tie. Call it without an argument in
 * the main thread: it returns the clock's buffer, to hand to each worker (in `workerData`),
 * where calling it with that buffer adopts it.
 *
 * @example
 * const clock = shareTimestampClock();
 * new Worker(file, { workerData: { clock } });
 * // in the worker
 * shareTimestampClock(workerData.clock);
 */
export function shareTimestampClock(buffer?: SharedArrayBuffer): SharedArrayBuffer {
  if (buffer !== undefined) {
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength < 8) {
      throw new TypeError(
        expected('buffer', 'the SharedArrayBuffer shareTimestampClock() returned', buffer),
      );
    }
    const shared = new BigInt64Array(buffer, 0, 1);
    // Never back: the shared clock starts no earlier than this thread's last stamp.
    const mine = state.shared === undefined ? state.last : doubleOf(Atomics.load(state.shared, 0));
    for (;;) {
      const seen = Atomics.load(shared, 0);
      if (doubleOf(seen) >= mine) break;
      if (Atomics.compareExchange(shared, 0, seen, bitsOf(mine)) === seen) break;
    }
    state.shared = shared;
    return buffer;
  }
  if (state.shared !== undefined) return state.shared.buffer as SharedArrayBuffer;
  const created = new SharedArrayBuffer(8);
  const shared = new BigInt64Array(created, 0, 1);
  Atomics.store(shared, 0, bitsOf(state.last));
  state.shared = shared;
  return created;
}
