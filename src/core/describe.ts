/** Renders a received value for an error message: "`-1` (number)", "an array". */
export function describeValue(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'function') return 'a function';
  if (value !== null && typeof value === 'object') {
    let name: unknown;
    try {
      name = Object.getPrototypeOf(value)?.constructor?.name;
    } catch {
      // A proxy or a getter that throws: describe it without its name.
    }
    return typeof name === 'string' && name !== 'Object' ? `a ${name}` : 'an object';
  }
  const shown = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return `\`${shown}\` (${value === null ? 'null' : typeof value})`;
}

/** An error message that names the argument, what was expected and what came. */
export function expected(argument: string, expectation: string, received: unknown): string {
  return `Expected \`${argument}\` to be ${expectation}, got ${describeValue(received)}`;
}

/** Throws the usual error unless `workspaceId` is a non-empty string. */
export function assertWorkspaceId(workspaceId: unknown): asserts workspaceId is string {
  if (typeof workspaceId !== 'string' || workspaceId === '') {
    throw new TypeError(expected('workspaceId', 'a non-empty string', workspaceId));
  }
}

const NUMBER_RULES = {
  duration: 'a finite number from 0 and up',
  bound: 'a number from 0 and up, or Infinity',
  count: 'a whole number from 1 and up',
  countOrInfinity: 'a whole number from 1 and up, or Infinity',
} as const;

/** `value`, or `fallback` when it is undefined; a RangeError names the option otherwise. */
export function numberOption(
  name: string,
  value: unknown,
  fallback: number,
  rule: keyof typeof NUMBER_RULES,
): number {
  if (value === undefined) return fallback;
  const ok =
    typeof value === 'number' &&
    (rule === 'count' || rule === 'countOrInfinity'
      ? (Number.isInteger(value) && value >= 1) ||
        (rule === 'countOrInfinity' && value === Infinity)
      : value >= 0 && (Number.isFinite(value) || (rule === 'bound' && value === Infinity)));
  if (!ok) throw new RangeError(expected(name, NUMBER_RULES[rule], value));
  return value;
}

/**
 * Throws a TypeError naming the first key of `object` that is not in `known`, with the known
 * key it most likely meant: a misspelled option must not be silently ignored.
 */
export function assertKnownKeys(name: string, object: object, known: readonly string[]): void {
  for (const key of Object.keys(object)) {
    if (known.includes(key)) continue;
    const lower = key.toLowerCase();
    const meant = known.find(
      (candidate) =>
        candidate.toLowerCase() === lower ||
        candidate.toLowerCase().startsWith(lower) ||
        lower.startsWith(candidate.toLowerCase()),
    );
    throw new TypeError(
      `Unknown option \`${name}.${key}\`${meant === undefined ? '' : ` (did you mean \`${meant}\`?)`}; known: ${known.join(', ')}`,
    );
  }
}
