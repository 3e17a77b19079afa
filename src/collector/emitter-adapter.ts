// biome-ignore lint/suspicious/noExplicitAny: emitters type their listeners' arguments in many ways
type AnyListener = (...args: any[]) => unknown;

/** Node `EventEmitter`, eventemitter3, mitt, emittery: `on` and `off`. */
export interface OnOffEmitter {
  on(event: string, listener: AnyListener): unknown;
  off(event: string, listener: AnyListener): unknown;
}

/** Emitters with Node's older names. */
export interface AddRemoveEmitter {
  addListener(event: string, listener: AnyListener): unknown;
  removeListener(event: string, listener: AnyListener): unknown;
}

/** DOM-style targets, Node's `EventTarget` among them: listeners receive the `Event`. */
export interface EventTargetLike {
  addEventListener(type: string, listener: AnyListener): unknown;
  removeEventListener(type: string, listener: AnyListener): unknown;
}

/** Any emitter the collector can subscribe to. */
export type EmitterLike = OnOffEmitter | AddRemoveEmitter | EventTargetLike;

type Listener = (...args: unknown[]) => void;

const hasMethods = (value: object, a: string, b: string): boolean =>
  typeof (value as Record<string, unknown>)[a] === 'function' &&
  typeof (value as Record<string, unknown>)[b] === 'function';

/** Whether `emitter` has one of the shapes `subscribe` knows (checked before subscribing). */
export function isEmitterLike(emitter: unknown): boolean {
  if (emitter === null || (typeof emitter !== 'object' && typeof emitter !== 'function')) {
    return false;
  }
  return (
    hasMethods(emitter, 'on', 'off') ||
    hasMethods(emitter, 'addListener', 'removeListener') ||
    hasMethods(emitter, 'addEventListener', 'removeEventListener')
  );
}

/**
 * Subscribes `listener` and returns the function that detaches exactly it. The shape is
 * detected once, here; `undefined` means the emitter has no known shape.
 */
export function subscribe(
  emitter: unknown,
  event: string,
  listener: Listener,
): (() => void) | undefined {
  if (emitter === null || (typeof emitter !== 'object' && typeof emitter !== 'function')) {
    return undefined;
  }
  if (hasMethods(emitter, 'on', 'off')) {
    const target = emitter as OnOffEmitter;
    const returned = target.on(event, listener);
    // emittery answers `on` with its own unsubscribe function: the surest way off.
    if (typeof returned === 'function') return () => void returned();
    return () => void target.off(event, listener);
  }
  if (hasMethods(emitter, 'addListener', 'removeListener')) {
    const target = emitter as AddRemoveEmitter;
    target.addListener(event, listener);
    return () => void target.removeListener(event, listener);
  }
  if (hasMethods(emitter, 'addEventListener', 'removeEventListener')) {
    const target = emitter as EventTargetLike;
    target.addEventListener(event, listener);
    return () => void target.removeEventListener(event, listener);
  }
  return undefined;
}
