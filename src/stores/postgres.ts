/**
 * `event-coalescer/postgres`: a snapshot store in PostgreSQL, through a `pg.Pool` (or anything
 * with its `query` and `connect`). This module never imports `pg`: the host passes its pool.
 */
import { assertKnownKeys, expected, numberOption } from '../core/describe.js';
import { isPlainObject } from '../core/merge.js';
import { throwIfAborted } from '../core/store-call.js';
import type {
  Fields,
  Logger,
  Patch,
  SnapshotEntry,
  SnapshotListener,
  SnapshotStore,
  StoreCallOptions,
  StoreErrorHandler,
  SubscribeOptions,
  UpsertItem,
  UpsertOutcome,
} from '../core/types.js';
import { decodeEntry, type EntryRow, encodeId, encodePatch } from './postgres-codec.js';
import { PostgresFeed, type PostgresPool } from './postgres-feed.js';
import { grantSql, migrationSql, postgresNames } from './postgres-sql.js';
import { storeErrorHandler } from './report.js';
import { sinceOption } from './subscribe-options.js';

export type { PostgresPool, PostgresPoolClient, PostgresQueryable } from './postgres-feed.js';

export interface PostgresStoreOptions {
  /** The schema of the store's tables; created by `migrate()` unless it is `public`. @default 'public' */
  schema?: string;
  /**
   * The snapshot table's name; the store's other tables and functions are named after it
   * (`<table>_changes`, `<table>_feed`, `<table>_removals`, `<table>_upsert`, `<table>_remove`),
   * and so is its `NOTIFY` channel. Lower-case letters, digits and `_`, at most 40.
   * @default 'event_coalescer'
   */
  table?: string;
  /**
   * How long a removal keeps slower writes (with older timestamps) from resurrecting the
   * workspace. @default 600000 (10 minutes)
   */
  tombstoneTtlMs?: number;
  /**
   * How many recent changes the changes table keeps for `subscribe(listener, { since })`; each
   * write deletes the one that falls out. A subscriber further behind starts with a `reset`.
   * @default 10000
   */
  feedLength?: number;
  /** How often subscribers read the feed without a wake-up (one lost with a connection). @default 1000 */
  pollMs?: number;
  /** Receives what the store cannot throw at anyone: a listener that threw, a lost feed connection. */
  onError?: StoreErrorHandler;
  /** Where reports go without an `onError`: the host's logger (`pino`, `console`). */
  logger?: Partial<Logger>;
}

/** The store contract in PostgreSQL, with reading, a change feed and its schema. */
export interface PostgresSnapshotStore<F extends object = Fields> extends SnapshotStore<F> {
  /** One statement: merges, bumps the version only on change, appends to the feed, notifies. */
  upsert(
    workspaceId: string,
    fields: Patch<F>,
    source: string,
    timestamp?: number,
    call?: StoreCallOptions,
  ): Promise<void>;
  /** Every item in one statement; an item refused before it is sent fails alone. */
  upsertMany(items: readonly UpsertItem<F>[]): Promise<UpsertOutcome[]>;
  getByWorkspaceId(
    workspaceId: string,
    call?: StoreCallOptions,
  ): Promise<SnapshotEntry<F> | undefined>;
  remove(workspaceId: string, timestamp?: number, call?: StoreCallOptions): Promise<void>;
  /** Every entry, by workspace id. */
  getAll(): Promise<SnapshotEntry<F>[]>;
  /**
   * Calls `listener` on every change, in commit order; returns the function that unsubscribes
   * it, with `ready`, which resolves once changes are being followed. With `since`, the
   * changes after it come first. Subscribers share one `LISTEN` connection from the pool.
   */
  subscribe(
    listener: SnapshotListener<F>,
    options?: SubscribeOptions,
  ): (() => void) & { ready: Promise<void> };
  /** The feed's position now: a subscriber with it as `since` misses nothing after it. */
  position(): Promise<string>;
  /**
   * Ends every subscription and gives the feed's `LISTEN` connection back (destroyed): call it
   * before `pool.end()`, which waits for every client checked out.
   */
  close(): void;
  /** Creates the store's tables and functions, or brings them up to date. Safe to run again, and from several replicas at once. */
  migrate(): Promise<void>;
  /** The SQL behind `migrate()`, and the `GRANT`s a role needs to use the store. */
  readonly sql: { readonly migration: string; grants(role: string): string };
}

const OPTIONS = ['schema', 'table', 'tombstoneTtlMs', 'feedLength', 'pollMs', 'onError', 'logger'];

function assertPool(pool: unknown): asserts pool is PostgresPool {
  const candidate = pool as Partial<PostgresPool> | null;
  if (
    candidate === null ||
    typeof candidate !== 'object' ||
    typeof candidate.query !== 'function' ||
    typeof candidate.connect !== 'function'
  ) {
    throw new TypeError(
      expected('pool', 'a pg.Pool (an object with query and connect methods)', pool),
    );
  }
}

