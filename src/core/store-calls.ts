/**
 * The three store operations as a lane makes them: dispatched by name, with the merged
 * patch's source label and, with `timestamps: true`, a timestamp from the process-wide store clock.
 * What the store throws comes back as a `Thrown` (see the guard); its answer is the lane's.
 */
import { nextTimestamp } from './clock.js';
import { attemptMethod, type Thrown } from './guard.js';
import type { PendingPatch } from './pending-patch.js';
import type { Patch, SnapshotStore } from './types.js';

export type StoreOperation = 'upsert' | 'getByWorkspaceId' | 'remove';

export class StoreCalls<F extends object> {
  readonly #store: SnapshotStore<F>;
  /** Whether the store receives timestamps. */
  readonly #timestamps: boolean;

  constructor(store: SnapshotStore<F>, timestamps: boolean) {
    this.#store = store;
    this.#timestamps = timestamps;
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
    const timestamps = this.#timestamps;
    if (operation === 'remove') {
      return timestamps
        ? attemptMethod(store, 'remove', workspaceId, nextTimestamp())
        : attemptMethod(store, 'remove', workspaceId);
    }
    const item = patch as PendingPatch;
    const fields = item.fields as Patch<F>;
    return timestamps
      ? attemptMethod(store, 'upsert', workspaceId, fields, item.sourceLabel(), nextTimestamp())
      : attemptMethod(store, 'upsert', workspaceId, fields, item.sourceLabel());
  }
}
