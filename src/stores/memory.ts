import { assertKnownKeys, expected, numberOption } from '../core/describe.js';
import { isPlainObject, setField } from '../core/merge.js';
import { throwIfAborted } from '../core/store-call.js';
import type {
  Fields,
  Logger,
  Patch,
  SnapshotChange,
  SnapshotEntry,
  SnapshotListener,
  SnapshotStore,
  StoreCallOptions,
  StoreErrorHandler,
  SubscribeOptions,
  UpsertItem,
  UpsertOutcome,
} from '../core/types.js';
import { ChangeRing } from './change-ring.js';
import { assertJsonValue } from './json-values.js';
import { notify, notifyAll, storeErrorHandler } from './report.js';
import { sinceOption } from './subscribe-options.js';

export interface MemoryStoreOptions {
  /**
   * How long a removal keeps slower writes (with older timestamps) from resurrecting the
   * workspace. Expired removals are forgotten, so removed workspaces do not hold memory.
   * @default 600000 (10 minutes), as in the Redis store
   */
  tombstoneTtlMs?: number;
  /**
   * How many recent changes the feed keeps for `subscribe(listener, { since })`. A
   * subscriber further behind starts with a `reset`. `0` keeps none.
   * @default 1000
   */
  feedLength?: number;
  /**
   * Receives what the store cannot throw at anyone: a change listener that threw.
   * @default reports to `logger.error`, else one `console.error` line
   */
  onError?: StoreErrorHandler;
  /** Where reports go without an `onError`: the host's logger (`pino`, `console`). */
  logger?: Partial<Logger>;
}

/** The store contract, synchronous, with reading and a change feed. */
export interface MemorySnapshotStore<F extends object = Fields> extends SnapshotStore<F> {
  /** Throws the signal's reason, writing nothing, when `call.signal` is already aborted. */
  upsert(
    workspaceId: string,
    fields: Patch<F>,
    source: string,
    timestamp?: number,
    call?: StoreCallOptions,
  ): void;
  /** Each item as its own `upsert`, in order: one refused fails alone. */
  upsertMany(items: readonly UpsertItem<F>[]): UpsertOutcome[];
  getByWorkspaceId(workspaceId: string, call?: StoreCallOptions): SnapshotEntry<F> | undefined;
  remove(workspaceId: string, timestamp?: number, call?: StoreCallOptions): void;
  /** Every entry, in creation order. */
  getAll(): SnapshotEntry<F>[];
  /** Number of workspaces held. */
  readonly size: number;
  /** Number of removals still remembered (see `tombstoneTtlMs`). */
  readonly removalCount: number;
  /**
   * Calls `listener` on every change; returns the function that unsubscribes it. With
   * `since`, the changes after it are delivered first, before `subscribe` returns.
   * Positions are `<store epoch>-<count>`: another store's (or another process's) positions
   * start with a `reset`.
   */
  subscribe(
    listener: SnapshotListener<F>,
    options?: SubscribeOptions,
  ): (() => void) & { ready: Promise<void> };
  /** The feed's position now: a subscriber with it as `since` misses nothing after it. */
  position(): string;
}

interface Row {
  fields: Record<string, unknown>;
  /** With timestamps: the timestamp of each field's last write. */
  fieldTimes: Map<string, number> | undefined;
  version: number;
  source: string;
  updatedAt: number;
  /** The read-only copy handed out, made again after each change. */
  view: SnapshotEntry | undefined;
}

/**
 * An in-memory snapshot store: for hosts without one, for demos and tests.
 *
 * A write merges like the coalescer (`undefined` skipped, `null` kept) and creates the
 * entry on first write. A write that changes nothing emits nothing and keeps the version.
 * With timestamps, each field keeps the timestamp of its last write and only a newer one
 * overwrites it, and a write not newer than the workspace's removal is ignored.
 *
 * @example
 * const store = createMemorySnapshotStore();
 * store.subscribe((change) => console.log(change.type, change.workspaceId));
 * const coalescer = new EventCoalescer(store);
 */