/**
 * A snapshot store in PostgreSQL. Run `migrate()` once (or the SQL in `store.sql.migration`)
 * before the first write.
 *
 * @example
 * import pg from 'pg';
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const store = createPostgresSnapshotStore(pool);
 * await store.migrate();
 * const coalescer = new EventCoalescer(store, { timestamps: true });
 */
export function createPostgresSnapshotStore<F extends object = Fields>(
  pool: PostgresPool,
  options: PostgresStoreOptions = {},
): PostgresSnapshotStore<F> {
  assertPool(pool);
  if (!isPlainObject(options)) throw new TypeError(expected('options', 'an object', options));
  assertKnownKeys('options', options, OPTIONS);
  const names = postgresNames(options.schema, options.table);
  const tombstoneTtlMs = numberOption('tombstoneTtlMs', options.tombstoneTtlMs, 600_000, 'count');
  const feedLength = numberOption('feedLength', options.feedLength, 10_000, 'count');
  const pollMs = numberOption('pollMs', options.pollMs, 1000, 'count');
  const report = storeErrorHandler(options.onError, options.logger);
  const feed = new PostgresFeed<F>(pool, names, report, pollMs);
  const migration = migrationSql(names);
  const upsertSql = `SELECT ${names.upsert}($1, $2, $3, $4, $5, $6)`;
  const columns = 'workspace_id, fields, version, source, updated_at';

  /** Sends encoded upserts in one statement. */
  const send = async (
    ids: string[],
    patches: string[],
    sources: string[],
    stamps: (number | null)[],
  ): Promise<void> => {
    const now = Date.now();
    const ats = stamps.map((stamp) => stamp ?? now);
    await pool.query(upsertSql, [ids, patches, sources, stamps, ats, feedLength]);
  };

  const store: PostgresSnapshotStore<F> = {
    async upsert(workspaceId, fields, source, timestamp, call) {
      throwIfAborted(call);
      const patch = encodePatch(fields as Record<string, unknown>);
      await send([encodeId(workspaceId)], [patch], [source], [timestamp ?? null]);
    },

    async upsertMany(items) {
      const outcomes: UpsertOutcome[] = [];
      const sent: number[] = [];
      const ids: string[] = [];
      const patches: string[] = [];
      const sources: string[] = [];
      const stamps: (number | null)[] = [];
      for (const [index, item] of items.entries()) {
        try {
          throwIfAborted(item.call);
          patches.push(encodePatch(item.fields as Record<string, unknown>));
        } catch (reason) {
          outcomes[index] = { status: 'rejected', reason };
          continue;
        }
        sent.push(index);
        ids.push(encodeId(item.workspaceId));
        sources.push(item.source);
        stamps.push(item.timestamp ?? null);
      }
      if (sent.length > 0) {
        let outcome: UpsertOutcome = { status: 'fulfilled' };
        try {
          await send(ids, patches, sources, stamps);
        } catch (reason) {
          outcome = { status: 'rejected', reason };
        }
        for (const index of sent) outcomes[index] = outcome;
      }
      return outcomes;
    },

    async getByWorkspaceId(workspaceId, call) {
      throwIfAborted(call);
      const { rows } = await pool.query(
        `SELECT ${columns} FROM ${names.snapshots} WHERE workspace_id = $1`,
        [encodeId(workspaceId)],
      );
      const row = rows[0] as EntryRow | undefined;
      return row === undefined ? undefined : decodeEntry<F>(row);
    },

    async remove(workspaceId, timestamp, call) {
      throwIfAborted(call);
      await pool.query(`SELECT ${names.remove}($1, $2, $3, $4)`, [
        encodeId(workspaceId),
        timestamp ?? null,
        tombstoneTtlMs,
        feedLength,
      ]);
    },

    async getAll() {
      const { rows } = await pool.query(
        `SELECT ${columns} FROM ${names.snapshots} ORDER BY workspace_id`,
      );
      return (rows as EntryRow[]).map((row) => decodeEntry<F>(row));
    },

    subscribe(listener, subscribeOptions = {}) {
      if (typeof listener !== 'function') {
        throw new TypeError(expected('listener', 'a function', listener));
      }
      return feed.subscribe(listener, sinceOption(subscribeOptions));
    },

    position: () => feed.position(),

    close: () => feed.close(),

    async migrate() {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        // Replicas that start together migrate one after the other.
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [
          `event-coalescer ${names.snapshots}`,
        ]);
        await client.query(migration);
        await client.query('COMMIT');
        client.release();
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        client.release(true);
        throw error;
      }
    },

    sql: { migration, grants: (role) => grantSql(names, role) },
  };
  return store;
}
