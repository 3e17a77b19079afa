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
