/**
 * `EventCoalescer`, the public face: it validates what callers give, keeps the counters and
 * joins the two mechanisms — deadlines (when a patch is due) and write lanes (how it is written).
 */

import { newCounts } from './counts.js';
import { Deadlines } from './deadlines.js';
import { assertKnownKeys, assertWorkspaceId, expected, numberOption } from './describe.js';
import { EventCoalescerError } from './errors.js';
import { Guard } from './guard.js';
import { isPlainObject, type StagedFields, stageFields } from './merge.js';
import { interruptOpenMerge } from './open-merge.js';
import { assertStore, type ResolvedOptions, resolveOptions } from './options.js';
import { PendingMarks } from './pending-marks.js';
import { PendingPatch } from './pending-patch.js';
import { Receipts, type SettledOutcome } from './receipts.js';
import { clearTimer, setTimer, type Timer } from './timers.js';
import { dropChannel } from './tracing.js';
import type {
  CoalescerOptions,
  CoalescerStats,
  EnqueueOptions,
  ErrorContext,
  Fields,
  Patch,
  SnapshotStore,
} from './types.js';
import { WriteBatch } from './write-batch.js';
import { WriteLanes } from './write-lanes.js';

const getPrototypeOf = Object.getPrototypeOf;
const objectPrototype = Object.prototype;
/** A key no object has (see {@link isLiteralObject}). */
const SHAPE_PROBE = Symbol('event-coalescer.shape-probe');

/**
 * Whether the prototype is `Object.prototype`, as the common case is checked fast: loading a
 * key no object has makes the engine check the object's shape, after which it knows the
 * prototype, and `getPrototypeOf` costs nothing instead of a call (about 20 ns a patch in V8).
 * False also when the object answers for that key, or a proxy in its prototype chain throws:
 * then the full check decides.
 */
function isLiteralObject(fields: object): boolean {
  try {
    return (
      (fields as Record<symbol, unknown>)[SHAPE_PROBE] === undefined &&
      getPrototypeOf(fields) === objectPrototype
    );
  } catch {
    return false;
  }
}

const ENQUEUE_OPTIONS = ['immediate', 'windowMs', 'maxWaitMs'] as const;

/**
 * `enqueue`'s options, checked and read once each (a getter may answer differently twice):
 * `'immediate'` or `{ immediate: 'yes' }` is a mistake, not a no.
 */
