import { expected } from './describe.js';
import { isPlainObject, mergeFields } from './merge.js';
import { assertStore, type ResolvedOptions, resolveOptions } from './options.js';
import { PendingPatch } from './pending-patch.js';
import { QuietQueue } from './quiet-queue.js';
import type {
  CoalescerOptions,
  CoalescerStats,
  EnqueueOptions,
  ErrorContext,
  Fields,
  MaybePromise,
  Patch,
  SnapshotStore,
} from './types.js';

type TimerHandle = ReturnType<typeof setTimeout>;

/** Pending times stay below this many ms from the epoch (2^30: small integers in V8). */
const EPOCH_SPAN_MS = 0x40000000;
const clampToSpan = (ms: number): number =>
  Math.min(EPOCH_SPAN_MS, Math.max(-EPOCH_SPAN_MS, ms)) | 0;

/** A removal waiting for, or doing, its store call. */
interface Removal {
  failures: number;
  promise: Promise<void>;
  resolve: () => void;
}

/**
 * The store calls of one workspace, one at a time. A lane exists only while a call is
 * running or waiting: a removal runs before the patch queued behind it.
 */
interface Lane {
  readonly workspaceId: string;
  /** A store call of this workspace is running. */
  busy: boolean;
  /** What the running call writes, to report it if the store never answers. */
  current: PendingPatch | Removal | undefined;
  removal: Removal | undefined;
  /** Failed tries of the patch being written or retried. */
  failures: number;
  /** The due patch that waits for the running call or the back-off to end. */
  next: PendingPatch | undefined;
  backoff: TimerHandle | undefined;
  /** Given up by a drain timeout: late answers of the store are ignored. */
  abandoned: boolean;
  /** `flush` callers, told when the lane rests (nothing running, nothing ready). */
  waiters: Array<() => void> | undefined;
}

type StoreOperation = 'upsert' | 'getByWorkspaceId' | 'remove';

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function';
}

function assertWorkspaceId(workspaceId: unknown): asserts workspaceId is string {
  if (typeof workspaceId !== 'string' || workspaceId === '') {
    throw new TypeError(expected('workspaceId', 'a non-empty string', workspaceId));
  }
}

// Looked up on each call, so fake timers installed after import take effect.
const setTimer = (callback: () => void, delayMs: number): TimerHandle =>
  globalThis.setTimeout(callback, delayMs);
const clearTimer = (handle: TimerHandle): void => globalThis.clearTimeout(handle);

/**
 * Merges the field patches of each workspace within a short window and writes one
 * update per workspace per burst.
 *
 * @example
 * const coalescer = new EventCoalescer(store, { windowMs: 150 });
 * coalescer.enqueue('ws-1', { status: 'READY' }, 'event:workspace_state_changed');
 * coalescer.enqueue('ws-1', { isWorking: true }, 'event:workspace_active');
 * // 150 ms later: store.upsert('ws-1', { status: 'READY', isWorking: true },
 * //                            'event:workspace_state_changed+event:workspace_active')
 * await coalescer.close();
 */
