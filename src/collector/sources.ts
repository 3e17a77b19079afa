import type { EnqueueOptions, Fields, Patch, RetryOptions } from '../core/types.js';
import type { EmitterLike } from './emitter-adapter.js';

/** Merge `fields` into the workspace's pending patch (`immediate`: and write now). */
export interface PatchAction<F extends object = Fields> {
  workspaceId: string;
  fields: Patch<F>;
  immediate?: boolean;
  /** This action's window, instead of its source's or the coalescer's. */
  windowMs?: number;
  /** This action's bound, instead of its source's or the coalescer's. */
  maxWaitMs?: number;
}

/**
 * A window of a source's own: its patches are written at the latest `windowMs` after the last
 * event that asked for it, and `maxWaitMs` after the first, whatever else the workspace waits
 * for. Without them, the coalescer's apply.
 */
export interface SourceWindows {
  /** @default the coalescer's `windowMs` */
  windowMs?: number;
  /** @default the coalescer's `maxWaitMs` */
  maxWaitMs?: number;
}

/** Remove the workspace at once, dropping its pending patch. */
export interface RemoveAction {
  workspaceId: string;
  remove: true;
}

/** What a source's `map` turns an event into. */
export type SourceAction<F extends object = Fields> = PatchAction<F> | RemoveAction;

/** `map`'s answer: one action, several, or `undefined`/`null` to ignore the event. */
export type MapResult<F extends object = Fields> =
  | SourceAction<F>
  | readonly SourceAction<F>[]
  | undefined
  | null;

/**
 * An event that carries a patch.
 *
 * @example
 * const source: PatchSource = {
 *   emitter: ratchetService,
 *   event: 'ratchet_state_changed',
 *   map: (e: { workspaceId: string; toState: string }) => ({
 *     workspaceId: e.workspaceId,
 *     fields: { ratchetState: e.toState },
 *   }),
 * };
 */
export interface PatchSource<F extends object = Fields> extends SourceWindows {
  emitter: EmitterLike;
  event: string;
  /**
   * The source label given to the store.
   * @default `event:${event}`
   */
  name?: string;
  /** Receives the listener's arguments (an `EventTarget`'s `Event`). */
  map(...args: unknown[]): MapResult<F>;
}

/**
 * An event that only says "this workspace changed": the collector re-reads it with
 * `refresh`, one run at a time per workspace, retrying failures.
 */
export interface RefreshSource<F extends object = Fields> extends SourceWindows {
  emitter: EmitterLike;
  event: string;
  /**
   * The source label given to the store.
   * @default `event:${event}`
   */
  name?: string;
  /**
   * The workspace the event is about; `undefined` ignores the event. May answer with a
   * Promise (a lookup); one that rejects is reported as `map` and counted as invalid.
   */
  key(...args: unknown[]): string | undefined | null | PromiseLike<string | undefined | null>;
  /**
   * Reads the workspace's fields; `undefined` writes nothing. Aborted on remove and stop.
   * Sources that share this function (or a `group`) share its runs: one at a time per
   * workspace, and one rerun for any number of signals during a run.
   */
  refresh(workspaceId: string, signal: AbortSignal): Promise<Patch<F> | undefined>;
  /**
   * Names a group of refresh sources that share their runs, and labels what they write.
   * Sources with the same `refresh` function form a group without it, and a source without
   * a group joins the first named group that uses its function.
   */
  group?: string;
  /** Write the refreshed fields at once instead of after the window. */
  immediate?: boolean;
  /**
   * How failed refreshes are tried again: the coalescer's rule, with its own defaults.
   * @default { attempts: Infinity, delayMs: 1000, maxDelayMs: 30000, maxElapsedMs: Infinity, jitter: 0.2 }
   */
  retry?: RetryOptions;
}

/** Any source a collector subscribes to. */
export type Source<F extends object = Fields> = PatchSource<F> | RefreshSource<F>;

/** A source's own windows as enqueue options, or `undefined` when it has none. */
export function sourceWindows(source: {
  windowMs?: number | undefined;
  maxWaitMs?: number | undefined;
}): EnqueueOptions | undefined {
  const { windowMs, maxWaitMs } = source;
  if (windowMs === undefined && maxWaitMs === undefined) return undefined;
  const options: EnqueueOptions = {};
  if (windowMs !== undefined) options.windowMs = windowMs;
  if (maxWaitMs !== undefined) options.maxWaitMs = maxWaitMs;
  return options;
}

export function sourceName(source: { name?: string; event: string }): string {
  return source.name ?? `event:${source.event}`;
}
