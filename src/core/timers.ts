/** The global timer functions, looked up on each call so fake timers installed after import take effect. */
export type TimerHandle = ReturnType<typeof setTimeout>;

export const setTimer = (callback: () => void, delayMs: number): TimerHandle =>
  globalThis.setTimeout(callback, delayMs);

export const clearTimer = (handle: TimerHandle): void => globalThis.clearTimeout(handle);
