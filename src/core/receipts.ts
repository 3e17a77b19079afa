/**
 * Write receipts: a promise per `settled(workspaceId)` call, told when every patch that held
 * the workspace's fields at that moment has landed, been skipped, or been given up. Patches
 * merge as they move (a due patch into the one waiting, a newer one under a failed one), and a
 * receipt follows them. Nothing is kept for workspaces nobody waits on: the map stays empty,
 * and each hook is one lookup in it.
 */
import { EventCoalescerError } from './errors.js';
import type { PendingPatch } from './pending-patch.js';

/** What a receipt resolves with: the fields landed, or a write was skipped (unknown workspace). */
export type SettledOutcome = 'landed' | 'skipped';

interface Receipt {
  /** Patches still to land, each counted once. */
  remaining: number;
  skipped: boolean;
  settled: boolean;
  resolve(outcome: SettledOutcome): void;
  reject(error: unknown): void;
}

export class Receipts<F extends object> {
  readonly #byPatch = new Map<PendingPatch<F>, Receipt[]>();

  /** A receipt for `patches`, what holds the workspace's fields now (oldest first). */
  wait(patches: readonly PendingPatch<F>[]): Promise<SettledOutcome> {
    if (patches.length === 0) return Promise.resolve('landed');
    return new Promise((resolve, reject) => {
      const receipt: Receipt = {
        remaining: patches.length,
        skipped: false,
        settled: false,
        resolve,
        reject,
      };
      for (const patch of patches) {
        const list = this.#byPatch.get(patch);
        if (list === undefined) this.#byPatch.set(patch, [receipt]);
        else list.push(receipt);
      }
    });
  }

  /** `from` was merged into `into`: its receipts now wait for `into`. */
  absorbed(into: PendingPatch<F>, from: PendingPatch<F>): void {
    const moving = this.#byPatch.get(from);
    if (moving === undefined) return;
    this.#byPatch.delete(from);
    const staying = this.#byPatch.get(into);
    if (staying === undefined) {
      this.#byPatch.set(into, moving);
      return;
    }
    for (const receipt of moving) {
      // Waiting for both, it now waits for one patch fewer.
      if (staying.includes(receipt)) receipt.remaining--;
      else staying.push(receipt);
    }
  }

  /** The patch landed (`skipped`: the store did not know the workspace, nothing was written). */
  landed(patch: PendingPatch<F>, skipped = false): void {
    const receipts = this.#take(patch);
    if (receipts === undefined) return;
    for (const receipt of receipts) {
      if (receipt.settled) continue;
      if (skipped) receipt.skipped = true;
      if (--receipt.remaining > 0) continue;
      receipt.settled = true;
      receipt.resolve(receipt.skipped ? 'skipped' : 'landed');
    }
  }

  /** The patch was given up with `error`, as reported to `onError`. */
  failed(patch: PendingPatch<F>, error: unknown): void {
    const receipts = this.#take(patch);
    if (receipts === undefined) return;
    for (const receipt of receipts) {
      if (receipt.settled) continue;
      receipt.settled = true;
      receipt.reject(error);
    }
  }

  /** The patch was dropped because its workspace was removed. */
  removed(patch: PendingPatch<F>): void {
    if (!this.#byPatch.has(patch)) return;
    this.failed(
      patch,
      new EventCoalescerError(
        'EC_REMOVED',
        `workspace ${patch.workspaceId} was removed before its fields landed`,
      ),
    );
  }

  #take(patch: PendingPatch<F>): Receipt[] | undefined {
    const receipts = this.#byPatch.get(patch);
    if (receipts !== undefined) this.#byPatch.delete(patch);
    return receipts;
  }
}
