/**
 * One store call in flight per workspace: invoking the store, adopting its answer, retries
 * and back-off, give-up reports, and abandoning what a hung store never finished.
 * When a patch is due is the deadlines' business; lanes take patches that already are.
 */
import { adopt, attempt, type Guard, Thrown, whenSettled } from './guard.js';
import {
  type Counts,
  type Lane,
  type LaneDeps,
  newLane,
  newRemoval,
  type Removal,
  releaseWaiters,
  undrainedItems,
  whenRested,
} from './lane.js';
import { mergeFields } from './merge.js';
import type { ResolvedOptions } from './options.js';
import { PendingPatch } from './pending-patch.js';
import { RetryPolicy } from './retry-policy.js';
import type { StoreCalls, StoreOperation } from './store-calls.js';
import { clearTimer } from './timers.js';
import { storeCallsTraced, storeChannel, traceContext, traceDone, traceFailed } from './tracing.js';
import type { Patch } from './types.js';

export class WriteLanes<F extends object> {
  readonly #store: StoreCalls<F>;
  readonly #options: ResolvedOptions<F>;
  readonly #guard: Guard<F>;
  readonly #counts: Counts;
  readonly #retries: RetryPolicy<F>;
  readonly #lanes = new Map<string, Lane>();

  constructor(deps: LaneDeps<F>) {
    this.#store = deps.store;
    this.#options = deps.options;
    this.#guard = deps.guard;
    this.#counts = deps.counts;
    this.#retries = new RetryPolicy(deps, (lane) => this.#pump(lane));
  }

  /** Workspaces with a store call running or waiting. */
  get size(): number {
    return this.#lanes.size;
  }

  /** Whether the workspace has a store call running or waiting. */
  has(workspaceId: string): boolean {
    return this.#lanes.has(workspaceId);
  }

  /** Due patches waiting behind a store call in flight or a back-off (one per workspace). */
  get waitingCount(): number {
    let waiting = 0;
    for (const lane of this.#lanes.values()) if (lane.next !== undefined) waiting++;
    return waiting;
  }

  /** Writes a due patch, or queues it behind the workspace's running call. */
  write(patch: PendingPatch): void {
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

  /**
   * Removes the workspace: at once, or right after its running call. A patch waiting
   * behind that call, or in back-off, is superseded. Resolves once the removal settled.
   */
  remove(workspaceId: string): Promise<void> {
    let lane = this.#lanes.get(workspaceId);
    if (lane?.removal !== undefined) {
      lane.next = undefined;
      return lane.removal.promise;
    }
    const removal = newRemoval();
    if (lane === undefined) {
      lane = this.#openLane(workspaceId);
    } else {
      lane.next = undefined;
      if (lane.backoff !== undefined) {
        clearTimer(lane.backoff);
        lane.backoff = undefined;
      }
    }
    lane.removal = removal;
    this.#pump(lane);
    return removal.promise;
  }

  /** Ends the workspace's back-off, so what waits for it is tried now. */
  endBackoff(workspaceId: string): void {
    const lane = this.#lanes.get(workspaceId);
    if (lane !== undefined) this.#endBackoff(lane);
  }

  endAllBackoffs(): void {
    for (const lane of [...this.#lanes.values()]) this.#endBackoff(lane);
  }

  /** Resolves when the workspace's lane rests; `undefined` when no call of it runs. */
  whenRested(workspaceId: string): Promise<void> | undefined {
    const lane = this.#lanes.get(workspaceId);
    return lane?.busy === true ? whenRested(lane) : undefined;
  }

  /** Resolves when every lane with a running call rests. */
  whenAllRested(): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const lane of this.#lanes.values()) {
      if (lane.busy) waits.push(whenRested(lane));
    }
    return waits.length === 0 ? Promise.resolve() : Promise.all(waits).then(() => undefined);
  }

  /** Gives up every lane, reporting what a hung store never finished, so nothing vanishes silently. */
  abandonAll(error: Error): void {
    for (const lane of [...this.#lanes.values()]) {
      lane.abandoned = true;
      if (lane.backoff !== undefined) clearTimer(lane.backoff);
      this.#lanes.delete(lane.workspaceId);
      const workspaceId = lane.workspaceId;
      for (const item of undrainedItems(lane)) {
        this.#counts.failed++;
        if (item instanceof PendingPatch) {
          const fields = item.fields as Patch<F>;
          this.#guard.report(error, {
            operation: 'upsert',
            workspaceId,
            source: item.sourceLabel(),
            fields,
          });
        } else {
          this.#guard.report(error, { operation: 'remove', workspaceId });
          item.resolve();
        }
      }
      releaseWaiters(lane);
    }
  }

  #openLane(workspaceId: string): Lane {
    const lane = newLane(workspaceId);
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
    releaseWaiters(lane);
  }

