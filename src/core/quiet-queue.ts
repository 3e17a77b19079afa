import type { PendingPatch } from './pending-patch.js';

/**
 * Pending patches ordered by their last enqueue: an intrusive doubly linked list.
 *
 * Every patch waits the same `windowMs` after its last enqueue, so ordering by last
 * enqueue is ordering by deadline: touching a patch moves it to the newest end in O(1),
 * and the oldest end is always the next one due. No per-key timers, no heap.
 */
export class QuietQueue {
  oldest: PendingPatch<object> | undefined = undefined;
  newest: PendingPatch<object> | undefined = undefined;

  append(patch: PendingPatch<object>): void {
    patch.older = this.newest;
    patch.newer = undefined;
    if (this.newest === undefined) this.oldest = patch;
    else this.newest.newer = patch;
    this.newest = patch;
  }

  unlink(patch: PendingPatch<object>): void {
    const { older, newer } = patch;
    if (older === undefined) this.oldest = newer;
    else older.newer = newer;
    if (newer === undefined) this.newest = older;
    else newer.older = older;
    patch.older = undefined;
    patch.newer = undefined;
  }

  /** Moves a touched patch to the newest end; a no-op for a hot key that is there already. */
  touch(patch: PendingPatch<object>): void {
    if (patch === this.newest) return;
    this.unlink(patch);
    this.append(patch);
  }

  clear(): void {
    this.oldest = undefined;
    this.newest = undefined;
  }
}
