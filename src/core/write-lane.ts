/**
 * One workspace's write lane: a state machine that owns what the workspace owes the store (a
 * removal, a merged patch) and moves it through one store call at a time.
 *
 *   idle ──write/remove──▶ ready ──slot──▶ calling ──landed──▶ idle (or ready: more to do)
 *                            ▲                │
 *                            │                ├─failed, retryable──▶ backoff ──timer──▶ ready
 *                            │                ├─failed, store away─▶ held ──probe/back──┘
 *                            │                └─given up (reported once)──▶ idle or ready
 *
 * Which lane gets a slot, and when the store counts as away, is the lanes' business (see
 * `WriteLanes`); a lane only asks.
 */
import { nextTimestamp } from './clock.js';
import type { Counts } from './counts.js';
import { EventCoalescerError, errorCode } from './errors.js';
import { adopt, attemptOne, type Guard, Thrown, whenSettled } from './guard.js';
import type { PendingPatch } from './pending-patch.js';
import type { Receipts } from './receipts.js';
import { backoffDelay, giveUpReason, type RetryRule } from './retry-rule.js';
import { CallSignal, invokeStore, newRemoval, type Removal, type StoreCall } from './store-call.js';
import { clearTimer, monotonicNow, setTimer, type Timer } from './timers.js';
import { type StoreCallTrace, storeCallsTraced, traceStart } from './tracing.js';
import type { ErrorContext, Patch, RetryContext, SnapshotStore } from './types.js';
import { Pending, Rejected, type WriteBatch } from './write-batch.js';

export type LaneState = 'idle' | 'ready' | 'calling' | 'backoff' | 'held';

/** What a lane's try can fail at: a store call, or the `canCreate` before it. */
type LaneOperation = Exclude<RetryContext['operation'], 'refresh'>;

/** What a store call's outcome says about the store's health. */
export type Verdict = 'up' | 'down' | 'neutral';

/** What every lane of a coalescer works with. */
export interface LaneSettings<F extends object> {
  readonly store: SnapshotStore<F>;
  readonly rule: RetryRule;
  readonly canCreate: (fields: Patch<F>) => boolean;
  readonly timestamps: boolean;
  readonly callTimeoutMs: number;
  readonly guard: Guard<F>;
  readonly counts: Counts;
  /** Takes the workspace's pending patch, newer than a failed one, to merge it under. */
  readonly takePending: (workspaceId: string) => PendingPatch<F> | undefined;
  /** Who waits for which patch (see `Receipts`). */
  readonly receipts: Receipts<F>;
  /** Before each store call: marks this turn made go first (see `PendingMarks`). */
  readonly beforeCall: (() => void) | undefined;
  /**
   * After each store call: `skipped` when the patch was not written (unknown workspace),
   * `waiting` when the lane still holds a patch to write.
   */
  readonly callEnded:
    | ((workspaceId: string, skipped: boolean, waiting: boolean) => void)
    | undefined;
  /** With a store that has `upsertMany`: upserts made during a wave go out together. */
  readonly batch: WriteBatch<F> | undefined;
}

/** What the lanes give each lane: the settings, and the turns. */
export interface LaneHost<F extends object> {
  readonly settings: LaneSettings<F>;
  /** The lane has a call to make: it is started now, queued for a slot, or held. */
  admit(lane: WriteLane<F>): void;
  /** The lane's call ended: its slot is free. */
  released(lane: WriteLane<F>): void;
  /** What a call's outcome says of the store. */
  observed(lane: WriteLane<F>, verdict: Verdict, error?: unknown): void;
  /** A failed write waits: `true` when the store is away and the lane must be held. */
  waits(lane: WriteLane<F>): boolean;
  /** The lane has nothing left to do, or landed what it retried: out of the backlog. */
  recovered(lane: WriteLane<F>): void;
  /** The lane is idle and may be forgotten. */
  rested(lane: WriteLane<F>): void;
}

/** A call whose answer the lane waits for. */
interface InFlight<F extends object> {
  readonly call: StoreCall<F>;
  readonly signal: CallSignal;
  readonly trace: StoreCallTrace | undefined;
  timeout: Timer | undefined;
}

