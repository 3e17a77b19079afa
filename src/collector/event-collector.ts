import { EventCoalescer } from '../core/coalescer.js';
import {
  assertKnownKeys,
  assertWorkspaceId,
  describePayload,
  expected,
  numberOption,
} from '../core/describe.js';
import { adopt, whenSettled } from '../core/guard.js';
import { isPlainObject } from '../core/merge.js';
import { COALESCER_OPTIONS } from '../core/options.js';
import type { SettledOutcome } from '../core/receipts.js';
import type {
  CoalescerOptions,
  CoalescerStats,
  EnqueueOptions,
  Fields,
  MaybePromise,
  Patch,
  SnapshotStore,
} from '../core/types.js';
import { checkSource, EMITTER_SHAPES, isRefreshSource } from './check-source.js';
import { subscribe } from './emitter-adapter.js';
import { Recovery } from './recovery.js';
import { groupRefreshSources, type RefreshGroup } from './refresh-groups.js';
import { RefreshRunner } from './refresh-runner.js';
import {
  type PatchSource,
  type RefreshSource,
  type Source,
  sourceName,
  sourceWindows,
} from './sources.js';

/** What {@link createEventCollector} needs: the store, the sources, and any coalescer option. */
export interface CollectorDeps<F extends object = Fields> extends CoalescerOptions<F> {
  store: SnapshotStore<F>;
  sources: readonly Source<F>[];
  /** Aborting it stops the collector. */
  signal?: AbortSignal;
  /**
   * Receives the workspaces a replica that is gone had pending (with a store that keeps marks,
   * see `recover()`), instead of the refresh sources: re-read them and enqueue what they hold.
   */
  onOrphans?: (workspaceIds: readonly string[]) => MaybePromise<unknown>;
  /**
   * How often the collector looks for workspaces that replicas now gone had pending, besides
   * at start; `Infinity` looks only at start and on `recover()`.
   * @default 10000
   */
  recoverEveryMs?: number;
}

/** A running collector: subscribed to its sources until stopped. */
export interface EventCollector<F extends object = Fields> {
  /** The coalescer every source feeds. */
  readonly coalescer: EventCoalescer<F>;
  /**
   * Removes the workspace: cancels its refreshes in flight (their results are dropped, so a
   * late one cannot create it again) and removes it through the coalescer. Resolves once the
   * removal has settled; a removal given up is reported to `onError`, not thrown.
   */
  remove(workspaceId: string): Promise<void>;
  /**
   * Runs the refresh sources for these workspaces now (startup seeding), through the same
   * single flight, retries and removal guard as events. Resolves when they have settled.
   */
  refresh(workspaceIds: Iterable<string>): Promise<void>;
  /**
   * With a store that keeps marks (the Redis store): claims the workspaces that replicas
   * whose heartbeat expired had pending, and re-reads them through the refresh sources (or
   * `onOrphans`). Runs at start and every `recoverEveryMs` by itself. Resolves with the
   * workspaces it re-read; never rejects.
   */
  recover(): Promise<string[]>;
  /** The coalescer's counters (see `EventCoalescer.stats`). */
  stats(): CoalescerStats;
  /** Writes the workspace's pending patch now; resolves when its store calls have settled. */
  flush(workspaceId: string): Promise<void>;
  /** Writes every pending patch now; resolves when the writes have settled. */
  flushAll(): Promise<void>;
  /** A receipt for what was enqueued for the workspace so far (see `EventCoalescer.settled`). */
  settled(workspaceId: string): Promise<SettledOutcome>;
  /** The workspace's fields accepted and not yet landed (see `EventCoalescer.peek`). */
  peek(workspaceId: string): Patch<F> | undefined;
  /** Whether the workspace has fields accepted and not yet landed. */
  isPending(workspaceId: string): boolean;
  /**
   * Detaches exactly the listeners it attached (before it returns), aborts refreshes,
   * flushes what is pending, and resolves once the writes have settled. Idempotent.
   */
  stop(): Promise<void>;
  /** Same as `stop()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Subscribes to the sources' emitters and coalesces what they say into store writes.
 * The domains that emit never learn about the store, and a listener never throws into
 * their `emit()`: bad events are reported and counted instead.
 *
 * @example
 * const collector = createEventCollector({
 *   store,
 *   sources: [{ emitter: ratchetService, event: 'ratchet_state_changed',
 *     map: (e: RatchetStateChangedEvent) => ({ workspaceId: e.workspaceId, fields: { ratchetState: e.toState } }) }],
 * });
 * // on shutdown
 * await collector.stop();
 */
export function createEventCollector<F extends object = Fields>(
  deps: CollectorDeps<F>,
): EventCollector<F> {
  return openCollector(deps, undefined);
}

/** Every key `CollectorDeps` has: the coalescer's options and the collector's own. */
const COLLECTOR_DEPS = [
  ...COALESCER_OPTIONS,
  'store',
  'sources',
  'signal',
  'onOrphans',
  'recoverEveryMs',
];

/**
 * Creates a collector; `beforeSubscribe` runs once everything is checked and before any
 * listener attaches (the module hooks stop the collector being replaced there).
 */
export function openCollector<F extends object = Fields>(
  deps: CollectorDeps<F>,
  beforeSubscribe: (() => void) | undefined,
): EventCollector<F> {
  if (!isPlainObject(deps)) throw new TypeError(expected('deps', 'an object', deps));
  assertKnownKeys('deps', deps, COLLECTOR_DEPS);
  const { store, sources, signal, onOrphans, recoverEveryMs, ...options } = deps;
  if (onOrphans !== undefined && typeof onOrphans !== 'function') {
    throw new TypeError(expected('onOrphans', 'a function', onOrphans));
  }
  const everyMs = numberOption('recoverEveryMs', recoverEveryMs, 10_000, 'countOrInfinity');
  if (!Array.isArray(sources)) throw new TypeError(expected('sources', 'an array', sources));
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(expected('signal', 'an AbortSignal', signal));
  }
  const coalescer = new EventCoalescer<F>(store, options);
  const { logger } = coalescer.options;
  const detachers: Array<() => void> = [];
  /** One runner per group of refresh sources (see `groupRefreshSources`). */
  const runnersByGroup = new Map<RefreshGroup<F>, RefreshRunner<F>>();
  const runners: RefreshRunner<F>[] = [];
  let stopped = false;
  let stopping: Promise<void> | undefined;
  /** Events counted, so that an async key answered after a removal cannot undo it. */
  let eventCount = 0;
  let keysPending = 0;
  /** The event count at each removal, kept only while some key is being looked up. */
  const removedAtEvent = new Map<string, number>();

