/**
 * One store call as a lane makes it: which operation, on what, with the merged patch's source
 * label, a timestamp from the process-wide store clock (with `timestamps: true`) and, last,
 * the call's signal. What the store throws comes back as a `Thrown` (see the guard).
 */
import { nextTimestamp } from './clock.js';
import { attemptMethod, Thrown } from './guard.js';
import type { PendingPatch } from './pending-patch.js';
import type { SnapshotStore, StoreCallOptions } from './types.js';

/** A removal waiting for, or doing, its store call; `done` settles its `remove()` promise. */
export interface Removal {
  readonly promise: Promise<void>;
  readonly done: () => void;
}

export function newRemoval(): Removal {
  let done!: () => void;
  const promise = new Promise<void>((resolve) => {
    done = resolve;
  });
  return { promise, done };
}

/** What a lane asks of the store; `lookup` is `getByWorkspaceId` before a patch may create. */
export type StoreCall<F extends object> =
  | { readonly operation: 'upsert'; readonly patch: PendingPatch<F> }
  | { readonly operation: 'getByWorkspaceId'; readonly patch: PendingPatch<F> }
  | { readonly operation: 'remove'; readonly removal: Removal };

/**
 * The `call` argument a store receives. Its signal is made only when the store reads it, so a
 * store that ignores it costs no `AbortController`; it is aborted once the coalescer stops
 * waiting for the call.
 */
export class CallSignal implements StoreCallOptions {
  #controller: AbortController | undefined;
  #reason: unknown;
  #aborted = false;

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}

/**
 * For a store: throws the signal's reason when the call is already aborted. The coalescer's
 * own `call` is asked without making its signal.
 */
export function throwIfAborted(call: StoreCallOptions | undefined): void {
  if (call === undefined) return;
  if (call instanceof CallSignal && !call.aborted) return;
  const signal = call.signal;
  if (signal.aborted) throw signal.reason;
}

/** Calls the store; `timestamps` adds the store clock's next timestamp to writes. */
export function invokeStore<F extends object>(
  store: SnapshotStore<F>,
  workspaceId: string,
  call: StoreCall<F>,
  timestamps: boolean,
  signal: CallSignal,
): unknown | Thrown {
  switch (call.operation) {
    case 'getByWorkspaceId':
      return attemptMethod(store, 'getByWorkspaceId', workspaceId, signal);
    case 'remove':
      return attemptMethod(
        store,
        'remove',
        workspaceId,
        timestamps ? nextTimestamp() : undefined,
        signal,
      );
    case 'upsert': {
      // Every write makes this call: called directly, without an array of arguments to apply.
      const patch = call.patch;
      const fields = patch.patch;
      const source = patch.sourceLabel();
      const timestamp = timestamps ? nextTimestamp() : undefined;
      try {
        return store.upsert(workspaceId, fields, source, timestamp, signal);
      } catch (error) {
        return new Thrown(error);
      }
    }
  }
}
