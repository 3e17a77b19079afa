/**
 * Timers for any delay. Node fires a timer of 2^31 ms or more after 1 ms (with a warning),
 * so a longer delay is armed in steps. The global functions are looked up on each call, so
 * fake timers installed after import take effect.
 */

/** The longest delay Node's `setTimeout` keeps (about 24.8 days). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface Timer {
  handle: ReturnType<typeof setTimeout> | undefined;
}

export function setTimer(callback: () => void, delayMs: number): Timer {
  const timer: Timer = { handle: undefined };
  armStep(timer, callback, delayMs);
  return timer;
}

function armStep(timer: Timer, callback: () => void, remainingMs: number): void {
  timer.handle =
    remainingMs > MAX_TIMER_MS
      ? globalThis.setTimeout(
          () => armStep(timer, callback, remainingMs - MAX_TIMER_MS),
          MAX_TIMER_MS,
        )
      : globalThis.setTimeout(callback, remainingMs);
}

export function clearTimer(timer: Timer): void {
  globalThis.clearTimeout(timer.handle);
}

/** The `setTimeout` and the `performance` seen together last (see {@link monotonicNow}). */
let timersSeen = globalThis.setTimeout;
let performanceSeen = globalThis.performance;

/**
 * `performance.now()`, from the `performance` object installed with today's `setTimeout`.
 * Fake timers replace both (the global `performance` is a lazy getter in Node, dearer to read
 * on every enqueue than a comparison), and a spy on `performance.now` is seen at once.
 */
export function monotonicNow(): number {
  if (globalThis.setTimeout !== timersSeen) {
    timersSeen = globalThis.setTimeout;
    performanceSeen = globalThis.performance;
  }
  return performanceSeen.now();
}