  /** Counts an event that gave nothing usable, and says what it gave (bounded, never whole). */
  const invalid = (
    source: string,
    workspaceId: unknown,
    message: string,
    got: unknown,
    event?: unknown,
  ): void => {
    coalescer.countInvalid();
    const described = describePayload(got);
    const from = event === undefined ? '' : ` from the event ${describePayload(event)}`;
    logger.warn(
      { workspaceId, source, got: described },
      `event-coalescer: ${message}: got ${described}${from}; event ignored`,
    );
  };

  const removeWorkspace = (workspaceId: string): Promise<void> => {
    if (keysPending > 0) removedAtEvent.set(workspaceId, eventCount);
    for (const runner of runners) runner.cancel(workspaceId);
    // Failures are retried and reported by the coalescer; the promise never rejects.
    return coalescer.remove(workspaceId);
  };

  const apply = (
    name: string,
    action: unknown,
    windows: EnqueueOptions | undefined,
    event: unknown,
  ): void => {
    if (!isPlainObject(action)) {
      invalid(name, undefined, 'map returned a malformed action', action, event);
    } else if (typeof action.workspaceId !== 'string' || action.workspaceId === '') {
      invalid(
        name,
        action.workspaceId,
        'action without a non-empty string workspaceId',
        action,
        event,
      );
    } else if (action.remove === true) {
      void removeWorkspace(action.workspaceId);
    } else if (!isPlainObject(action.fields)) {
      invalid(name, action.workspaceId, 'action whose fields is not a plain object', action, event);
    } else {
      const { immediate, windowMs, maxWaitMs } = action;
      // An action's own options win over its source's; the coalescer checks them all.
      const options =
        immediate === undefined && windowMs === undefined && maxWaitMs === undefined
          ? windows
          : {
              ...windows,
              ...(immediate === undefined ? {} : { immediate }),
              ...(windowMs === undefined ? {} : { windowMs }),
              ...(maxWaitMs === undefined ? {} : { maxWaitMs }),
            };
      coalescer.enqueue(
        action.workspaceId,
        action.fields as Patch<F>,
        name,
        options as EnqueueOptions | undefined,
      );
    }
  };

  const patchListener = (source: PatchSource<F>, name: string) => {
    const windows = sourceWindows(source);
    return (...args: unknown[]): void => {
      if (stopped) return;
      let result: unknown;
      try {
        result = source.map(...args);
      } catch (error) {
        mapFailed(name, error);
        return;
      }
      if (result === undefined || result === null) return;
      try {
        if (Array.isArray(result))
          for (const action of result) apply(name, action, windows, args[0]);
        else apply(name, result, windows, args[0]);
      } catch (error) {
        // An action or its fields that cannot be read (a getter that throws): the event is
        // invalid, and the domain's emit() must still never see it.
        mapFailed(name, error);
      }
    };
  };

  /** Signals the runner with what `key` answered, now or when its lookup settles. */
  const keyed = (name: string, runner: RefreshRunner<F>, workspaceId: unknown): void => {
    if (workspaceId === undefined || workspaceId === null) return;
    if (typeof workspaceId === 'string' && workspaceId !== '') runner.signal(workspaceId);
    else {
      invalid(
        name,
        workspaceId,
        'key returned something other than a non-empty string',
        workspaceId,
      );
    }
  };

