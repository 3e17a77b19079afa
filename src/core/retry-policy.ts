/**
 * What happens when a store call fails: the patch is merged back under whatever is newer and
 * tried again after a doubling back-off, or, once its attempts are used up, given up, counted
 * and reported. A change to the retry rule belongs here; the lanes only call it.
 */
import type { Guard } from './guard.js';
import type { Lane, LaneDeps, Removal } from './lane.js';
import { mergeFields } from './merge.js';
import type { ResolvedOptions } from './options.js';
import type { PendingPatch } from './pending-patch.js';
import { setTimer } from './timers.js';
import type { Patch } from './types.js';

export class RetryPolicy<F extends object> {
  readonly #options: ResolvedOptions<F>;
  readonly #guard: Guard<F>;
  readonly #counts: LaneDeps<F>['counts'];
  readonly #takePending: LaneDeps<F>['takePending'];
  /** Starts the lane's next call, or lets it rest. */
  readonly #pump: (lane: Lane) => void;

  constructor(deps: LaneDeps<F>, pump: (lane: Lane) => void) {
    this.#options = deps.options;
    this.#guard = deps.guard;
    this.#counts = deps.counts;
    this.#takePending = deps.takePending;
    this.#pump = pump;
  }

  /** A patch's try failed: retry it after its back-off, or give it up and report it. */
  upsertFailed(
    lane: Lane,
    patch: PendingPatch,
    error: unknown,
    operation: 'upsert' | 'getByWorkspaceId' | 'canCreate',
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
      this.#guard.report(error, {
        operation,
        workspaceId,
        source,
        fields: patch.fields as Patch<F>,
      });
      this.#pump(lane);
      return;
    }
    // Merge the failed patch back under whatever is newer, so nothing lands out of order.
    let newer = lane.next;
    if (newer !== undefined) lane.next = undefined;
    else newer = this.#takePending(workspaceId);
    if (newer !== undefined) {
      mergeFields(patch.fields, newer.fields);
      patch.addSourcesOf(newer);
    }
    lane.next = patch;
    this.#retryLater(lane, failures, error, { operation, workspaceId, source });
  }

  /** A removal's try failed: retry it after its back-off, or give it up and report it. */
  removalFailed(lane: Lane, removal: Removal, error: unknown): void {
    const workspaceId = lane.workspaceId;
    removal.failures++;
    if (removal.failures >= this.#options.attempts) {
      this.#counts.failed++;
      lane.removal = undefined;
      this.#guard.report(error, { operation: 'remove', workspaceId });
      removal.resolve();
      this.#pump(lane);
      return;
    }
    this.#retryLater(lane, removal.failures, error, { operation: 'remove', workspaceId });
  }

  #retryLater(lane: Lane, failures: number, error: unknown, context: object): void {
    this.#counts.retried++;
    const delayMs = this.#options.retryDelayMs * 2 ** (failures - 1);
    this.#guard.logger.warn(
      { ...context, err: error, attempt: failures, delayMs },
      'event-coalescer: store call failed; retrying',
    );
    lane.backoff = setTimer(() => {
      lane.backoff = undefined;
      this.#pump(lane);
    }, delayMs);
    this.#pump(lane);
  }
}