export function createMemorySnapshotStore<F extends object = Fields>(
  options: MemoryStoreOptions = {},
): MemorySnapshotStore<F> {
  if (!isPlainObject(options)) throw new TypeError(expected('options', 'an object', options));
  assertKnownKeys('options', options, ['tombstoneTtlMs', 'feedLength', 'onError', 'logger']);
  const tombstoneTtlMs = numberOption('tombstoneTtlMs', options.tombstoneTtlMs, 600_000, 'count');
  const feedLength =
    options.feedLength === 0 ? 0 : numberOption('feedLength', options.feedLength, 1000, 'count');
  const report = storeErrorHandler(options.onError, options.logger);
  const rows = new Map<string, Row>();
  /**
   * Each workspace's last removal, so that a slower write cannot resurrect it, in the order
   * they expire (a removal is re-inserted when renewed): the expired ones are at the front.
   */
  const removals = new Map<string, { at: number; expiresAt: number }>();
  const listeners = new Set<SnapshotListener<F>>();
  const feed = new ChangeRing<SnapshotChange<F>>(feedLength);

  /** Forgets the removals whose TTL has passed. */
  const pruneRemovals = (now: number): void => {
    for (const [workspaceId, removal] of removals) {
      if (removal.expiresAt > now) return;
      removals.delete(workspaceId);
    }
  };

  const removedAt = (workspaceId: string): number => {
    pruneRemovals(Date.now());
    return removals.get(workspaceId)?.at ?? -Infinity;
  };

  const view = (workspaceId: string, row: Row): SnapshotEntry<F> => {
    if (row.view === undefined) {
      const fields = Object.freeze({ ...row.fields });
      const { version, source, updatedAt } = row;
      row.view = Object.freeze({ workspaceId, fields, version, source, updatedAt });
    }
    return row.view as SnapshotEntry<F>;
  };

  const emit = (change: SnapshotChange<F>): void => {
    feed.add(change);
    notifyAll(listeners, change, report);
  };

  const apply = (row: Row, patch: Record<string, unknown>, timestamp?: number): string[] => {
    const changed: string[] = [];
    for (const key in patch) {
      const value = patch[key];
      if (value === undefined) continue;
      if (timestamp !== undefined) {
        if (row.fieldTimes === undefined) row.fieldTimes = new Map();
        const times = row.fieldTimes;
        const previous = times.get(key);
        if (previous !== undefined && previous >= timestamp) continue;
        times.set(key, timestamp);
      }
      // An object is kept as a copy of its JSON, as Redis keeps it: later changes to the
      // caller's object do not reach the store, and an equal value is no change.
      let stored = value;
      if (typeof value === 'object' && value !== null) {
        const json = JSON.stringify(value);
        const had = row.fields[key];
        if (
          Object.hasOwn(row.fields, key) &&
          typeof had === 'object' &&
          JSON.stringify(had) === json
        )
          continue;
        stored = JSON.parse(json);
      } else if (Object.hasOwn(row.fields, key) && Object.is(row.fields[key], value)) continue;
      setField(row.fields, key, stored);
      changed.push(key);
    }
    return changed;
  };

  const store: MemorySnapshotStore<F> = {
    upsert(workspaceId, fields, source, timestamp, call) {
      // A synchronous store runs each call as it is made: only a signal aborted already stops it.
      throwIfAborted(call);
      // What Redis would refuse is refused here too, before anything is written.
      for (const key in fields) {
        const value = (fields as Record<string, unknown>)[key];
        if (value !== undefined) assertJsonValue(key, value);
      }
      if (timestamp !== undefined && timestamp <= removedAt(workspaceId)) return;
      let row = rows.get(workspaceId);
      const created = row === undefined;
      row ??= {
        fields: {},
        fieldTimes: undefined,
        version: 0,
        source,
        updatedAt: 0,
        view: undefined,
      };
      const changed = apply(row, fields as Record<string, unknown>, timestamp);
      if (!created && changed.length === 0) return;
      rows.set(workspaceId, row);
      row.version++;
      row.source = source;
      row.updatedAt = timestamp ?? Date.now();
      row.view = undefined;
      const id = feed.next();
      if (listeners.size === 0 && !feed.keeps) return;
      // The change carries what changed, as the Redis store's feed does; the whole entry is
      // one getByWorkspaceId away.
      const changedFields: Record<string, unknown> = {};
      for (const key of changed) setField(changedFields, key, row.fields[key]);
      const { version, updatedAt } = row;
      const entry = Object.freeze({
        workspaceId,
        fields: Object.freeze(changedFields),
        version,
        source,
        updatedAt,
      }) as SnapshotEntry<F>;
      emit({ type: 'upsert', id, workspaceId, entry, changed });
    },

    upsertMany(items) {
      // Each item as its own upsert: one that is refused fails alone.
      return items.map(({ workspaceId, fields, source, timestamp, call }): UpsertOutcome => {
        try {
          store.upsert(workspaceId, fields, source, timestamp, call);
          return { status: 'fulfilled' };
        } catch (reason) {
          return { status: 'rejected', reason };
        }
      });
    },

    getByWorkspaceId(workspaceId, call) {
      throwIfAborted(call);
      const row = rows.get(workspaceId);
      return row === undefined ? undefined : view(workspaceId, row);
    },

    remove(workspaceId, timestamp, call) {
      throwIfAborted(call);
      if (timestamp !== undefined) {
        const at = Math.max(timestamp, removedAt(workspaceId));
        removals.delete(workspaceId);
        removals.set(workspaceId, { at, expiresAt: Date.now() + tombstoneTtlMs });
      }
      const row = rows.get(workspaceId);
      if (row === undefined) return;
      rows.delete(workspaceId);
      emit({ type: 'remove', id: feed.next(), workspaceId, previous: view(workspaceId, row) });
    },

    getAll() {
      return [...rows].map(([workspaceId, row]) => view(workspaceId, row));
    },

    get size() {
      return rows.size;
    },

    get removalCount() {
      pruneRemovals(Date.now());
      return removals.size;
    },

    position() {
      return feed.position;
    },

    subscribe(listener, subscribeOptions = {}) {
      if (typeof listener !== 'function') {
        throw new TypeError(expected('listener', 'a function', listener));
      }
      const since = sinceOption(subscribeOptions);
      if (since !== undefined) {
        // A synchronous store replays at once: no write can come between replay and live.
        const missed = feed.after(since);
        if (missed === undefined) notify(listener, { type: 'reset', id: feed.position }, report);
        else for (const change of missed) notify(listener, change, report);
      }
      listeners.add(listener);
      const unsubscribe = () => {
        listeners.delete(listener);
      };
      return Object.assign(unsubscribe, { ready: Promise.resolve() });
    },
  };
  return store;
}