function readEnqueueOptions(
  options: EnqueueOptions,
  windowMs: number,
  maxWaitMs: number,
): Required<EnqueueOptions> {
  if (!isPlainObject(options)) {
    throw new TypeError(expected('options', 'an object like { immediate: true }', options));
  }
  assertKnownKeys('options', options, ENQUEUE_OPTIONS);
  const immediate: unknown = options.immediate;
  if (immediate !== undefined && typeof immediate !== 'boolean') {
    throw new TypeError(expected('options.immediate', 'a boolean', immediate));
  }
  return {
    immediate: immediate === true,
    windowMs: numberOption('options.windowMs', options.windowMs, windowMs, 'duration'),
    maxWaitMs: numberOption('options.maxWaitMs', options.maxWaitMs, maxWaitMs, 'bound'),
  };
}

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
  readonly #options: ResolvedOptions<F>;
  readonly #maxPending: number;
  readonly #maxWaitMs: number;
  readonly #leading: boolean;
  readonly #guard: Guard<F>;
  readonly #deadlines: Deadlines<F>;
  readonly #lanes: WriteLanes<F>;
  /** With a store that keeps marks for crash recovery. */
  readonly #marks: PendingMarks | undefined;
  /** With a store that has `upsertMany`. */
  readonly #batch: WriteBatch<F> | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  #warnedClosed = false;
  readonly #counts = newCounts();
  readonly #receipts = new Receipts<F>();

  constructor(store: SnapshotStore<F>, windowMsOrOptions?: number | CoalescerOptions<F>) {
    assertStore<F>(store);
    const options = resolveOptions<F>(
      typeof windowMsOrOptions === 'number' ? { windowMs: windowMsOrOptions } : windowMsOrOptions,
    );
    this.#options = options;
    this.#maxPending = options.maxPending;
    this.#maxWaitMs = options.maxWaitMs;
    this.#leading = options.leading;
    this.#guard = new Guard(options.logger, options.onError, this.#counts);
    const marks =
      typeof store.markPending === 'function'
        ? new PendingMarks(store as SnapshotStore<object>, options.logger)
        : undefined;
    this.#marks = marks;
    const batch =
      typeof store.upsertMany === 'function'
        ? new WriteBatch<F>(store, options.batchSize)
        : undefined;
    this.#batch = batch;
    this.#lanes = new WriteLanes<F>({
      store,
      rule: options.retry,
      canCreate: options.canCreate,
      timestamps: options.timestamps,
      callTimeoutMs: options.callTimeoutMs,
      maxConcurrentWrites: options.maxConcurrentWrites,
      batch,
      maxBacklog: options.maxBacklog,
      guard: this.#guard,
      counts: this.#counts,
      takePending: (workspaceId) => this.#deadlines.take(workspaceId),
      receipts: this.#receipts,
      beforeCall: marks && (() => marks.flush()),
      callEnded:
        marks &&
        ((workspaceId, skipped, waiting) => {
          // The call may have cleared the mark: what the workspace still owes is marked again.
          if (waiting || this.#deadlines.get(workspaceId) !== undefined) marks.mark(workspaceId);
          else if (skipped) marks.unmark(workspaceId);
        }),
    });
    this.#deadlines = new Deadlines<F>(
      options.windowMs,
      options.maxWaitMs,
      options.leading,
      (patch) => this.#write(patch),
      batch && ((handOver) => batch.wave(handOver)),
    );
  }

  /**
   * Merges `fields` into the workspace's pending patch and (re)starts its window.
   * Later values win; `undefined` never erases a value; `null` is written.
   *
   * `options.windowMs` and `options.maxWaitMs` override the coalescer's for this enqueue: the
   * patch is due at the earliest deadline any of its enqueues demands, each window counted
   * from the last enqueue that asked for it, each `maxWaitMs` from the enqueue that set it.
   */
  enqueue(workspaceId: string, fields: Patch<F>, source: string, options?: EnqueueOptions): void {
    assertWorkspaceId(workspaceId);
    if (typeof fields !== 'object' || fields === null || !isLiteralObject(fields)) {
      if (!isPlainObject(fields)) throw new TypeError(expected('fields', 'a plain object', fields));
    }
    if (typeof source !== 'string') throw new TypeError(expected('source', 'a string', source));
    if (this.#closed) {
      this.#drop(workspaceId, source);
      return;
    }
    const deadlines = this.#deadlines;
    // Read first: a getter that throws is the caller's error, with nothing merged or counted.
    const read =
      options === undefined
        ? undefined
        : readEnqueueOptions(options, this.#options.windowMs, this.#options.maxWaitMs);
    // Without options, and while no patch has windows of its own, the fields merge into the
    // pending patch (a new one, scheduled once they have) as they are read, and the quiet
    // queue's O(1) path serves the enqueue.
    if (read === undefined && deadlines.timedCount === 0) {
      const now = deadlines.touchTime();
      const pending = deadlines.get(workspaceId);
      const patch = pending ?? new PendingPatch<F>(workspaceId, now, source);
      const staged = patch.mergeOnePass(fields);
      if (staged !== undefined) this.#mergeStaged(workspaceId, staged, source, undefined);
      else if (pending !== undefined) {
        deadlines.touched(patch, now, source);
        // What `#accepted` does for a patch already pending without windows of its own.
        this.#counts.enqueued++;
        if (now - patch.firstAt >= this.#maxWaitMs) this.#writePending(workspaceId);
      } else {
        const leadingEdge = this.#leading && this.#isQuiet(workspaceId, undefined);
        deadlines.schedule(patch, now);
        this.#accepted(patch, true, leadingEdge, false);
      }
    } else this.#mergeStaged(workspaceId, stageFields(fields), source, read);
  }

  /**
   * Merges fields read before any was merged (options, a wide patch, or a getter that called a
   * coalescer); `touchTimed` decides the windows.
   */
  #mergeStaged(
    workspaceId: string,
    staged: StagedFields,
    source: string,
    read: Required<EnqueueOptions> | undefined,
  ): void {
    interruptOpenMerge();
    // A getter closed the coalescer: the enqueue comes after close().
    if (this.#closed) {
      this.#drop(workspaceId, source);
      return;
    }
    const deadlines = this.#deadlines;
    const leadingEdge = this.#leading && this.#isQuiet(workspaceId, read?.windowMs);
    const pendingBefore = deadlines.size;
    const patch =
      read === undefined && deadlines.timedCount === 0
        ? deadlines.touch(workspaceId, source)
        : deadlines.touchTimed(
            workspaceId,
            source,
            read?.windowMs ?? this.#options.windowMs,
            read?.maxWaitMs ?? this.#options.maxWaitMs,
          );
    patch.merge(staged);
    this.#accepted(patch, deadlines.size > pendingBefore, leadingEdge, read?.immediate === true);
  }

  /** What follows a merge: counting, marking, the `maxPending` bound and writes due now. */
  #accepted(
    patch: PendingPatch<F>,
    created: boolean,
    leadingEdge: boolean,
    immediate: boolean,
  ): void {
    const workspaceId = patch.workspaceId;
    this.#counts.enqueued++;
    // A new pending patch: marked once, whatever follows it, and kept within `maxPending`.
    if (created) {
      this.#marks?.mark(workspaceId);
      if (this.#deadlines.size > this.#maxPending) this.#writeOldest();
    }
    if (immediate) this.#flushNow(workspaceId);
    // Written now: the first event after a quiet spell (leading edge), or a patch whose
    // maxWaitMs has passed while the event loop was too busy to run the timer.
    else if (leadingEdge || this.#deadlines.isOverdue(patch)) this.#writePending(workspaceId);
  }

  /** Nothing pending for the workspace, and no write of it started or in flight lately. */
  #isQuiet(workspaceId: string, windowMs: number | undefined): boolean {
    return this.#deadlines.isQuiet(workspaceId, windowMs) && !this.#lanes.has(workspaceId);
  }

  /**
   * Drops the workspace's pending patch and removes it from the store: at once, or right
   * after a store call for that workspace that is still in flight. Resolves once the
   * removal has settled; a removal given up is reported to `onError`, not thrown.
   */
  remove(workspaceId: string): Promise<void> {
    assertWorkspaceId(workspaceId);
    interruptOpenMerge();
    const dropped = this.#deadlines.take(workspaceId);
    if (dropped !== undefined) this.#receipts.removed(dropped);
    return this.#lanes.remove(workspaceId);
  }

  /**
   * Resolves once everything enqueued for the workspace before this call has landed
   * (`'landed'`), or was not written because the store did not know the workspace and
   * `canCreate` refused (`'skipped'`). Rejects with the error reported to `onError` if any of
   * it was given up, with `EC_REMOVED` if the workspace was removed first, and with
   * `EC_CLOSED` when called after `close()` with nothing left to land. It starts no write:
   * `flush` first to hurry it.
   *
   * @example
   * coalescer.enqueue(id, { title }, 'api:rename');
   * await coalescer.settled(id); // the snapshot holds the new title
   */
  settled(workspaceId: string): Promise<SettledOutcome> {
    assertWorkspaceId(workspaceId);
    interruptOpenMerge();
    const patches = this.#outstanding(workspaceId);
    if (patches.length === 0 && this.#closed) {
      return Promise.reject(
        new EventCoalescerError('EC_CLOSED', `settled(${workspaceId}) after close()`),
      );
    }
    return this.#receipts.wait(patches);
  }

  /**
   * The fields accepted for the workspace and not yet landed — in flight, waiting behind a
   * call or a back-off, and pending — merged in that order, as a new object; `undefined` when
   * there are none. Read the store and spread this over its fields to read your own writes.
   */
  peek(workspaceId: string): Patch<F> | undefined {
    assertWorkspaceId(workspaceId);
    interruptOpenMerge();
    const patches = this.#outstanding(workspaceId);
    if (patches.length === 0) return undefined;
    const fields: Record<string, unknown> = {};
    for (const patch of patches) patch.mergeInto(fields);
    return fields as Patch<F>;
  }

  /** Whether the workspace has fields accepted and not yet landed (see {@link peek}). */
  isPending(workspaceId: string): boolean {
    assertWorkspaceId(workspaceId);
    interruptOpenMerge();
    return this.#outstanding(workspaceId).length > 0;
  }

  /** What holds the workspace's fields not yet landed, oldest first. */
  #outstanding(workspaceId: string): PendingPatch<F>[] {
    const patches = this.#lanes.outstanding(workspaceId);
    const pending = this.#deadlines.get(workspaceId);
    if (pending !== undefined) patches.push(pending);
    return patches;
  }

  /**
   * Writes the workspace's pending patch now, and any patch waiting out a retry back-off.
   * Resolves when its store calls have settled.
   */
  flush(workspaceId: string): Promise<void> {
    assertWorkspaceId(workspaceId);
    interruptOpenMerge();
    this.#flushNow(workspaceId);
    return this.#lanes.whenRested(workspaceId) ?? Promise.resolve();
  }

  /**
   * Writes every pending patch now, in first-enqueue order, and every patch waiting out a
   * retry back-off. Resolves when the writes have settled.
   */
  flushAll(): Promise<void> {
    interruptOpenMerge();
    const flush = (): void => {
      // Back-offs end first, so a write that fails now waits out its own back-off.
      this.#lanes.endAllBackoffs();
      for (const patch of this.#deadlines.takeAll()) this.#write(patch);
    };
    if (this.#batch === undefined) flush();
    else this.#batch.wave(flush);
    return this.#lanes.whenAllRested();
  }

  /**
   * Flushes everything, then refuses later enqueues (they are counted as `dropped`).
   * Patches that keep failing are tried at once until their attempts run out; store calls
   * still unanswered after `drainTimeoutMs` are reported to `onError`. Idempotent.
   */
  close(): Promise<void> {
    interruptOpenMerge();
    if (this.#closing === undefined) {
      this.#closed = true;
      this.#closing = this.#drain();
    }
    return this.#closing;
  }

  /** Workspaces (not events) whose patch waits for its window; at most `maxPending`. */
  get pendingCount(): number {
    return this.#deadlines.size;
  }

  /** A snapshot of the counters. */
  stats(): CoalescerStats {
    const lanes = this.#lanes;
    return {
      ...this.#counts,
      pending: this.#deadlines.size,
      waiting: lanes.waitingCount,
      backlog: lanes.backlogCount,
      storeAvailable: lanes.storeAvailable,
    };
  }

  /** @internal Counts an event the collector could not turn into an action. */
  countInvalid(): void {
    this.#counts.invalid++;
  }

  /** @internal The options, for the collector's reports. */
  get options(): ResolvedOptions<F> {
    return this.#options;
  }

  /** @internal Reports an event the collector could not use, never throwing into the caller. */
  reportError(error: unknown, context: ErrorContext<F>): void {
    this.#guard.report(error, context);
  }

  /** @internal Gives up something of the collector's (a refresh): counted and reported once. */
  giveUp(error: unknown, context: ErrorContext<F>): void {
    this.#guard.giveUp(error, context);
  }

  /** Hands a due patch to its lane, remembering when its write started (leading edge). */
  #write(patch: PendingPatch<F>): void {
    this.#deadlines.writeStarted(patch.workspaceId);
    this.#lanes.write(patch);
  }

  #writeOldest(): void {
    const oldest = this.#deadlines.takeOldest();
    if (oldest !== undefined) this.#write(oldest);
  }

  #writePending(workspaceId: string): void {
    const patch = this.#deadlines.take(workspaceId);
    if (patch !== undefined) this.#write(patch);
  }

  /** Writes the pending patch now and ends any back-off. */
  #flushNow(workspaceId: string): void {
    // The back-off ends first, so a write that fails now waits out its own back-off.
    this.#lanes.endBackoff(workspaceId);
    this.#writePending(workspaceId);
  }

  #drop(workspaceId: string, source: string): void {
    this.#counts.dropped++;
    if (dropChannel.hasSubscribers) dropChannel.publish({ workspaceId, source });
    if (this.#warnedClosed) return;
    this.#warnedClosed = true;
    this.#guard.logger.warn(
      { workspaceId, source },
      'event-coalescer: enqueue after close(); dropping this and later patches',
    );
  }

  /**
   * Writes what is pending and waits for every lane to land, retries included, at the retry
   * rule's pace. Past `drainTimeoutMs`, what is left is given up and reported, and any call
   * still out has its signal aborted.
   */
  async #drain(): Promise<void> {
    const drainTimeoutMs = this.#options.drainTimeoutMs;
    let deadline: Timer | undefined;
    const timeout = new Promise<void>((resolve) => {
      if (drainTimeoutMs !== Infinity) deadline = setTimer(resolve, drainTimeoutMs);
    });
    void this.flushAll();
    await Promise.race([this.#lanes.whenIdle(), timeout]);
    if (deadline !== undefined) clearTimer(deadline);
    this.#deadlines.stop();
    if (this.#lanes.size > 0) {
      this.#lanes.abandonAll(
        new EventCoalescerError(
          'EC_DRAIN_TIMEOUT',
          `close() gave up what the store had not landed within drainTimeoutMs (${drainTimeoutMs} ms)`,
        ),
      );
    }
  }
}
