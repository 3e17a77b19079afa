import type { EventCoalescer } from '../core/coalescer.js';
import { expected } from '../core/describe.js';
import { isPlainObject } from '../core/merge.js';
import {
  backoffDelay,
  giveUpReason,
  REFRESH_RETRY_DEFAULTS,
  type RetryRule,
  resolveRetryRule,
} from '../core/retry-rule.js';
import { clearTimer, monotonicNow, setTimer, type Timer } from '../core/timers.js';
import type { EnqueueOptions, Patch } from '../core/types.js';
import { type RefreshSource, sourceWindows } from './sources.js';

/** One workspace's refreshes for one source. */
interface RefreshState {
  readonly workspaceId: string;
  controller: AbortController;
  running: boolean;
  /** A signal arrived while a run was going: one more run follows its success. */
  rerun: boolean;
  failures: number;
  /** When the first of the failing runs started (`performance.now()`). */
  firstRunAt: number;
  backoff: Timer | undefined;
  /** `settled` callers, told when the workspace's refreshes end (done, given up or cancelled). */
  waiters: Array<() => void> | undefined;
}

/**
 * Runs a refresh per workspace, for one source or a group of sources sharing it: the first
 * signal starts a run at once, one run at a time, signals during a run cause exactly one
 * more run after it succeeds, failures are retried with doubling delays, and a final
 * failure is reported.
 */
export class RefreshRunner<F extends object> {
  readonly #source: RefreshSource<F>;
  /** What every refreshed patch is enqueued with: the group's immediacy and windows. */
  readonly #enqueueOptions: EnqueueOptions | undefined;
  readonly #coalescer: EventCoalescer<F>;
  readonly #name: string;
  readonly #rule: RetryRule;
  readonly #states = new Map<string, RefreshState>();

  /**
   * `source` is the group's first: its `refresh`, `retry` and `immediate` serve the group;
   * `label` labels its writes.
   */
  constructor(source: RefreshSource<F>, label: string, coalescer: EventCoalescer<F>) {
    this.#source = source;
    const windows = sourceWindows(source);
    this.#enqueueOptions = source.immediate === true ? { ...windows, immediate: true } : windows;
    this.#coalescer = coalescer;
    this.#name = label;
    this.#rule = resolveRetryRule('retry', source.retry, REFRESH_RETRY_DEFAULTS);
  }

  /** A signal that the workspace changed. */
  signal(workspaceId: string): void {
    const state = this.#states.get(workspaceId);
    if (state === undefined) {
      const fresh: RefreshState = {
        workspaceId,
        controller: new AbortController(),
        running: false,
        rerun: false,
        failures: 0,
        firstRunAt: 0,
        backoff: undefined,
        waiters: undefined,
      };
      this.#states.set(workspaceId, fresh);
      this.#run(fresh);
      return;
    }
    // A run that fails, and its back-off, are satisfied by the retry: `rerun` is reset then.
    if (state.running) state.rerun = true;
  }

  /** Resolves once the workspace's refreshes have ended: done, given up or cancelled. */
  settled(workspaceId: string): Promise<void> {
    const state = this.#states.get(workspaceId);
    if (state === undefined) return Promise.resolve();
    return new Promise((resolve) => {
      state.waiters ??= [];
      state.waiters.push(resolve);
    });
  }

  /** Aborts the workspace's refresh and drops whatever it would still deliver. */
  cancel(workspaceId: string): void {
    const state = this.#states.get(workspaceId);
    if (state === undefined) return;
    if (state.backoff !== undefined) clearTimer(state.backoff);
    this.#end(state);
    state.controller.abort();
  }

  /** Forgets the workspace's state and tells whoever waits for it. */
  #end(state: RefreshState): void {
    this.#states.delete(state.workspaceId);
    const waiters = state.waiters;
    state.waiters = undefined;
    for (const resolve of waiters ?? []) resolve();
  }

  cancelAll(): void {
    for (const workspaceId of [...this.#states.keys()]) this.cancel(workspaceId);
  }

  #isCurrent(state: RefreshState): boolean {
    return this.#states.get(state.workspaceId) === state;
  }

  #run(state: RefreshState): void {
    state.running = true;
    state.backoff = undefined;
    if (state.failures === 0) state.firstRunAt = monotonicNow();
    let result: Promise<Patch<F> | undefined>;
    let thrown = false;
    try {
      result = Promise.resolve(this.#source.refresh(state.workspaceId, state.controller.signal));
    } catch (error) {
      thrown = true;
      result = Promise.reject(error);
    }
    result.then(
      (fields) => {
        if (!this.#isCurrent(state)) return;
        // A result that cannot be read or merged is a failed run, retried like a rejection.
        try {
          this.#deliver(state.workspaceId, fields);
        } catch (error) {
          this.#failed(state, error, false);
          return;
        }
        state.running = false;
        state.failures = 0;
        if (!this.#isCurrent(state)) return;
        if (state.rerun) {
          state.rerun = false;
          this.#run(state);
        } else {
          this.#end(state);
        }
      },
      (error: unknown) => {
        if (this.#isCurrent(state)) this.#failed(state, error, thrown);
      },
    );
  }

  /** A run failed: tried again after the retry rule's back-off, or given up and reported. */
  #failed(state: RefreshState, error: unknown, thrown: boolean): void {
    state.running = false;
    state.rerun = false;
    const failures = ++state.failures;
    const context = {
      operation: 'refresh',
      source: this.#name,
      workspaceId: state.workspaceId,
    } as const;
    const reason = giveUpReason(this.#rule, error, {
      operation: 'refresh',
      workspaceId: state.workspaceId,
      attempt: failures,
      elapsedMs: monotonicNow() - state.firstRunAt,
      thrown,
    });
    if (reason !== undefined) {
      this.#end(state);
      this.#coalescer.giveUp(error, context);
      return;
    }
    const delayMs = backoffDelay(this.#rule, failures);
    this.#coalescer.options.logger.warn(
      { ...context, err: error, attempt: failures, delayMs },
      'event-coalescer: refresh failed; retrying',
    );
    state.backoff = setTimer(() => this.#run(state), delayMs);
  }

  /** Enqueues what a run read; throws when it cannot be read as a patch. */
  #deliver(workspaceId: string, fields: Patch<F> | undefined): void {
    if (fields === undefined) return;
    if (!isPlainObject(fields)) {
      throw new TypeError(expected('the result of refresh', 'a plain object or undefined', fields));
    }
    this.#coalescer.enqueue(workspaceId, fields, this.#name, this.#enqueueOptions);
  }
}
