/**
 * The three store operations as a lane makes them: dispatched by name, with the merged
 * patch's source label and, with `timestamps: true`, a timestamp from the store clock.
 * Containing what the store throws or answers is the guard's business.
 */
import type { StoreClock } from './clock.js';
import type { PendingPatch } from './pending-patch.js';
import type { MaybePromise, Patch, SnapshotStore } from './types.js';

export type StoreOperation = 'upsert' | 'getByWorkspaceId' | 'remove';

export class StoreCalls<F extends object> {
  readonly #store: SnapshotStore<F>;
  /** The clock, when the store receives timestamps. */
  readonly #clock: StoreClock | undefined;

  constructor(store: SnapshotStore<F>, clock: StoreClock | undefined) {
    this.#store = store;
    this.#clock = clock;
  }

  /** Calls the store; `patch` is what `upsert` writes (unused by the others). */
  invoke(
    operation: StoreOperation,
    workspaceId: string,
    patch: PendingPatch | undefined,
  ): MaybePromise<unknown> {
    const store = this.#store;
    if (operation === 'getByWorkspaceId') return store.getByWorkspaceId(workspaceId);
    const clock = this.#clock;
    if (operation === 'remove') {
      return clock ? store.remove(workspaceId, clock.next()) : store.remove(workspaceId);
    }
    const item = patch as PendingPatch;
    return clock
      ? store.upsert(workspaceId, item.fields as Patch<F>, item.sourceLabel(), clock.next())
      : store.upsert(workspaceId, item.fields as Patch<F>, item.sourceLabel());
  }
}