export class EventCoalescer<F extends object = Fields> {
  readonly #store: SnapshotStore<F>;
  readonly #options: ResolvedOptions<F>;
  readonly #windowMs: number;
  readonly #maxWaitMs: number;
  readonly #maxPending: number;
  /** Pending patches in first-enqueue order: the order of their `maxWaitMs` deadlines. */
  readonly #pending = new Map<string, PendingPatch>();
  /** The same patches in last-enqueue order: the order of their `windowMs` deadlines. */
  readonly #quiet = new QuietQueue();
  readonly #lanes = new Map<string, Lane>();
  /** One timer for all pending patches, armed for the earliest deadline. */
  #timer: TimerHandle | undefined;
  /** Pending times count from here (see `#now`). */
  #epoch = Date.now();
  #lastTimestamp = 0;
  #closed = false;
  #closing: Promise<void> | undefined;
  #warnedClosed = false;
  readonly #counts: Omit<CoalescerStats, 'pending'> = {
    enqueued: 0,
    flushed: 0,
    skipped: 0,
    removed: 0,
    retried: 0,
    failed: 0,
    invalid: 0,
    dropped: 0,
    inFlight: 0,
  };

  constructor(store: SnapshotStore<F>, windowMsOrOptions?: number | CoalescerOptions<F>) {
    assertStore<F>(store);
    this.#store = store;
    this.#options = resolveOptions<F>(
      typeof windowMsOrOptions === 'number' ? { windowMs: windowMsOrOptions } : windowMsOrOptions,
    );
    this.#windowMs = this.#options.windowMs;
    this.#maxWaitMs = this.#options.maxWaitMs;
    this.#maxPending = this.#options.maxPending;
  }

  /**
   * Merges `fields` into the workspace's pending patch and (re)starts its window.
   * Later values win; `undefined` never erases a value; `null` is written.
   */
  enqueue(workspaceId: string, fields: Patch<F>, source: string, options?: EnqueueOptions): void {
    assertWorkspaceId(workspaceId);
    // `constructor === Object` settles the common case without the slower prototype lookup.
    if (fields?.constructor !== Object && !isPlainObject(fields)) {
      throw new TypeError(expected('fields', 'a plain object', fields));
    }
    if (typeof source !== 'string') throw new TypeError(expected('source', 'a string', source));
    if (this.#closed) {
      this.#drop(workspaceId, source);
      return;
    }
    const now = this.#now();
    let patch = this.#pending.get(workspaceId);
    if (patch === undefined) {
      patch = new PendingPatch(workspaceId, now, source);
      this.#pending.set(workspaceId, patch);
      this.#quiet.append(patch);
      // Without a timer nothing else is pending, so this patch's deadline is the earliest.
      if (this.#timer === undefined) this.#arm(now);
    } else {
      patch.lastAt = now;
      // A hot key is already the newest: skip the relinking.
      if (patch !== this.#quiet.newest) this.#quiet.touch(patch);
      if (patch.sources !== source) patch.addSource(source);
    }
    mergeFields(patch.fields, fields);
    this.#counts.enqueued++;
    if (this.#pending.size > this.#maxPending) this.#writeOldest();
    if (options?.immediate === true) this.#flushNow(workspaceId);
  }

  /**
   * Drops the workspace's pending patch and removes it from the store: at once, or right
   * after a store call for that workspace that is still in flight. Resolves once the
   * removal has settled; a removal given up is reported to `onError`, not thrown.
   */
  remove(workspaceId: string): Promise<void> {
    assertWorkspaceId(workspaceId);
    const patch = this.#pending.get(workspaceId);
    if (patch !== undefined) this.#take(patch);
    let lane = this.#lanes.get(workspaceId);
    if (lane?.removal !== undefined) {
      lane.next = undefined;
      return lane.removal.promise;
    }
    let resolve!: () => void;
    const promise = new Promise<void>((done) => {
      resolve = done;
    });
    const removal: Removal = { failures: 0, promise, resolve };
    if (lane === undefined) {
      lane = this.#openLane(workspaceId);
    } else {
      // A patch waiting behind the running call, or in back-off, is superseded by the removal.
      lane.next = undefined;
      if (lane.backoff !== undefined) {
        clearTimer(lane.backoff);
        lane.backoff = undefined;
      }
    }
    lane.removal = removal;
    this.#pump(lane);
    return promise;
  }

  /**
   * Writes the workspace's pending patch now, and any patch waiting out a retry back-off.
   * Resolves when its store calls have settled.
   */
  flush(workspaceId: string): Promise<void> {
    const lane = this.#flushNow(workspaceId);
    return lane === undefined ? Promise.resolve() : this.#whenRested(lane);
  }

  /**
   * Writes every pending patch now, in first-enqueue order, and every patch waiting out a
   * retry back-off. Resolves when the writes have settled.
   */
  flushAll(): Promise<void> {
    // Back-offs end first, so a write that fails now waits out its own back-off.
    for (const lane of [...this.#lanes.values()]) this.#endBackoff(lane);
    const patches = [...this.#pending.values()];
    this.#pending.clear();
    this.#quiet.clear();
    this.#disarm();
    for (const patch of patches) this.#write(patch);
    const waits: Promise<void>[] = [];
    for (const lane of this.#lanes.values()) {
      if (lane.busy) waits.push(this.#whenRested(lane));
    }
    return waits.length === 0 ? Promise.resolve() : Promise.all(waits).then(() => undefined);
  }

  /**
   * Flushes everything, then refuses later enqueues (they are counted as `dropped`).
   * Patches that keep failing are tried at once until their attempts run out; store calls
   * still unanswered after `drainTimeoutMs` are reported to `onError`. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#closed = true;
      this.#closing = this.#drain();
    }
    return this.#closing;
  }

  /** Pending workspaces (not events), including patches waiting for a store call. */
  get pendingCount(): number {
    let waiting = 0;
    for (const lane of this.#lanes.values()) if (lane.next !== undefined) waiting++;
    return this.#pending.size + waiting;
  }

  /** A snapshot of the counters. */
  stats(): CoalescerStats {
    return { ...this.#counts, pending: this.pendingCount };
  }

  /** @internal Counts an event the collector could not turn into an action. */
  countInvalid(): void {
    this.#counts.invalid++;
  }

  /** @internal Counts a refresh given up by the collector. */
  countFailed(): void {
    this.#counts.failed++;
  }

  /** @internal The options, for the collector's reports. */
  get options(): ResolvedOptions<F> {
    return this.#options;
  }

  /** @internal Reports something given up, never throwing into the caller. */
  reportError(error: unknown, context: ErrorContext<F>): void {
    this.#options.logger.error(
      { ...context, err: error },
      `event-coalescer: ${context.operation} given up`,
    );
    const onError = this.#options.onError;
    if (onError === undefined) return;
    try {
      onError(error, context);
    } catch (thrown) {
      this.#options.logger.error({ err: thrown }, 'event-coalescer: onError threw');
    }
  }

  // --- deadlines ------------------------------------------------------------------------

  /**
   * Milliseconds since the epoch of this coalescer, as a small integer: V8 keeps small
   * integers unboxed in a patch's fields, and a boxed double costs 16 bytes each.
   */
  #now(): number {
    const elapsed = Date.now() - this.#epoch;
    if (elapsed >= 0 && elapsed < EPOCH_SPAN_MS) return elapsed | 0;
    return this.#rebase();
  }

  /** Moves the epoch to now, shifting pending times with it (at most every 12 days). */
  #rebase(): number {
    const clock = Date.now();
    const shift = clock - this.#epoch;
    this.#epoch = clock;
    for (const patch of this.#pending.values()) {
      patch.firstAt = clampToSpan(patch.firstAt - shift);
      patch.lastAt = clampToSpan(patch.lastAt - shift);
    }
    return 0;
  }

  #nextDeadline(): number {
    const quiet = this.#quiet.oldest;
    if (quiet === undefined) return Infinity;
    const byWindow = quiet.lastAt + this.#windowMs;
    if (this.#maxWaitMs === Infinity) return byWindow;
    const first = this.#pending.values().next().value as PendingPatch;
    return Math.min(byWindow, first.firstAt + this.#maxWaitMs);
  }

  #arm(now: number): void {
    const deadline = this.#nextDeadline();
    if (deadline === Infinity) return;
    this.#timer = setTimer(this.#onTimer, Math.max(0, deadline - now));
  }

  #disarm(): void {
    if (this.#timer === undefined) return;
    clearTimer(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Writes every patch that is due. The timer may fire before the earliest deadline (the
   * patch it was armed for was touched since); then it only re-arms.
   */
  readonly #onTimer = (): void => {
    const now = this.#now();
    // `#timer` stays set while writing, so enqueues made by a store's listeners do not arm.
    for (let patch = this.#quiet.oldest; patch !== undefined; patch = this.#quiet.oldest) {
      if (patch.lastAt + this.#windowMs > now) break;
      this.#take(patch);
      this.#write(patch);
    }
    if (this.#maxWaitMs !== Infinity) {
      for (const patch of this.#pending.values()) {
        if (patch.firstAt + this.#maxWaitMs > now) break;
        this.#take(patch);
        this.#write(patch);
      }
    }
    this.#timer = undefined;
    this.#arm(now);
  };

  // --- writing ------------------------------------------------------------------------------

  /** Takes a patch out of both deadline orders. */
  #take(patch: PendingPatch): void {
    this.#pending.delete(patch.workspaceId);
    this.#quiet.unlink(patch);
  }

  #writeOldest(): void {
    const oldest = this.#pending.values().next().value as PendingPatch;
    this.#take(oldest);
    this.#write(oldest);
  }

  /** Writes the pending patch now and ends any back-off; returns the lane if a call still runs. */
  #flushNow(workspaceId: string): Lane | undefined {
    // The back-off ends first, so a write that fails now waits out its own back-off.
    const waiting = this.#lanes.get(workspaceId);
    if (waiting !== undefined) this.#endBackoff(waiting);
    const patch = this.#pending.get(workspaceId);
    if (patch !== undefined) {
      this.#take(patch);
      this.#write(patch);
    }
    const lane = this.#lanes.get(workspaceId);
    return lane?.busy === true ? lane : undefined;
  }

  /** Writes a due patch, or queues it behind the workspace's running call. */
  #write(patch: PendingPatch): void {
    let lane = this.#lanes.get(patch.workspaceId);
    if (lane === undefined) {
      lane = this.#openLane(patch.workspaceId);
      lane.next = patch;
      this.#pump(lane);
      return;
    }
    if (lane.next === undefined) {
      lane.next = patch;
    } else {
      // The waiting patch is older: the due one's fields win, its sources come after.
      mergeFields(lane.next.fields, patch.fields);
      lane.next.addSourcesOf(patch);
    }
    this.#pump(lane);
  }

  #openLane(workspaceId: string): Lane {
    const lane: Lane = {
      workspaceId,
      busy: false,
      current: undefined,
      removal: undefined,
      failures: 0,
      next: undefined,
      backoff: undefined,
      abandoned: false,
      waiters: undefined,
    };
    this.#lanes.set(workspaceId, lane);
    return lane;
  }

  #endBackoff(lane: Lane): void {
    if (lane.backoff === undefined) return;
    clearTimer(lane.backoff);
    lane.backoff = undefined;
    this.#pump(lane);
  }

  /** Starts the lane's next store call, or lets it rest. */
  #pump(lane: Lane): void {
    if (lane.busy || lane.abandoned) return;
    if (lane.backoff === undefined) {
      if (lane.removal !== undefined) {
        this.#call(lane, 'remove', lane.removal);
        return;
      }
      const patch = lane.next;
      if (patch !== undefined) {
        lane.next = undefined;
        this.#startUpsert(lane, patch);
        return;
      }
      this.#lanes.delete(lane.workspaceId);
    }
    const waiters = lane.waiters;
    if (waiters === undefined) return;
    lane.waiters = undefined;
    for (const resolve of waiters) resolve();
  }

  #whenRested(lane: Lane): Promise<void> {
    return new Promise((resolve) => {
      lane.waiters ??= [];
      lane.waiters.push(resolve);
    });
  }

  /**
   * Runs one store call of the lane. A synchronous answer continues synchronously (so a
   * test with fake timers sees the write at once); a thrown error and a rejection are
   * both failures, and neither escapes. The synchronous path allocates no closure.
   */
  #call(lane: Lane, operation: StoreOperation, item: PendingPatch | Removal): void {
    // Busy during a synchronous call too, so a store listener that re-enters waits its turn.
    lane.busy = true;
    lane.current = item;
    let result: MaybePromise<unknown>;
    try {
      result = this.#invoke(lane.workspaceId, operation, item);
    } catch (error) {
      lane.busy = false;
      this.#callFailed(lane, operation, item, error);
      return;
    }
    if (!isThenable(result)) {
      lane.busy = false;
      this.#callDone(lane, operation, item, result);
      return;
    }
    this.#counts.inFlight++;
    result.then(
      (value) => {
        this.#counts.inFlight--;
        if (lane.abandoned) return;
        lane.busy = false;
        this.#callDone(lane, operation, item, value);
      },
      (error: unknown) => {
        this.#counts.inFlight--;
        if (lane.abandoned) return;
        lane.busy = false;
        this.#callFailed(lane, operation, item, error);
      },
    );
  }

  #invoke(
    workspaceId: string,
    operation: StoreOperation,
    item: PendingPatch | Removal,
  ): MaybePromise<unknown> {
    const store = this.#store;
    if (operation === 'getByWorkspaceId') return store.getByWorkspaceId(workspaceId);
    const timestamps = this.#options.timestamps;
    if (operation === 'remove') {
      return timestamps
        ? store.remove(workspaceId, this.#nextTimestamp())
        : store.remove(workspaceId);
    }
    const patch = item as PendingPatch;
    const fields = patch.fields as Patch<F>;
    return timestamps
      ? store.upsert(workspaceId, fields, patch.sourceLabel(), this.#nextTimestamp())
      : store.upsert(workspaceId, fields, patch.sourceLabel());
  }

  #callDone(
    lane: Lane,
    operation: StoreOperation,
    item: PendingPatch | Removal,
    value: unknown,
  ): void {
    if (operation === 'upsert') {
      this.#counts.flushed++;
      lane.failures = 0;
    } else if (operation === 'remove') {
      this.#counts.removed++;
      lane.removal = undefined;
      (item as Removal).resolve();
    } else if (value !== undefined) {
      this.#call(lane, 'upsert', item);
      return;
    } else {
      // Unknown workspace and nothing to create it from: the host's reconciliation seeds it.
      this.#counts.skipped++;
      this.#options.logger.debug(
        { workspaceId: lane.workspaceId, source: (item as PendingPatch).sourceLabel() },
        'event-coalescer: skipped a patch for an unknown workspace',
      );
    }
    this.#pump(lane);
  }

  #callFailed(
    lane: Lane,
    operation: StoreOperation,
    item: PendingPatch | Removal,
    error: unknown,
  ): void {
    if (operation === 'remove') this.#removalFailed(lane, item as Removal, error);
    else this.#upsertFailed(lane, item as PendingPatch, error, operation);
  }

  #startUpsert(lane: Lane, patch: PendingPatch): void {
    const canCreate = this.#options.canCreate(patch.fields as Patch<F>);
    this.#call(lane, canCreate ? 'upsert' : 'getByWorkspaceId', patch);
  }

  #upsertFailed(
    lane: Lane,
    patch: PendingPatch,
    error: unknown,
    operation: 'upsert' | 'getByWorkspaceId',
  ): void {
    const workspaceId = lane.workspaceId;
    const failures = ++lane.failures;
    if (lane.removal !== undefined) {
      // Removed meanwhile: writing it now would resurrect the workspace.
      lane.failures = 0;
      this.#pump(lane);
      return;
    }
    const source = patch.sourceLabel();
    if (failures >= this.#options.attempts) {
      lane.failures = 0;
      this.#counts.failed++;
      this.reportError(error, { operation, workspaceId, source, fields: patch.fields as Patch<F> });
      this.#pump(lane);
      return;
    }
    // Merge the failed patch back under whatever is newer, so nothing lands out of order.
    const newer = lane.next ?? this.#pending.get(workspaceId);
    if (newer !== undefined) {
      if (newer === lane.next) lane.next = undefined;
      else this.#take(newer);
      mergeFields(patch.fields, newer.fields);
      patch.addSourcesOf(newer);
    }
    lane.next = patch;
    this.#retryLater(lane, failures, error, { operation, workspaceId, source });
  }

  #removalFailed(lane: Lane, removal: Removal, error: unknown): void {
    const workspaceId = lane.workspaceId;
    removal.failures++;
    if (removal.failures >= this.#options.attempts) {
      this.#counts.failed++;
      lane.removal = undefined;
      this.reportError(error, { operation: 'remove', workspaceId });
      removal.resolve();
      this.#pump(lane);
      return;
    }
    this.#retryLater(lane, removal.failures, error, { operation: 'remove', workspaceId });
  }

  #retryLater(lane: Lane, failures: number, error: unknown, context: object): void {
    this.#counts.retried++;
    const delayMs = this.#options.retryDelayMs * 2 ** (failures - 1);
    this.#options.logger.warn(
      { ...context, err: error, attempt: failures, delayMs },
      'event-coalescer: store call failed; retrying',
    );
    lane.backoff = setTimer(() => {
      lane.backoff = undefined;
      this.#pump(lane);
    }, delayMs);
    this.#pump(lane);
  }

  #nextTimestamp(): number {
    const now = Date.now();
    this.#lastTimestamp = now > this.#lastTimestamp ? now : this.#lastTimestamp + 1;
    return this.#lastTimestamp;
  }

  // --- shutdown -----------------------------------------------------------------------------

  #drop(workspaceId: string, source: string): void {
    this.#counts.dropped++;
    if (this.#warnedClosed) return;
    this.#warnedClosed = true;
    this.#options.logger.warn(
      { workspaceId, source },
      'event-coalescer: enqueue after close(); dropping this and later patches',
    );
  }

  async #drain(): Promise<void> {
    let timedOut = false;
    let deadline: TimerHandle | undefined;
    const timeout = new Promise<void>((resolve) => {
      if (this.#options.drainTimeoutMs === Infinity) return;
      deadline = setTimer(() => {
        timedOut = true;
        resolve();
      }, this.#options.drainTimeoutMs);
    });
    // Each round ends every back-off, so patches that keep failing run out of attempts.
    while (!timedOut && (this.#pending.size > 0 || this.#lanes.size > 0)) {
      await Promise.race([this.flushAll(), timeout]);
    }
    if (deadline !== undefined) clearTimer(deadline);
    this.#disarm();
    if (timedOut) this.#abandonLanes();
  }

  /** Reports what a hung store never finished, so that nothing vanishes silently. */
  #abandonLanes(): void {
    const error = new Error(
      `event-coalescer: the store did not settle within drainTimeoutMs (${this.#options.drainTimeoutMs} ms)`,
    );
    for (const lane of [...this.#lanes.values()]) {
      lane.abandoned = true;
      if (lane.backoff !== undefined) clearTimer(lane.backoff);
      this.#lanes.delete(lane.workspaceId);
      const workspaceId = lane.workspaceId;
      // The running call is also the lane's removal or next patch when it is being retried.
      const undrained = new Set([lane.busy ? lane.current : undefined, lane.removal, lane.next]);
      for (const item of undrained) {
        if (item === undefined) continue;
        this.#counts.failed++;
        if (item instanceof PendingPatch) {
          const fields = item.fields as Patch<F>;
          this.reportError(error, {
            operation: 'upsert',
            workspaceId,
            source: item.sourceLabel(),
            fields,
          });
        } else {
          this.reportError(error, { operation: 'remove', workspaceId });
          item.resolve();
        }
      }
      for (const resolve of lane.waiters ?? []) resolve();
    }
  }
}
