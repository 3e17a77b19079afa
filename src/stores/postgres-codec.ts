/**
 * How the PostgreSQL store encodes workspace ids and field values, and decodes rows and feed
 * changes. PostgreSQL text holds neither NUL nor a lone surrogate: ids escape them (and the
 * escape character), so that every JavaScript string is an id of its own; field values that
 * hold them are refused, naming the field, as what JSON cannot carry is.
 */
import { EventCoalescerError } from '../core/errors.js';
import type { SnapshotChange, SnapshotEntry } from '../core/types.js';
import { encodeField } from './json-values.js';

/** NUL, a lone surrogate, or the escape character itself. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is what the escape is for.
const UNSAFE = /[%\u0000]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** A workspace id as PostgreSQL text: `%` and what text cannot hold become `%XXXX`. */
export function encodeId(workspaceId: string): string {
  return workspaceId.replace(
    UNSAFE,
    (char) => `%${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

export function decodeId(text: string): string {
  return text.replace(/%([0-9a-f]{4})/g, (_, hex: string) =>
    String.fromCharCode(Number.parseInt(hex, 16)),
  );
}

/**
 * In `JSON.stringify`'s output a lone surrogate or NUL is always a `\u` escape (a pair is
 * written as itself): an escape after an even number of backslashes is one.
 */
const JSONB_REFUSES = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

/** A field's value as JSON that `jsonb` keeps exactly, refused (naming the field) otherwise. */
export function encodeJsonbField(name: string, value: unknown): string {
  const json = encodeField(name, value);
  if (JSONB_REFUSES.test(json) || JSONB_REFUSES.test(JSON.stringify(name))) {
    throw new EventCoalescerError(
      'EC_VALUE_REFUSED',
      `expected field \`${name}\` to be a value PostgreSQL's jsonb carries exactly, got a string holding NUL or a lone surrogate`,
    );
  }
  return json;
}

/** A patch's defined fields as one jsonb object's text. */
export function encodePatch(fields: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const key in fields) {
    if (!Object.hasOwn(fields, key)) continue;
    const value = fields[key];
    if (value === undefined) continue;
    parts.push(`${JSON.stringify(key)}:${encodeJsonbField(key, value)}`);
  }
  return `{${parts.join(',')}}`;
}

/** The columns the store reads an entry from. */
export interface EntryRow {
  workspace_id: string;
  fields: Record<string, unknown>;
  version: string | number;
  source: string;
  updated_at: number;
}

export function decodeEntry<F extends object>(row: EntryRow): SnapshotEntry<F> {
  return {
    workspaceId: decodeId(row.workspace_id),
    fields: row.fields as Partial<F>,
    version: Number(row.version),
    source: row.source,
    updatedAt: Number(row.updated_at),
  };
}

/** A change as the feed table keeps it, at position `id`. */
export function decodeChange<F extends object>(
  change: unknown,
  id: string,
): SnapshotChange<F> | undefined {
  if (!Array.isArray(change)) return undefined;
  const [type, encodedId] = change as [unknown, unknown];
  if (typeof encodedId !== 'string') return undefined;
  const workspaceId = decodeId(encodedId);
  if (type === 'upsert') {
    const [, , changed, fields, version, source, updatedAt] = change as unknown[];
    const entry: SnapshotEntry<F> = {
      workspaceId,
      fields: (fields ?? {}) as Partial<F>,
      version: Number(version),
      source: String(source ?? ''),
      updatedAt: Number(updatedAt),
    };
    return { type, id, workspaceId, entry, changed: (changed ?? []) as string[] };
  }
  if (type === 'remove') {
    const [, , fields, version, source, updatedAt] = change as unknown[];
    const previous: SnapshotEntry<F> = {
      workspaceId,
      fields: (fields ?? {}) as Partial<F>,
      version: Number(version),
      source: String(source ?? ''),
      updatedAt: Number(updatedAt),
    };
    return { type, id, workspaceId, previous };
  }
  return undefined;
}
