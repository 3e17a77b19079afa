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

/** At most this many characters of a payload go into a log line. */
const PAYLOAD_CHARS = 200;

/**
 * A short, bounded description of what an event or action held, for a warning: its keys with
 * the kind of each value (`{ workspaceId: \`42\` (number), fields: an array }`), the first
 * eight keys at most. Nothing is serialised, so a huge or cyclic payload gives a short line.
 */
export function describePayload(value: unknown): string {
  let text: string;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    text = describeValue(value);
  } else {
    const parts: string[] = [];
    try {
      for (const key of Object.keys(value).slice(0, 8)) {
        const member = (value as Record<string, unknown>)[key];
        const shown =
          typeof member === 'string' && member.length > 40
            ? `a string of ${member.length} characters`
            : describeValue(member);
        parts.push(`${key}: ${shown}`);
      }
    } catch {
      parts.push('…a member that cannot be read');
    }
    text = `{ ${parts.join(', ')} }`;
  }
  return text.length > PAYLOAD_CHARS ? `${text.slice(0, PAYLOAD_CHARS - 1)}…` : text;
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

/** Edits (insert, delete, replace) between two short strings. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const replace = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      row[j] = Math.min(replace, (previous[j] as number) + 1, (row[j - 1] as number) + 1);
    }
    previous = row;
  }
  return previous[b.length] as number;
}

/**
 * The candidate `key` most likely means: the same but for case, one that starts with the
 * other, or one within two edits (a typo).
 */
export function likelyMeant(key: string, candidates: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  return (
    candidates.find((candidate) => {
      const c = candidate.toLowerCase();
      return c === lower || c.startsWith(lower) || lower.startsWith(c);
    }) ?? candidates.find((candidate) => distance(candidate.toLowerCase(), lower) <= 2)
  );
}

/**
 * Throws a TypeError naming the first key of `object` that is not in `known`, with the known
 * key it most likely meant: a misspelled option must not be silently ignored.
 */
export function assertKnownKeys(name: string, object: object, known: readonly string[]): void {
  for (const key of Object.keys(object)) {
    if (known.includes(key)) continue;
    const meant = likelyMeant(key, known);
    throw new TypeError(
      `Unknown option \`${name}.${key}\`${meant === undefined ? '' : ` (did you mean \`${meant}\`?)`}; known: ${known.join(', ')}`,
    );
  }
}
