/**
 * What JSON carries exactly: both stores refuse a field value that JSON would silently turn
 * into something else (`NaN` into `null`, a `Map` into `{}`, a class instance into a plain
 * object), so that a value reads back from either store as it was written.
 */
import { describeValue } from '../core/describe.js';
import { EventCoalescerError } from '../core/errors.js';

/**
 * How deep a value may nest. The check (like JSON itself) walks a value recursively; the bound
 * keeps a cyclic or maliciously deep value from exhausting the stack.
 */
export const MAX_JSON_DEPTH = 1000;

const objectPrototype = Object.prototype;

/** What JSON would silently turn into something else, described; `undefined` when faithful. */
function unfaithful(value: unknown, depth: number): string | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0) ? undefined : describeValue(value);
    case 'object': {
      if (value === null) return undefined;
      if (depth >= MAX_JSON_DEPTH) {
        return `an object nested more than ${MAX_JSON_DEPTH} levels deep (or a cycle)`;
      }
      // Dates and the like are stored as what their toJSON gives.
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return undefined;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          const inner = value[i] === undefined ? 'undefined' : unfaithful(value[i], depth + 1);
          if (inner !== undefined) return `${inner} at [${i}]`;
        }
        return undefined;
      }
      const prototype = Object.getPrototypeOf(value);
      if (prototype !== objectPrototype && prototype !== null) {
        const name = (prototype as { constructor?: { name?: unknown } }).constructor?.name;
        return typeof name === 'string' && name !== '' ? `a ${name}` : 'an object of a class';
      }
      for (const key of Object.keys(value)) {
        const inner = (value as Record<string, unknown>)[key];
        // JSON leaves out an undefined property, as a patch does: "not provided".
        if (inner === undefined) continue;
        const found = unfaithful(inner, depth + 1);
        if (found !== undefined) return `${found} at .${key}`;
      }
      return undefined;
    }
    default:
      return describeValue(value);
  }
}

/** Throws `EC_VALUE_REFUSED`, naming the field and what is wrong, unless JSON carries `value`. */
export function assertJsonValue(field: string, value: unknown): void {
  const problem = unfaithful(value, 0);
  if (problem === undefined) return;
  throw new EventCoalescerError(
    'EC_VALUE_REFUSED',
    `expected field \`${field}\` to be a value JSON carries exactly, got ${problem}`,
  );
}

/** A field's value as JSON, refused when JSON cannot carry it exactly. */
export function encodeField(name: string, value: unknown): string {
  assertJsonValue(name, value);
  try {
    return JSON.stringify(value);
  } catch (error) {
    throw new EventCoalescerError(
      'EC_VALUE_REFUSED',
      `field \`${name}\` cannot be stored as JSON: ${String(error)}`,
      { cause: error },
    );
  }
}
