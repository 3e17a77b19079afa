/**
 * The PostgreSQL store's schema: its tables, the two functions every write goes through, and
 * the privileges its role needs. Every write takes the store's feed row lock first, so writes
 * to one store are serialised: the change feed's positions follow commit order exactly, and a
 * reader at a position never misses a change committed before it.
 */
import { expected } from '../core/describe.js';

/** The names one store uses, each a checked, quoted SQL identifier (or channel). */
export interface PostgresNames {
  schema: string;
  /** The snapshot table, schema-qualified and quoted. */
  snapshots: string;
  changes: string;
  feed: string;
  removals: string;
  upsert: string;
  remove: string;
  /** The LISTEN / NOTIFY channel: the table's name. */
  channel: string;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,39}$/;

function identifier(argument: string, value: unknown): string {
  if (typeof value !== 'string' || !IDENTIFIER.test(value)) {
    throw new TypeError(
      expected(
        argument,
        'a lower-case SQL name of at most 40 letters, digits and underscores',
        value,
      ),
    );
  }
  return value;
}

export function postgresNames(
  schema: unknown = 'public',
  table: unknown = 'event_coalescer',
): PostgresNames {
  const s = identifier('options.schema', schema);
  const t = identifier('options.table', table);
  const name = (suffix: string): string => `"${s}"."${t}${suffix}"`;
  return {
    schema: `"${s}"`,
    snapshots: name(''),
    changes: name('_changes'),
    feed: name('_feed'),
    removals: name('_removals'),
    upsert: name('_upsert'),
    remove: name('_remove'),
    channel: t,
  };
}