export class WriteLane<F extends object> {
  readonly workspaceId: string;
  readonly #host: LaneHost<F>;
  readonly #settings: LaneSettings<F>;
  #state: LaneState = 'idle';
  /** A removal runs before the patch queued behind it, and supersedes it. */
  #removal: Removal | undefined;
  /** The merged patch the next upsert writes. */
  #next: PendingPatch<F> | undefined;
  /** The patch of the call running now, if it writes one. */
  #writing: PendingPatch<F> | undefined;
  #inFlight: InFlight<F> | undefined;
  /** Failed tries of the work at the head (the removal, else the patch). */
  #failures = 0;
  /** Failures before the last `retryNow`: the back-off counts from there. */
  #paceFrom = 0;
  /** When the work at the head was first tried or held (`performance.now()`); NaN: not yet. */
  #firstTriedAt = Number.NaN;
  #backoff: Timer | undefined;
  /** `flush` callers, told when the lane rests (no call running or about to run). */
  #waiters: Array<() => void> | undefined;

  constructor(workspaceId: string, host: LaneHost<F>) {
    this.workspaceId = workspaceId;
    this.#host = host;
    this.#settings = host.settings;
  }

  get state(): LaneState {
    return this.#state;
  }

  /** A due patch waits behind the running call, its back-off or the store's return. */
  get hasWaitingPatch(): boolean {
    return this.#next !== undefined;
  }

