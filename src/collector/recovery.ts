/**
 * Recovery after a crash, as a collector runs it: the workspaces that replicas now gone had
 * pending (their marks, claimed from the store) are re-read through the refresh sources, or
 * handed to the host's `onOrphans`, at start, every `recoverEveryMs`, and on `recover()`.
 */
import type { EventCoalescer } from '../core/coalescer.js';
import { expected } from '../core/describe.js';
import { adopt, attemptMethod, Thrown } from '../core/guard.js';
import { clearTimer, setTimer, type Timer } from '../core/timers.js';
import type { Logger, MaybePromise, SnapshotStore } from '../core/types.js';

export interface RecoveryDeps<F extends object> {
  readonly store: SnapshotStore<F>;
  readonly coalescer: EventCoalescer<F>;
  readonly logger: Logger;
  /** Re-reads workspaces through the refresh sources; `undefined` without any. */
  readonly refresh: ((workspaceIds: string[]) => Promise<void>) | undefined;
  readonly onOrphans: ((workspaceIds: readonly string[]) => MaybePromise<unknown>) | undefined;
  readonly everyMs: number;
}

export class Recovery<F extends object> {
  readonly #deps: RecoveryDeps<F>;
  #timer: Timer | undefined;
  #running: Promise<string[]> | undefined;
  #stopped = false;

  constructor(deps: RecoveryDeps<F>) {
    this.#deps = deps;
  }

  /** Whether the store keeps marks and something can re-read what they name. */
  get possible(): boolean {
    const { store, refresh, onOrphans } = this.#deps;
    return (
      typeof store.claimOrphans === 'function' && (refresh !== undefined || onOrphans !== undefined)
    );
  }

  /** Recovers now, then every `everyMs`. */
  start(): void {
    if (!this.possible) return;
    void this.recover();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimer(this.#timer);
  }

  /** One recovery at a time: a call while one runs shares it. Never rejects. */
  recover(): Promise<string[]> {
    if (this.#running !== undefined) return this.#running;
    if (this.#stopped || !this.possible) return Promise.resolve([]);
    const running = this.#run().finally(() => {
      this.#running = undefined;
      this.#schedule();
    });
    this.#running = running;
    return running;
  }

  #schedule(): void {
    if (this.#stopped || this.#deps.everyMs === Infinity) return;
    if (this.#timer !== undefined) clearTimer(this.#timer);
    this.#timer = setTimer(() => void this.recover(), this.#deps.everyMs);
    (this.#timer.handle as { unref?(): void } | undefined)?.unref?.();
  }

  async #run(): Promise<string[]> {
    const { store, coalescer, logger, refresh, onOrphans } = this.#deps;
    let ids: readonly string[];
    try {
      const answer = attemptMethod(store, 'claimOrphans');
      if (answer instanceof Thrown) throw answer.error;
      ids = (await (adopt(answer) ?? answer)) as readonly string[];
      if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string' && id !== '')) {
        throw new TypeError(expected('claimOrphans()', 'an array of workspace ids', ids));
      }
    } catch (error) {
      logger.warn({ err: error }, 'event-coalescer: looking for orphaned workspaces failed');
      return [];
    }
    if (ids.length === 0 || this.#stopped) return [...ids];
    logger.info(
      { workspaces: ids.length },
      'event-coalescer: re-reading the workspaces a replica that is gone had pending',
    );
    try {
      if (onOrphans !== undefined) await onOrphans(ids);
      else await refresh?.([...ids]);
    } catch (error) {
      // Their marks stay, now this replica's: should it die too, the next survivor tries.
      logger.error(
        { err: error, workspaces: ids.length },
        'event-coalescer: onOrphans failed; the workspaces stay marked',
      );
      return [...ids];
    }
    // What recovery wrote cleared its own marks; what it will not write is unmarked.
    const settled = ids.filter((id) => !coalescer.isPending(id));
    if (settled.length > 0 && typeof store.unmarkPending === 'function') {
      const answer = attemptMethod(store, 'unmarkPending', settled);
      const later = answer instanceof Thrown ? Promise.reject(answer.error) : adopt(answer);
      await later?.catch((error: unknown) =>
        logger.warn({ err: error }, 'event-coalescer: unmarkPending failed'),
      );
    }
    return [...ids];
  }
}