/** The SQL that creates (or updates) a store's tables and functions; safe to run again. */
export function migrationSql(names: PostgresNames): string {
  const { snapshots, changes, feed, removals } = names;
  const createSchema =
    names.schema === '"public"' ? '' : `CREATE SCHEMA IF NOT EXISTS ${names.schema};\n`;
  return `${createSchema}
CREATE TABLE IF NOT EXISTS ${snapshots} (
  workspace_id text PRIMARY KEY,
  fields jsonb NOT NULL,
  field_times jsonb NOT NULL DEFAULT '{}'::jsonb,
  version bigint NOT NULL,
  source text NOT NULL,
  updated_at double precision NOT NULL
);
CREATE TABLE IF NOT EXISTS ${removals} (
  workspace_id text PRIMARY KEY,
  removed_at double precision NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS "${names.channel}_removals_expiry" ON ${removals} (expires_at);
CREATE TABLE IF NOT EXISTS ${changes} (
  position bigint PRIMARY KEY,
  change jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS ${feed} (
  single boolean PRIMARY KEY DEFAULT true CHECK (single),
  epoch text NOT NULL,
  position bigint NOT NULL
);
INSERT INTO ${feed} (epoch, position)
  VALUES (substr(md5(random()::text || clock_timestamp()::text), 1, 12), 0)
  ON CONFLICT DO NOTHING;

-- Upserts a batch, in order, under the feed lock; returns the feed's position after it.
CREATE OR REPLACE FUNCTION ${names.upsert}(
  p_ids text[], p_patches jsonb[], p_sources text[], p_stamps float8[], p_ats float8[], p_keep bigint
) RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
  head bigint;
  written bigint := 0;
  current_row record;
  merged jsonb;
  times jsonb;
  next_version bigint;
  changed jsonb;
  changed_names jsonb;
  times_changed boolean;
  accepted_times jsonb;
  stamp float8;
  removed float8;
BEGIN
  SELECT f.position INTO head FROM ${feed} f FOR UPDATE;
  FOR i IN 1 .. coalesce(array_length(p_ids, 1), 0) LOOP
    stamp := p_stamps[i];
    IF stamp IS NOT NULL THEN
      SELECT r.removed_at INTO removed FROM ${removals} r
        WHERE r.workspace_id = p_ids[i] AND r.expires_at > clock_timestamp();
      IF FOUND AND stamp <= removed THEN CONTINUE; END IF;
    END IF;
    SELECT s.fields, s.field_times, s.version INTO current_row FROM ${snapshots} s
      WHERE s.workspace_id = p_ids[i];
    IF FOUND THEN
      merged := current_row.fields; times := current_row.field_times; next_version := current_row.version;
    ELSE
      merged := '{}'::jsonb; times := '{}'::jsonb; next_version := 0;
    END IF;
    -- Set-based, joined (a stored jsonb is read once, not once per field): the fields no newer
    -- write has overtaken (their times move on), and of those the ones that change a value.
    SELECT coalesce(jsonb_object_agg(e.key, stamp), '{}'::jsonb),
           coalesce(jsonb_object_agg(e.key, e.value)
             FILTER (WHERE m.value IS DISTINCT FROM e.value), '{}'::jsonb),
           coalesce(jsonb_agg(to_jsonb(e.key)) FILTER (WHERE m.value IS DISTINCT FROM e.value),
             '[]'::jsonb),
           count(*) > 0
      INTO accepted_times, changed, changed_names, times_changed
      FROM jsonb_each(p_patches[i]) e
      LEFT JOIN jsonb_each(merged) m ON m.key = e.key
      LEFT JOIN jsonb_each(times) t ON t.key = e.key
      WHERE stamp IS NULL OR t.value IS NULL OR (t.value #>> '{}')::float8 < stamp;
    IF stamp IS NOT NULL THEN
      times := times || accepted_times;
    ELSE
      times_changed := false;
    END IF;
    merged := merged || changed;
    IF next_version > 0 AND changed_names = '[]'::jsonb THEN
      IF times_changed THEN
        UPDATE ${snapshots} SET field_times = times WHERE workspace_id = p_ids[i];
      END IF;
      CONTINUE;
    END IF;
    next_version := next_version + 1;
    INSERT INTO ${snapshots} (workspace_id, fields, field_times, version, source, updated_at)
      VALUES (p_ids[i], merged, times, next_version, p_sources[i], p_ats[i])
      ON CONFLICT (workspace_id) DO UPDATE SET
        fields = excluded.fields, field_times = excluded.field_times, version = excluded.version,
        source = excluded.source, updated_at = excluded.updated_at;
    head := head + 1;
    written := written + 1;
    INSERT INTO ${changes} (position, change) VALUES (head, jsonb_build_array(
      'upsert', p_ids[i], changed_names, changed, next_version, p_sources[i], p_ats[i]));
  END LOOP;
  IF written > 0 THEN
    UPDATE ${feed} SET position = head;
    -- Positions have no gaps: exactly the changes that fall out of the kept length go.
    DELETE FROM ${changes} WHERE position > head - written - p_keep AND position <= head - p_keep;
    PERFORM pg_notify('${names.channel}', head::text);
  END IF;
  RETURN head;
END
$fn$;

-- Removes a workspace under the feed lock, keeping a tombstone when the removal is stamped.
CREATE OR REPLACE FUNCTION ${names.remove}(
  p_id text, p_stamp float8, p_ttl_ms float8, p_keep bigint
) RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
  head bigint;
  previous record;
BEGIN
  SELECT f.position INTO head FROM ${feed} f FOR UPDATE;
  IF p_stamp IS NOT NULL THEN
    DELETE FROM ${removals} WHERE expires_at <= clock_timestamp();
    INSERT INTO ${removals} AS r (workspace_id, removed_at, expires_at)
      VALUES (p_id, p_stamp, clock_timestamp() + p_ttl_ms * interval '1 millisecond')
      ON CONFLICT (workspace_id) DO UPDATE SET
        removed_at = greatest(r.removed_at, excluded.removed_at), expires_at = excluded.expires_at;
  END IF;
  DELETE FROM ${snapshots} s WHERE s.workspace_id = p_id
    RETURNING s.fields, s.version, s.source, s.updated_at INTO previous;
  IF NOT FOUND THEN RETURN head; END IF;
  head := head + 1;
  INSERT INTO ${changes} (position, change) VALUES (head, jsonb_build_array(
    'remove', p_id, previous.fields, previous.version, previous.source, previous.updated_at));
  UPDATE ${feed} SET position = head;
  DELETE FROM ${changes} WHERE position = head - p_keep;
  PERFORM pg_notify('${names.channel}', head::text);
  RETURN head;
END
$fn$;

-- The functions run with their caller's privileges; only roles granted them may call them.
REVOKE EXECUTE ON FUNCTION ${names.upsert}(text[], jsonb[], text[], float8[], float8[], bigint) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION ${names.remove}(text, float8, float8, bigint) FROM PUBLIC;
`;
}

/**
 * The privileges a role needs to use a store migrated by another role: its tables and its
 * functions, nothing else. `role` is a SQL name, quoted as given.
 */
export function grantSql(names: PostgresNames, role: string): string {
  const quoted = `"${identifier('role', role)}"`;
  const { snapshots, changes, feed, removals } = names;
  return `
GRANT USAGE ON SCHEMA ${names.schema} TO ${quoted};
GRANT SELECT, INSERT, UPDATE, DELETE ON ${snapshots}, ${removals}, ${changes} TO ${quoted};
GRANT SELECT, UPDATE ON ${feed} TO ${quoted};
GRANT EXECUTE ON FUNCTION ${names.upsert}(text[], jsonb[], text[], float8[], float8[], bigint) TO ${quoted};
GRANT EXECUTE ON FUNCTION ${names.remove}(text, float8, float8, bigint) TO ${quoted};
`;
}
