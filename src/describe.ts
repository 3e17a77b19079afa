/** Renders a received value for an error message: "`-1` (number)", "`[]` (array)". */
export function describeValue(value: unknown): string {
  if (value === null) return '`null`';
  if (value === undefined) return '`undefined`';
  if (Array.isArray(value)) return '`[…]` (array)';
  const type = typeof value;
  if (type === 'string') return `\`${JSON.stringify(value)}\` (string)`;
  if (type === 'function') return 'a function';
  if (type === 'object') {
    const name = Object.getPrototypeOf(value)?.constructor?.name;
    return name && name !== 'Object' ? `an instance of ${name}` : 'an object';
  }
  return `\`${String(value)}\` (${type})`;
}

/** An error message that names the argument, what was expected and what came. */
export function expected(argument: string, expectation: string, received: unknown): string {
  return `Expected \`${argument}\` to be ${expectation}, got ${describeValue(received)}`;
}
