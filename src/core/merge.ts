const objectPrototype = Object.prototype;

/** True for `{}`-literals, `Object.create(null)` and parsed JSON objects; false for arrays and class instances. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === objectPrototype || prototype === null;
}

const hasOwn = Object.hasOwn;

/** Fields read from a patch, not yet merged: `count` keys and their values. */
export interface StagedFields {
  keys: string[];
  values: unknown[];
  count: number;
}

/** Reused by every enqueue, so staging allocates nothing; a getter that re-enters gets its own. */
const shared: StagedFields = { keys: [], values: [], count: 0 };
let sharedInUse = false;
const empty = {};

/** Whether `Object.prototype` carries enumerable keys, which `for…in` would yield. */
export function prototypePolluted(): boolean {
  for (const _ in empty) return true;
  return false;
}

/**
 * Reads the own defined fields of `patch` before anything is merged: a getter that throws
 * leaves nothing half-merged, and each getter runs once. Inherited keys are never read.
 */
export function stageFields(patch: Record<string, unknown>): StagedFields {
  const staged = sharedInUse ? { keys: [], values: [], count: 0 } : shared;
  const ownOnly = prototypePolluted();
  let count = 0;
  sharedInUse = true;
  try {
    for (const key in patch) {
      if (ownOnly && !hasOwn(patch, key)) continue;
      const value = patch[key];
      if (value === undefined) continue;
      staged.keys[count] = key;
      staged.values[count] = value;
      count++;
    }
  } finally {
    if (staged === shared) sharedInUse = false;
  }
  staged.count = count;
  return staged;
}

/** Adds one more field read to `staged`. */
export function stageField(staged: StagedFields, key: string, value: unknown): void {
  staged.keys[staged.count] = key;
  staged.values[staged.count] = value;
  staged.count++;
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
