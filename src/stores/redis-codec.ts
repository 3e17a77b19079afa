/**
 * How the Redis store encodes field values and decodes hashes and change-feed messages:
 * JSON, refusing what JSON cannot carry exactly, and reporting what cannot be decoded
 * instead of throwing it at every reader.
 */
import { setField } from '../core/merge.js';
import type { SnapshotChange, SnapshotEntry, StoreErrorHandler } from '../core/types.js';

import { idOfTag } from './redis-names.js';

/**
 * Builds an entry from a hash's record. A field that cannot be decoded is reported and
 * left out: one bad value must not make every read fail.
 */
export function decodeEntry<F extends object>(
  workspaceId: string,
  hash: Record<string, string>,
  report: StoreErrorHandler,
): SnapshotEntry<F> | undefined {
  if (hash.version === undefined) return undefined;
  const fields: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(hash)) {
    if (name.startsWith('f:')) decodeInto(fields, name.slice(2), value, workspaceId, report);
  }
  return {
    workspaceId,
    fields: fields as Partial<F>,
    version: Number(hash.version),
    source: hash.source ?? '',
    updatedAt: Number(hash.updatedAt),
  };
}

function pairs(flat: unknown): Record<string, string> {
  const record: Record<string, string> = {};
  if (!Array.isArray(flat)) return record;
  for (let i = 0; i + 1 < flat.length; i += 2) record[String(flat[i])] = String(flat[i + 1]);
  return record;
}

/** Decodes one field's JSON, reporting (and leaving out) what cannot be decoded. */
function decodeInto(
  fields: Record<string, unknown>,
  field: string,
  value: string,
  workspaceId: string,
  report: StoreErrorHandler,
): void {
  try {
    setField(fields, field, JSON.parse(value));
  } catch (error) {
    report(error, { operation: 'decode', workspaceId, field });
  }
}

/**
 * Turns a feed entry's message back into the stores' change shape, at position `id`. An upsert's message
 * carries what changed — its fields and new values, `version`, `source` and `updatedAt` —
 * so `entry.fields` holds the changed fields, as with the memory store.
 */
export function decodeChange<F extends object>(
  message: string,
  id: string,
  report: StoreErrorHandler,
): SnapshotChange<F> | undefined {
  const [type, tag, third, version, source, updatedAt] = JSON.parse(message) as [
    string,
    string,
    unknown,
    unknown,
    unknown,
    unknown,
  ];
  if (typeof tag !== 'string') return undefined;
  const workspaceId = idOfTag(tag);
  if (type === 'upsert') {
    const fields: Record<string, unknown> = {};
    const changed: string[] = [];
    // cjson encodes an empty Lua table as {}, not [].
    const flat = Array.isArray(third) ? third : [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const field = String(flat[i]);
      changed.push(field);
      decodeInto(fields, field, String(flat[i + 1]), workspaceId, report);
    }
    const entry: SnapshotEntry<F> = {
      workspaceId,
      fields: fields as Partial<F>,
      version: Number(version),
      source: String(source ?? ''),
      updatedAt: Number(updatedAt),
    };
    return { type, id, workspaceId, entry, changed };
  }
  if (type === 'remove') {
    const previous = decodeEntry<F>(workspaceId, pairs(third), report);
    return previous && { type, id, workspaceId, previous };
  }
  return undefined;
}
