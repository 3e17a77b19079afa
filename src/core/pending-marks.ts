/**
 * The coalescer's part in crash recovery, for a store that keeps marks (`markPending`): each
 * workspace with a patch accepted and not yet landed is marked in the store, so that when
 * this process dies, a surviving replica knows which workspaces to re-read. The store clears
 * a mark in the write that lands the patch.
 *
 * Marks are sent once per pending patch, not per event: in one call per turn of the event
 * loop, and before any write that turn makes (a write clears its workspace's mark, so a mark
 * sent after it would outlive the patch it stands for). After each store call of a workspace
 * that still owes a patch, it is marked again: the call may have cleared the mark.
 */
import { adopt, attemptMethod, Thrown, whenSettled } from './guard.js';
import type { Logger, SnapshotStore } from './types.js';

export class PendingMarks {
  readonly #store: SnapshotStore<object>;
  readonly #logger: Logger;
  #marks = new Set<string>();
  #unmarks = new Set<string>();
  #scheduled = false;

  constructor(store: SnapshotStore<object>, logger: Logger) {
    this.#store = store;
    this.#logger = logger;
  }

  /** The workspace has a patch the store has not landed: mark it this turn. */
  mark(workspaceId: string): void {
    this.#unmarks.delete(workspaceId);
    this.#marks.add(workspaceId);
    this.#schedule();
  }

  /** The workspace owes nothing and its last write was not landed (skipped): unmark it. */
  unmark(workspaceId: string): void {
    this.#marks.delete(workspaceId);
    this.#unmarks.add(workspaceId);
    this.#schedule();
  }

  /** Sends what this turn marked and unmarked; before a write, so that it comes first. */
  flush(): void {
    this.#scheduled = false;
    if (this.#marks.size > 0) {
      const ids = [...this.#marks];
      this.#marks.clear();
      this.#send('markPending', ids);
    }
    if (this.#unmarks.size > 0) {
      const ids = [...this.#unmarks];
      this.#unmarks.clear();
      this.#send('unmarkPending', ids);
    }
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      if (this.#scheduled) this.flush();
    });
  }

  /**
   * A mark that fails is not retried on its own: the store is likely away, so the write fails
   * too, and each failed write marks its workspace again.
   */
  #send(method: 'markPending' | 'unmarkPending', ids: string[]): void {
    const failed = (error: unknown): void =>
      this.#logger.warn(
        { operation: method, workspaces: ids.length, err: error },
        `event-coalescer: ${method} failed: a crash before these workspaces are written would not be recovered`,
      );
    const answer = attemptMethod(this.#store, method, ids);
    if (answer instanceof Thrown) {
      failed(answer.error);
      return;
    }
    const later = adopt(answer);
    if (later !== undefined) whenSettled(later, () => {}, failed);
  }
}