  /**
   * Runs one store call of the lane. A synchronous answer continues synchronously (so a
   * test with fake timers sees the write at once); a thenable is adopted as `await` would,
   * settling once. A thrown error and a rejection are both failures, and neither escapes.
   */
  #call(lane: Lane, operation: StoreOperation, item: PendingPatch | Removal): void {
    // Busy during a synchronous call too, so a store listener that re-enters waits its turn.
    lane.busy = true;
    lane.current = item;
    const patch = item instanceof PendingPatch ? item : undefined;
    // Traced only while an APM listens: then start, end, asyncStart, asyncEnd and error.
    const trace = storeCallsTraced()
      ? traceContext(
          operation,
          lane.workspaceId,
          patch,
          (patch === undefined ? (item as Removal).failures : lane.failures) + 1,
        )
      : undefined;
    const answer =
      trace === undefined
        ? this.#store.invoke(operation, lane.workspaceId, patch)
        : storeChannel.start.runStores(trace, () =>
            this.#store.invoke(operation, lane.workspaceId, patch),
          );
    if (answer instanceof Thrown) {
      if (trace !== undefined) traceFailed(trace, answer.error, false);
      lane.busy = false;
      this.#callFailed(lane, operation, item, answer.error);
      return;
    }
    const later = adopt(answer);
    if (later === undefined) {
      if (trace !== undefined) traceDone(trace, answer, false);
      lane.busy = false;
      this.#callDone(lane, operation, item, answer);
      return;
    }
    if (trace !== undefined) storeChannel.end.publish(trace);
    this.#counts.inFlight++;
    whenSettled(
      later,
      (value) => {
        this.#counts.inFlight--;
        if (trace !== undefined) traceDone(trace, value, true);
        if (lane.abandoned) return;
        lane.busy = false;
        this.#callDone(lane, operation, item, value);
      },
      (error: unknown) => {
        this.#counts.inFlight--;
        if (trace !== undefined) traceFailed(trace, error, true);
        if (lane.abandoned) return;
        lane.busy = false;
        this.#callFailed(lane, operation, item, error);
      },
    );
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
    } else if (value !== undefined && value !== null) {
      this.#call(lane, 'upsert', item);
      return;
    } else {
      // Unknown workspace and nothing to create it from: the host's reconciliation seeds it.
      this.#counts.skipped++;
      this.#guard.logger.debug(
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
    if (operation === 'remove') this.#retries.removalFailed(lane, item as Removal, error);
    else this.#retries.upsertFailed(lane, item as PendingPatch, error, operation);
  }

  /** Upserts, or first asks the store whether it knows a workspace the patch may not create. */
  #startUpsert(lane: Lane, patch: PendingPatch): void {
    const canCreate = attempt(this.#options.canCreate, undefined, patch.fields as Patch<F>);
    if (canCreate instanceof Thrown) {
      // A failed attempt of this write, retried and reported like a store failure.
      this.#retries.upsertFailed(lane, patch, canCreate.error, 'canCreate');
      return;
    }
    this.#call(lane, canCreate ? 'upsert' : 'getByWorkspaceId', patch);
  }
}