  /** The patches holding fields not yet landed, oldest first: in flight, then waiting. */
  outstanding(): PendingPatch<F>[] {
    const patches: PendingPatch<F>[] = [];
    if (this.#writing !== undefined) patches.push(this.#writing);
    if (this.#next !== undefined) patches.push(this.#next);
    return patches;
  }

  /** Takes a due patch: merged into what waits, written when the lane's turn comes. */
  write(patch: PendingPatch<F>): void {
    if (this.#next === undefined) this.#next = patch;
    else {
      // The waiting patch is older: the due one's fields win, its sources come after.
      this.#next.absorb(patch);
      this.#settings.receipts.absorbed(this.#next, patch);
    }
    if (this.#state === 'idle') this.#host.admit(this);
  }

  /**
   * Removes the workspace: at once, or right after the running call. A patch waiting behind
   * it, in back-off or held, is superseded. Resolves once the removal settled.
   */
  remove(): Promise<void> {
    if (this.#next !== undefined) this.#settings.receipts.removed(this.#next);
    this.#next = undefined;
    if (this.#removal !== undefined) return this.#removal.promise;
    const removal = newRemoval();
    this.#removal = removal;
    if (this.#state === 'backoff' || this.#state === 'idle') {
      // What failed before is superseded: the removal starts with a clean slate.
      this.#clearBackoff();
      this.#resetFailures();
      this.#host.recovered(this);
      this.#host.admit(this);
    } else if (this.#state === 'held') {
      // Still waiting for the store, but with the tries of the removal, not of the patch.
      this.#failures = 0;
      this.#paceFrom = 0;
    }
    return removal.promise;
  }

  /**
   * Ends the back-off, so what waits is tried now (`flush`, `flushAll`, `close`); a later
   * failure waits from the first delay again, so a store back during a drain is soon seen.
   */
  retryNow(): void {
    this.#paceFrom = this.#failures;
    if (this.#state !== 'backoff') return;
    this.#clearBackoff();
    this.#host.admit(this);
  }

  /** Called by the lanes: the lane waits for a slot, or for the store's return. */
  queue(state: 'ready' | 'held'): void {
    this.#state = state;
    if (state !== 'held') return;
    // A write held before its first try counts its elapsed time from here.
    if (Number.isNaN(this.#firstTriedAt)) this.#firstTriedAt = monotonicNow();
    this.#releaseWaiters();
  }

  /**
   * Called by the lanes for each held lane when a probe failed: with a bound set, a probe
   * that failed counts as a failed try of every held write, so that `attempts` and
   * `maxElapsedMs` mean while the store is away what they mean while it answers.
   */
  missedProbe(error: unknown): void {
    if (this.#state !== 'held') return;
    const rule = this.#settings.rule;
    const failures = ++this.#failures;
    if (failures < rule.attempts && monotonicNow() - this.#firstTriedAt < rule.maxElapsedMs) {
      return;
    }
    this.#resetFailures();
    const removal = this.#removal;
    if (removal !== undefined) {
      this.#removal = undefined;
      this.#giveUp(error, { operation: 'remove', workspaceId: this.workspaceId }, removal);
    } else if (this.#next !== undefined) {
      const patch = this.#next;
      this.#next = undefined;
      this.#giveUpPatch(error, 'upsert', patch);
    }
    this.#host.recovered(this);
    if (this.#removal === undefined && this.#next === undefined) this.#settle();
  }

  /** Called by the lanes when the lane's turn comes: makes its next store call. */
  start(): void {
    this.#settings.beforeCall?.();
    const removal = this.#removal;
    if (removal !== undefined) {
      this.#begin();
      this.#invoke({ operation: 'remove', removal });
      return;
    }
    const patch = this.#next;
    if (patch === undefined) {
      this.#settle();
      return;
    }
    this.#next = undefined;
    this.#writing = patch;
    this.#begin();
    const canCreate = attemptOne(this.#settings.canCreate, patch.patch);
    if (canCreate instanceof Thrown) {
      // A failed try of this write, retried and reported like a store failure.
      this.#failed('canCreate', canCreate.error, false);
      return;
    }
    this.#invoke({ operation: canCreate ? 'upsert' : 'getByWorkspaceId', patch });
  }

  /**
   * Gives up everything the lane owes, each once, with `error`: a call in flight is aborted and
   * its late answer ignored. For `close()`'s drain timeout and `maxBacklog`.
   */
  abandon(error: unknown): void {
    const flight = this.#inFlight;
    if (flight !== undefined) this.#stopWaiting(flight, error);
    this.#clearBackoff();
    const wasCalling = this.#state === 'calling' || flight !== undefined;
    const removal = this.#removal;
    const writing = this.#writing;
    const next = this.#next;
    this.#removal = undefined;
    this.#writing = undefined;
    this.#next = undefined;
    if (removal !== undefined)
      this.#giveUp(error, { operation: 'remove', workspaceId: this.workspaceId }, removal);
    if (writing !== undefined) this.#giveUpPatch(error, 'upsert', writing);
    if (next !== undefined) this.#giveUpPatch(error, 'upsert', next);
    this.#resetFailures();
    if (wasCalling) this.#host.released(this);
    this.#host.recovered(this);
    this.#settle();
  }

  /** Resolves when the lane next rests; `undefined` when no call runs or waits for a slot. */
  whenRested(): Promise<void> | undefined {
    if (this.#state !== 'calling' && this.#state !== 'ready') return undefined;
    return new Promise((resolve) => {
      this.#waiters ??= [];
      this.#waiters.push(resolve);
    });
  }

  #begin(): void {
    this.#state = 'calling';
  }

  /**
   * Marks when the work at the head was first tried. Read only once a call goes async or
   * fails: a synchronous call that lands, the common case, pays for no clock read.
   */
  #markFirstTry(): number {
    const now = monotonicNow();
    if (Number.isNaN(this.#firstTriedAt)) this.#firstTriedAt = now;
    return now;
  }

  /**
   * Runs one store call. A synchronous answer continues synchronously (a test with fake timers
   * sees the write at once); a thenable is adopted as `await` would, settling once. A throw
   * and a rejection are both failures, and neither escapes.
   */
  #invoke(call: StoreCall<F>): void {
    const signal = new CallSignal();
    // Traced only while an APM listens: then start, end, asyncStart, asyncEnd and error.
    const trace = storeCallsTraced()
      ? traceStart(
          call.operation,
          this.workspaceId,
          call.operation === 'remove' ? undefined : call.patch,
          this.#failures + 1,
        )
      : undefined;
    const batch = this.#settings.batch;
    if (batch?.open === true && call.operation === 'upsert') {
      const patch = call.patch;
      const item = {
        workspaceId: this.workspaceId,
        fields: patch.patch,
        source: patch.sourceLabel(),
        timestamp: this.#settings.timestamps ? nextTimestamp() : undefined,
        call: signal,
      };
      const join = () => batch.add(item, (answer) => this.#answered(call, answer, signal, trace));
      if (trace === undefined) join();
      else trace.run(join);
      return;
    }
    const answer =
      trace === undefined
        ? invokeStore(
            this.#settings.store,
            this.workspaceId,
            call,
            this.#settings.timestamps,
            signal,
          )
        : trace.run(() =>
            invokeStore(
              this.#settings.store,
              this.workspaceId,
              call,
              this.#settings.timestamps,
              signal,
            ),
          );
    this.#answered(call, answer, signal, trace);
  }

  /** What the store answered a call: now, as a promise, or as a `Thrown` or a `Rejected`. */
  #answered(
    call: StoreCall<F>,
    answer: unknown,
    signal: CallSignal,
    trace: StoreCallTrace | undefined,
  ): void {
    // Most stores answer with a promise, and a store in memory with nothing: done now.
    if (answer === undefined) {
      trace?.answered(answer, false);
      this.#done(call, answer);
      return;
    }
    if (answer instanceof Thrown) {
      trace?.failed(answer.error, false);
      this.#failed(call.operation, answer.error, true);
      return;
    }
    if (answer instanceof Rejected) {
      trace?.failed(answer.error, false);
      this.#failed(call.operation, answer.error, false);
      return;
    }
    const later = answer instanceof Pending ? answer : adopt(answer);
    if (later === undefined) {
      trace?.answered(answer, false);
      this.#done(call, answer);
      return;
    }
    trace?.pending();
    this.#markFirstTry();
    const flight: InFlight<F> = { call, signal, trace, timeout: undefined };
    this.#inFlight = flight;
    this.#settings.counts.inFlight++;
    if (this.#settings.callTimeoutMs !== Infinity) {
      flight.timeout = setTimer(() => this.#timedOut(flight), this.#settings.callTimeoutMs);
    }
    const landed = (value: unknown): void => {
      if (this.#inFlight !== flight) return;
      this.#stopWaiting(flight, undefined);
      trace?.answered(value, true);
      this.#done(call, value);
    };
    const failed = (error: unknown): void => {
      if (this.#inFlight !== flight) return;
      this.#stopWaiting(flight, undefined);
      trace?.failed(error, true);
      this.#failed(call.operation, error, false);
    };
    if (later instanceof Pending) later.listen(landed, failed);
    else whenSettled(later, landed, failed);
  }

  /** No answer within `callTimeoutMs`: the call counts as failed, and its signal is aborted. */
  #timedOut(flight: InFlight<F>): void {
    flight.timeout = undefined;
    if (this.#inFlight !== flight) return;
    const error = new EventCoalescerError(
      'EC_CALL_TIMEOUT',
      `${flight.call.operation} of workspace ${this.workspaceId} unanswered after callTimeoutMs (${this.#settings.callTimeoutMs} ms)`,
    );
    this.#stopWaiting(flight, error);
    flight.trace?.failed(error, true);
    this.#failed(flight.call.operation, error, false);
  }

  /** The lane no longer waits for the call: a later answer is ignored. */
  #stopWaiting(flight: InFlight<F>, abortReason: unknown): void {
    this.#inFlight = undefined;
    this.#settings.counts.inFlight--;
    if (flight.timeout !== undefined) clearTimer(flight.timeout);
    if (abortReason !== undefined) flight.signal.abort(abortReason);
  }

  #done(call: StoreCall<F>, value: unknown): void {
    const host = this.#host;
    host.observed(this, 'up');
    switch (call.operation) {
      case 'upsert':
        this.#settings.counts.flushed++;
        this.#writing = undefined;
        this.#settings.receipts.landed(call.patch);
        break;
      case 'remove':
        this.#settings.counts.removed++;
        this.#removal = undefined;
        call.removal.done();
        break;
      case 'getByWorkspaceId':
        if (value !== undefined && value !== null) {
          this.#invoke({ operation: 'upsert', patch: call.patch });
          return;
        }
        // Unknown workspace and nothing to create it from: the host's reconciliation seeds it.
        this.#writing = undefined;
        this.#settings.receipts.landed(call.patch, true);
        this.#skipped(call.patch);
        this.#resetFailures();
        host.recovered(this);
        this.#afterCall(true);
        return;
    }
    this.#resetFailures();
    host.recovered(this);
    this.#afterCall();
  }

  /**
   * Counts a write skipped by the unknown-workspace rule. The first one of a coalescer is a
   * warning that says how to change the rule (a fresh store otherwise stays empty without a
   * word); later ones are debug lines.
   */
  #skipped(patch: PendingPatch<F>): void {
    const { counts, guard } = this.#settings;
    const context = { workspaceId: this.workspaceId, source: patch.sourceLabel() };
    if (++counts.skipped > 1) {
      guard.logger.debug(context, 'event-coalescer: skipped a patch for an unknown workspace');
      return;
    }
    guard.logger.warn(
      context,
      `event-coalescer: skipped the write of ${this.workspaceId}: the store does not know it and canCreate refused (by default a patch must carry a truthy projectId). Seed the store, carry projectId in the patch, or pass canCreate (() => true lets any patch create a workspace). Later skips are logged at debug and counted in stats().skipped`,
    );
  }

  #failed(operation: LaneOperation, error: unknown, thrown: boolean): void {
    const host = this.#host;
    const writing = this.#writing;
    if (operation !== 'remove' && this.#removal !== undefined) {
      // Removed meanwhile: writing the patch now would resurrect the workspace.
      host.observed(this, operation === 'canCreate' ? 'neutral' : 'down', error);
      if (writing !== undefined) this.#settings.receipts.removed(writing);
      this.#writing = undefined;
      this.#resetFailures();
      this.#afterCall();
      return;
    }
    const failures = ++this.#failures;
    const now = this.#markFirstTry();
    const context: RetryContext = {
      operation,
      workspaceId: this.workspaceId,
      attempt: failures,
      elapsedMs: now - this.#firstTriedAt,
      thrown,
    };
    const reason = giveUpReason(this.#settings.rule, error, context);
    // A `canCreate` that throws, or an error that will not heal, says nothing of the store.
    host.observed(
      this,
      operation === 'canCreate' || reason === 'not retryable' ? 'neutral' : 'down',
      error,
    );
    if (reason !== undefined) {
      const removal = operation === 'remove' ? this.#removal : undefined;
      if (errorCode(error) === 'EC_REPLICAS_UNACKNOWLEDGED') {
        // The write ran on the master, only its copies are unconfirmed: it landed, and is not
        // reported as given up (a failover before it replicates may still lose it).
        this.#settings.guard.logger.warn(
          { operation, workspaceId: this.workspaceId, err: error, attempt: failures },
          'event-coalescer: landed on the master, not confirmed by its replicas',
        );
        if (removal !== undefined) this.#done({ operation: 'remove', removal }, undefined);
        else if (writing !== undefined)
          this.#done({ operation: 'upsert', patch: writing }, undefined);
        return;
      }
      this.#resetFailures();
      if (removal !== undefined) {
        this.#removal = undefined;
        this.#giveUp(error, { operation: 'remove', workspaceId: this.workspaceId }, removal);
      } else if (writing !== undefined && operation !== 'remove') {
        this.#writing = undefined;
        this.#giveUpPatch(error, operation, writing);
      }
      host.recovered(this);
      this.#afterCall();
      return;
    }
    this.#settings.counts.retried++;
    if (writing !== undefined) {
      // Merge the failed patch back under whatever is newer, so nothing lands out of order.
      this.#writing = undefined;
      const newer = this.#next ?? this.#settings.takePending(this.workspaceId);
      if (newer !== undefined) {
        writing.absorb(newer);
        this.#settings.receipts.absorbed(writing, newer);
      }
      this.#next = writing;
    }
    this.#settings.guard.logger.debug(
      { operation, workspaceId: this.workspaceId, err: error, attempt: failures },
      'event-coalescer: store call failed; retrying',
    );
    this.#settings.callEnded?.(this.workspaceId, false, true);
    host.released(this);
    if (host.waits(this)) return;
    this.#state = 'backoff';
    this.#backoff = setTimer(
      () => {
        this.#backoff = undefined;
        host.admit(this);
      },
      backoffDelay(this.#settings.rule, failures - this.#paceFrom),
    );
    this.#releaseWaiters();
  }

  /** After a call ended: the next one, or rest. */
  #afterCall(skipped = false): void {
    this.#settings.callEnded?.(this.workspaceId, skipped, this.#next !== undefined);
    const host = this.#host;
    host.released(this);
    if (this.#removal !== undefined || this.#next !== undefined) host.admit(this);
    else this.#settle();
  }

  #settle(): void {
    this.#state = 'idle';
    this.#releaseWaiters();
    this.#host.rested(this);
  }

  #giveUpPatch(
    error: unknown,
    operation: 'upsert' | 'getByWorkspaceId' | 'canCreate',
    patch: PendingPatch<F>,
  ): void {
    this.#giveUp(error, {
      operation,
      workspaceId: this.workspaceId,
      source: patch.sourceLabel(),
      fields: patch.patch,
    });
    this.#settings.receipts.failed(patch, error);
  }

  /** The one place a write or removal is given up: counted, reported, its caller told. */
  #giveUp(error: unknown, context: ErrorContext<F>, removal?: Removal): void {
    this.#settings.guard.giveUp(error, context);
    removal?.done();
  }

  /** The work at the head landed or was given up: the next starts afresh. */
  #resetFailures(): void {
    this.#failures = 0;
    this.#paceFrom = 0;
    this.#firstTriedAt = Number.NaN;
  }

  #clearBackoff(): void {
    if (this.#backoff === undefined) return;
    clearTimer(this.#backoff);
    this.#backoff = undefined;
  }

  #releaseWaiters(): void {
    const waiters = this.#waiters;
    if (waiters === undefined) return;
    this.#waiters = undefined;
    for (const resolve of waiters) resolve();
  }
}
