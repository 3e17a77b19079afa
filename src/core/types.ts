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
 * What each store call receives last: the signal that is aborted when the coalescer stops
 * waiting for the call (its `callTimeoutMs`, its write given up, or `close()`'s drain timeout).
 * A store that honours it never lands a write the coalescer reported as given up.
 */
export interface StoreCallOptions {
  readonly signal: AbortSignal;
}

/**
 * Where merged patches are written: the host's snapshot store, the memory store,
 * or the Redis store. Every method may return a value or a Promise. The coalescer passes
 * `timestamp` as `undefined` unless `timestamps: true`, and always passes `call` last.
 */
export interface SnapshotStore<F extends object = Fields> {
  /** Merges `fields` into the workspace's entry, creating it when missing. */
  upsert(
    workspaceId: string,
    fields: Patch<F>,
    source: string,
    timestamp?: number,
    call?: StoreCallOptions,
  ): MaybePromise<unknown>;
  /** The workspace's entry, or `undefined` (or `null`) when the store does not know it. */
  getByWorkspaceId(workspaceId: string, call?: StoreCallOptions): MaybePromise<unknown>;
  /** Deletes the workspace's entry. */
  remove(workspaceId: string, timestamp?: number, call?: StoreCallOptions): MaybePromise<unknown>;
  /**
   * Optional: several workspaces' upserts in one call, one outcome per item, in order. The
   * coalescer uses it when more than one workspace is due in the same turn (up to
   * `batchSize`); each item is that workspace's upsert, retried and reported on its own. A
   * throw or a rejection of the whole call fails every item.
   */
  upsertMany?(items: readonly UpsertItem<F>[]): MaybePromise<readonly UpsertOutcome[]>;
  /**
   * Optional, for recovery after a crash: marks workspaces that have a patch pending in this
   * process, so that a surviving replica re-reads them if this one dies. The coalescer calls
   * it once per turn of the event loop, before that turn's writes. A store that has it
   * clears a workspace's mark in the write that lands its patch (and in its removal).
   */
  markPending?(workspaceIds: readonly string[]): MaybePromise<unknown>;
  /** Optional, with `markPending`: the workspaces' patches will not be written (skipped). */
  unmarkPending?(workspaceIds: readonly string[]): MaybePromise<unknown>;
  /**
   * Optional, for `collector.recover()`: the workspaces marked by replicas that are gone,
   * each marked as this replica's instead, so that exactly one survivor re-reads it.
   */
  claimOrphans?(): MaybePromise<readonly string[]>;
}

/** One workspace's upsert in an `upsertMany` call: what `upsert` would receive. */
export interface UpsertItem<F extends object = Fields> {
  readonly workspaceId: string;
  readonly fields: Patch<F>;
  readonly source: string;
  /** As `upsert`'s: `undefined` unless `timestamps: true`. */
  readonly timestamp: number | undefined;
  /** This item's signal: aborted when the coalescer stops waiting for it. */
  readonly call: StoreCallOptions;
}

/** What became of one item of `upsertMany`: as `Promise.allSettled` says it. */
export type UpsertOutcome =
  | { readonly status: 'fulfilled'; readonly value?: unknown }
  | { readonly status: 'rejected'; readonly reason: unknown };

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

/**
 * What changed in a snapshot store, with its position in the store's change feed (`id`): pass
 * the last `id` a listener saw as `since` to resume after it. A `reset` says the feed could
 * not resume (the changes after `since` are no longer kept): reload with `getAll()`, then
 * apply what follows, which may already be in what `getAll()` returned (compare `version`).
 */
export type SnapshotChange<F extends object = Fields> =
  | {
      type: 'upsert';
      /** The change's position in the feed (an opaque string; see the store's `subscribe`). */
      id: string;
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
  | { type: 'remove'; id: string; workspaceId: string; previous: SnapshotEntry<F> }
  | {
      type: 'reset';
      /** The position the feed goes on from: every change after it follows. */
      id: string;
    };

export type SnapshotListener<F extends object = Fields> = (change: SnapshotChange<F>) => void;

/** Options of a store's `subscribe`. */
export interface SubscribeOptions {
  /**
   * Resume after this position (a change's `id`): every change after it is delivered first,
   * then the feed goes on live, with no gap or duplicate between. A position the store no
   * longer keeps (or not one of this store's) starts with a `reset`. Without it, the feed
   * starts at the position it has when the subscription is made.
   */
  since?: string | undefined;
}

/** What a snapshot store reports instead of throwing it at its callers or listeners. */
export type StoreErrorContext =
  /** A change-feed listener threw; the other listeners still got the change. */
  | { operation: 'listener'; workspaceId?: string }
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

/** What `retry.retryable` is told of a failure. */
export interface RetryContext {
  /** What failed: a store call, a throwing `canCreate`, or a refresh source's run. */
  operation: 'upsert' | 'getByWorkspaceId' | 'canCreate' | 'remove' | 'refresh';
  workspaceId: string;
  /** Failed tries so far, this one included (1 for the first failure). */
  attempt: number;
  /** Milliseconds since the first try of what is being written or removed. */
  elapsedMs: number;
  /** The error was thrown at the call, not answered as a rejection. */
  thrown: boolean;
}

/**
 * How failed calls are tried again: after an exponential back-off, capped and jittered, until
 * they land. `attempts` and `maxElapsedMs` bound it only when set; an error `retryable` calls
 * permanent is given up at once.
 */
export interface RetryOptions {
  /**
   * Every try, the first included. `1` means no retry; `Infinity` keeps trying.
   * @default Infinity
   */
  attempts?: number;
  /**
   * Delay before the second try; it doubles for each further try, up to `maxDelayMs`.
   * @default 100 (1000 for a refresh source)
   */
  delayMs?: number;
  /**
   * The longest delay between two tries.
   * @default 5000 (30000 for a refresh source)
   */
  maxDelayMs?: number;
  /**
   * Give up once this long has passed since the first try. `Infinity` never gives up.
   * @default Infinity
   */
  maxElapsedMs?: number;
  /**
   * Each delay is spread by up to this share either way (0.2: ±20 %), so that many waiting
   * workspaces, or replicas, do not come back in the same millisecond.
   * @default 0.2
   */
  jitter?: number;
  /**
   * Whether a failure may heal; `false` gives it up at once. The default gives up on errors
   * known to be permanent: codes `EC_VALUE_REFUSED`, `EC_ACL_REFUSED`, `EC_SCRIPT_ERROR`, a
   * `NOPERM` refusal, and a `TypeError` or `RangeError` thrown at the call.
   * @default defaultRetryable
   */
  retryable?: (error: unknown, context: RetryContext) => boolean;
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
   * @default { attempts: Infinity, delayMs: 100, maxDelayMs: 5000, maxElapsedMs: Infinity, jitter: 0.2 }
   */
  retry?: RetryOptions;
  /**
   * A store call unanswered this long counts as failed (and is retried); its signal is
   * aborted. `Infinity` waits for ever.
   * @default 10000
   */
  callTimeoutMs?: number;
  /**
   * Store calls in flight at once, across workspaces (one per workspace, always; an
   * `upsertMany` batch is one call, of up to `batchSize` workspaces). Due writes
   * beyond it wait their turn, oldest first, so a store that just came back is not hit by
   * every waiting workspace in the same millisecond.
   * @default 128
   */
  maxConcurrentWrites?: number;
  /**
   * With a store that has `upsertMany`: at most this many workspaces' upserts in one call.
   * Workspaces due in the same turn (a maxWait wave, `flushAll`, a store that came back) go
   * together, never more than `maxConcurrentWrites` at once.
   * @default 100
   */
  batchSize?: number;
  /**
   * Bound on the backlog: workspaces whose write failed and waits to be retried, or waits
   * for the store to come back. Past it, the oldest waiting write is given up and reported
   * (`EC_BACKLOG_FULL`). Each waiting workspace holds one merged patch, whatever its events.
   * @default Infinity
   */
  maxBacklog?: number;
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
  /**
   * This enqueue's window, instead of the coalescer's: the patch is written at the latest
   * this long after the last enqueue that asked for the same window.
   */
  windowMs?: number;
  /** This enqueue's bound, instead of the coalescer's: written at the latest this long after it. */
  maxWaitMs?: number;
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
  /**
   * Workspaces whose write failed and waits to be retried, or waits for the store to come
   * back: one merged patch (or removal) each.
   */
  backlog: number;
  /** False while the store is taken as away: calls keep failing, it is probed, not hammered. */
  storeAvailable: boolean;
}
