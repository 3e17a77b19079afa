const objectPrototype = Object.prototype;

/** True for `{}`-literals, `Object.create(null)` and parsed JSON objects; false for arrays and class instances. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === objectPrototype || prototype === null;
}

/**
 * Copies the defined fields of `patch` onto `target`, the later value winning.
 * `undefined` means "not provided" and is skipped; `null` is a value.
 * `__proto__` is written as an own data property, so a patch parsed from JSON can
 * never swap the target's prototype (`constructor` and `prototype` are plain keys already).
 */
export function mergeFields(target: Record<string, unknown>, patch: Record<string, unknown>): void {
  for (const key in patch) {
    const value = patch[key];
    if (value !== undefined) setField(target, key, value);
  }
}

/** `target[key] = value`, except that `__proto__` becomes an own data property. */
export function setField(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(target, key, {
      value,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  } else {
    target[key] = value;
  }
}

/** A fresh object holding the defined fields of `patch`. */
export function copyFields(patch: Record<string, unknown>): Record<string, unknown> {
  const copy: Record<string, unknown> = {};
  mergeFields(copy, patch);
  return copy;
}
