/**
 * The three store operations as a lane makes them: dispatched by name, with the merged
 * patch's source label and, with `timestamps: true`, a timestamp from the store clock.
 * What the store throws comes back as a `Thrown` (see the guard); its answer is the lane's.
 */
import type { StoreClock } from './clock.js';
import { attemptMethod, type Thrown } from './guard.js';
import type { PendingPatch } from './pending-patch.js';
import type { Patch, SnapshotStore } from './types.js';

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
  ): unknown | Thrown {
    const store = this.#store;
    if (operation === 'getByWorkspaceId') {
      return attemptMethod(store, 'getByWorkspaceId', workspaceId);
    }
    const clock = this.#clock;
    if (operation === 'remove') {
      return clock
        ? attemptMethod(store, 'remove', workspaceId, clock.next())
        : attemptMethod(store, 'remove', workspaceId);
    }
    const item = patch as PendingPatch;
    const fields = item.fields as Patch<F>;
    return clock
      ? attemptMethod(store, 'upsert', workspaceId, fields, item.sourceLabel(), clock.next())
      : attemptMethod(store, 'upsert', workspaceId, fields, item.sourceLabel());
  }
}
