const objectPrototype = Object.prototype;

/** True for `{}`-literals, `Object.create(null)` and parsed JSON objects; false for arrays and class instances. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === objectPrototype || prototype === null;
}

const hasOwn = Object.hasOwn;

/** A staged patch: own defined fields as key, value, key, value… */
export type StagedFields = unknown[];

/** Reused between enqueues, so staging allocates nothing; taken while in use (re-entrancy). */
let spare: StagedFields | undefined = [];

/**
 * Reads the own defined fields of `patch` before anything is merged: a getter that throws
 * then leaves nothing half-merged, and runs once. Inherited keys are never read.
 */
export function stageFields(patch: Record<string, unknown>): StagedFields {
  const staged = spare ?? [];
  spare = undefined;
  try {
    for (const key in patch) {
      if (!hasOwn(patch, key)) continue;
      const value = patch[key];
      if (value !== undefined) staged.push(key, value);
    }
  } catch (error) {
    staged.length = 0;
    spare = staged;
    throw error;
  }
  return staged;
}

/** Merges staged fields onto `target`, the later value winning, and frees the staging. */
export function applyStaged(target: Record<string, unknown>, staged: StagedFields): void {
  for (let i = 0; i < staged.length; i += 2) setField(target, staged[i] as string, staged[i + 1]);
  staged.length = 0;
  spare = staged;
}

/**
 * Copies the defined fields of `patch` onto `target`, the later value winning.
 * `undefined` means "not provided" and is skipped; `null` is a value.
 * `__proto__` is written as an own data property, so a patch parsed from JSON can
 * never swap the target's prototype (`constructor` and `prototype` are plain keys already).
 */
export function mergeFields(target: Record<string, unknown>, patch: Record<string, unknown>): void {
  for (const key in patch) {
    if (!hasOwn(patch, key)) continue;
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
