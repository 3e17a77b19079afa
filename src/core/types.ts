/** A value or a promise of it: every store method may answer either way. */
export type MaybePromise<T> = T | PromiseLike<T>;

/** The snapshot's fields, by name. The default accepts any field. */
export type Fields = Record<string, unknown>;

/**
 * A partial update of a workspace's fields. `undefined` means "not provided":
 * it never erases a value, while `null` is a real value and is written.
 */
export type Patch<F extends object = Fields> = { [K in keyof F]?: F[K] | undefined };

/**
 * Where merged patches are written: the host's snapshot store, the memory store,
 * or the Redis store. Every method may return a value or a Promise.
 */
export interface SnapshotStore<F extends object = Fields> {
  /** Merges `fields` into the workspace's entry, creating it when missing. */
  upsert(
    workspaceId: string,
    fields: Patch<F>,
    source: string,
    timestamp?: number,
  ): MaybePromise<unknown>;
  /** The workspace's entry, or `undefined` (or `null`) when the store does not know it. */
  getByWorkspaceId(workspaceId: string): MaybePromise<unknown>;
  /** Deletes the workspace's entry. */
  remove(workspaceId: string, timestamp?: number): MaybePromise<unknown>;
}

/** One workspace's entry, as `getByWorkspaceId`, `getAll` and change events give it (read-only). */
export interface SnapshotEntry<F extends object = Fields> {
  readonly workspaceId: string;
  readonly fields: Readonly<Partial<F>>;
  /** Starts at 1 and grows by one with every write that changes a field. */
  readonly version: number;
  /** The source label of the last write that changed a field. */
  readonly source: string;
  /** Time of that write: its timestamp when given, otherwise `Date.now()`. */
  readonly updatedAt: number;
}

/** What changed in a snapshot store. */
export type SnapshotChange<F extends object = Fields> =
  | {
      type: 'upsert';
      workspaceId: string;
      /**
       * The entry after the write, with only the fields this write changed in `fields` (and
       * its new `version`, `source`, `updatedAt`): what a feed carries cheaply. The whole
       * entry is one `getByWorkspaceId` away.
       */
      entry: SnapshotEntry<F>;
      /** The names of the fields this write changed. */
      changed: readonly string[];
    }
  | { type: 'remove'; workspaceId: string; previous: SnapshotEntry<F> };

export type SnapshotListener<F extends object = Fields> = (change: SnapshotChange<F>) => void;

/** What a snapshot store reports instead of throwing it at its callers or listeners. */
export type StoreErrorContext =
  /** A change-feed listener threw; the other listeners still got the change. */
  | { operation: 'listener'; workspaceId: string }
  /** A stored field or a change-feed message could not be decoded, and was skipped. */
  | { operation: 'decode'; workspaceId?: string; field?: string }
  /** The store's own change-feed connection failed (it reconnects by itself). */
  | { operation: 'connection' };

/** Receives what a snapshot store reports; see {@link StoreErrorContext}. */
export type StoreErrorHandler = (error: unknown, context: StoreErrorContext) => void;

/** Object-first logger, as `console` and `pino` both accept. */
export interface Logger {
  debug(context: object, message: string): void;
  info(context: object, message: string): void;
  warn(context: object, message: string): void;
  error(context: object, message: string): void;
}

/** What was given up, by the operation that failed. */
export type ErrorContext<F extends object = Fields> =
  | {
      operation: 'upsert' | 'getByWorkspaceId' | 'canCreate';
      workspaceId: string;
      source: string;
      fields: Patch<F>;
    }
  | { operation: 'remove'; workspaceId: string }
  | { operation: 'map'; source: string; workspaceId?: string }
  | { operation: 'refresh'; source: string; workspaceId: string };

/** Called once for each thing given up. */
export type ErrorHandler<F extends object = Fields> = (
  error: unknown,
  context: ErrorContext<F>,
) => void;

/** How failed store calls are tried again. */
export interface RetryOptions {
  /**
   * Every try, the first included. `1` means no retry.
   * @default 3
   */
  attempts?: number;
  /**
   * Delay before the second try; it doubles for each further try.
   * @default 100
   */
  delayMs?: number;
}

/** Options of {@link EventCoalescer}. All are optional. */
export interface CoalescerOptions<F extends object = Fields> {
  /**
   * Quiet period: a workspace's merged patch is written this long after its last enqueue.
   * @default 150
   */
  windowMs?: number;
  /**
   * Starvation guard: a pending patch is written at most this long after its first
   * enqueue, however steadily events keep coming. `Infinity` turns it off.
   * @default 1000
   */
  maxWaitMs?: number;
  /**
   * Leading edge, as in `lodash.debounce`: an enqueue for a quiet workspace (nothing pending,
   * no store call in flight, no write started within `windowMs`) is written at once; what
   * follows within the window coalesces into one trailing write, as without it.
   * @default false
   */
  leading?: boolean;
  /**
   * Bound on pending workspaces; past it the oldest pending one is written early.
   * @default 100000
   */
  maxPending?: number;
  /**
   * Whether a patch may create a workspace the store does not know yet.
   * @default fields => Boolean(fields.projectId)
   */
  canCreate?: (fields: Patch<F>) => boolean;
  /**
   * When true, `upsert` and `remove` get a last argument: a millisecond timestamp,
   * strictly increasing across every coalescer in the process and never ahead of
   * `Date.now()` (fractions of a millisecond tell writes within one millisecond apart).
   * @default false
   */
  timestamps?: boolean;
  /**
   * How failed store calls are tried again.
   * @default { attempts: 3, delayMs: 100 }
   */
  retry?: RetryOptions;
  /**
   * How long `close()` waits for store calls still in flight before it reports them
   * to `onError` and resolves.
   * @default 5000
   */
  drainTimeoutMs?: number;
  /**
   * Receives debug, info, warn and error lines, object first.
   * @default silent
   */
  logger?: Partial<Logger>;
  /** Called once for each thing given up. */
  onError?: ErrorHandler<F>;
}

/** Options of a single {@link EventCoalescer.enqueue} call. */
export interface EnqueueOptions {
  /** Write now, taking along whatever is pending for the workspace. */
  immediate?: boolean;
}

/** Counters of an {@link EventCoalescer}. */
export interface CoalescerStats {
  /** Patches accepted by `enqueue`. */
  enqueued: number;
  /** Merged patches written to the store. */
  flushed: number;
  /** Writes skipped by the unknown-workspace rule. */
  skipped: number;
  /** Removals done by the store. */
  removed: number;
  /** Store calls tried again after a failure. */
  retried: number;
  /** Patches, removals and refreshes given up and reported to `onError`. */
  failed: number;
  /** Events whose action was malformed, or whose `map` threw. */
  invalid: number;
  /** Patches refused after `close()`. */
  dropped: number;
  /** Workspaces whose patch waits for its window (at most `maxPending`). */
  pending: number;
  /**
   * Workspaces whose patch is due but waits behind their store call in flight or its
   * retry back-off: at most one per such workspace, since they merge.
   */
  waiting: number;
  /** Store calls in flight. */
  inFlight: number;
}