  /** A `map` or `key` that threw, or an action that cannot be read: counted invalid, reported. */
  const mapFailed = (name: string, error: unknown): void => {
    coalescer.countInvalid();
    coalescer.reportError(error, { operation: 'map', source: name });
  };

  const refreshListener = (source: RefreshSource<F>, name: string, runner: RefreshRunner<F>) => {
    return (...args: unknown[]): void => {
      if (stopped) return;
      const event = ++eventCount;
      let answer: unknown;
      try {
        answer = source.key(...args);
      } catch (error) {
        mapFailed(name, error);
        return;
      }
      const lookup = adopt(answer);
      if (lookup === undefined) {
        keyed(name, runner, answer);
        return;
      }
      keysPending++;
      const settled = (): void => {
        if (--keysPending === 0) removedAtEvent.clear();
      };
      whenSettled(
        lookup,
        (workspaceId) => {
          // Removed after this event arrived: the removal stands.
          const removed = typeof workspaceId === 'string' && removedAtEvent.get(workspaceId);
          if (!stopped && !(typeof removed === 'number' && removed >= event)) {
            keyed(name, runner, workspaceId);
          }
          settled();
        },
        (error) => {
          if (!stopped) mapFailed(name, error);
          settled();
        },
      );
    };
  };

  const detachAll = (): void => {
    for (const detach of detachers.splice(0)) {
      try {
        detach();
      } catch (error) {
        logger.error({ err: error }, 'event-coalescer: an emitter failed to detach a listener');
      }
    }
  };

  // Every source is checked before any is subscribed to.
  sources.forEach((source, index) => {
    checkSource(source, index);
  });
  beforeSubscribe?.();
  const groups = groupRefreshSources(sources.filter(isRefreshSource));
  sources.forEach((source, index) => {
    const name = sourceName(source);
    let listener: (...args: unknown[]) => void;
    if (isRefreshSource(source)) {
      const group = groups.of(source);
      let runner = runnersByGroup.get(group);
      if (runner === undefined) {
        runner = new RefreshRunner(group.first, group.label, coalescer);
        runnersByGroup.set(group, runner);
        runners.push(runner);
      }
      listener = refreshListener(source, name, runner);
    } else {
      listener = patchListener(source as PatchSource<F>, name);
    }
    const detach = subscribe(source.emitter, source.event, listener);
    if (detach === undefined) {
      detachAll();
      throw new TypeError(
        expected(`sources[${index}].emitter (${name})`, EMITTER_SHAPES, source.emitter),
      );
    }
    detachers.push(detach);
  });

  const onAbort = (): void => {
    void collector.stop();
  };

  const refreshAll = (workspaceIds: Iterable<string>): Promise<void> => {
    const runs: Promise<void>[] = [];
    for (const workspaceId of workspaceIds) {
      for (const runner of runners) {
        runner.signal(workspaceId);
        runs.push(runner.settled(workspaceId));
      }
    }
    return Promise.all(runs).then(() => undefined);
  };
  const recovery = new Recovery<F>({
    store,
    coalescer,
    logger,
    refresh: runners.length > 0 ? refreshAll : undefined,
    onOrphans,
    everyMs,
  });

  const collector: EventCollector<F> = {
    coalescer,
    remove(workspaceId) {
      assertWorkspaceId(workspaceId);
      return removeWorkspace(workspaceId);
    },
    refresh(workspaceIds) {
      if (typeof (workspaceIds as Iterable<string> | null)?.[Symbol.iterator] !== 'function') {
        throw new TypeError(expected('workspaceIds', 'an iterable of workspace ids', workspaceIds));
      }
      const ids = [...workspaceIds];
      ids.forEach(assertWorkspaceId);
      if (stopped) return Promise.resolve();
      return refreshAll(ids);
    },
    recover: () => recovery.recover(),
    stats: () => coalescer.stats(),
    flush: (workspaceId) => coalescer.flush(workspaceId),
    flushAll: () => coalescer.flushAll(),
    settled: (workspaceId) => coalescer.settled(workspaceId),
    peek: (workspaceId) => coalescer.peek(workspaceId),
    isPending: (workspaceId) => coalescer.isPending(workspaceId),
    stop() {
      if (stopping === undefined) {
        stopped = true;
        recovery.stop();
        detachAll();
        signal?.removeEventListener('abort', onAbort);
        for (const runner of runners) runner.cancelAll();
        stopping = coalescer.close();
      }
      return stopping;
    },
    [Symbol.asyncDispose]() {
      return collector.stop();
    },
  };

  if (signal?.aborted) void collector.stop();
  else {
    signal?.addEventListener('abort', onAbort, { once: true });
    recovery.start();
  }
  return collector;
}
