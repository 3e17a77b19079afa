import { EventCoalescer } from '../core/coalescer.js';
import { expected } from '../core/describe.js';
import { isPlainObject } from '../core/merge.js';
import { numberOption } from '../core/options.js';
import type { CoalescerOptions, Fields, Patch, SnapshotStore } from '../core/types.js';
import { subscribe } from './emitter-adapter.js';
import { RefreshRunner } from './refresh-runner.js';
import { type PatchSource, type RefreshSource, type Source, sourceName } from './sources.js';

/** What {@link createEventCollector} needs: the store, the sources, and any coalescer option. */
export interface CollectorDeps<F extends object = Fields> extends CoalescerOptions<F> {
  store: SnapshotStore<F>;
  sources: readonly Source<F>[];
  /** Aborting it stops the collector. */
  signal?: AbortSignal;
}

/** A running collector: subscribed to its sources until stopped. */
export interface EventCollector<F extends object = Fields> {
  /** The coalescer every source feeds. */
  readonly coalescer: EventCoalescer<F>;
  /**
   * Detaches exactly the listeners it attached (before it returns), aborts refreshes,
   * flushes what is pending, and resolves once the writes have settled. Idempotent.
   */
  stop(): Promise<void>;
  /** Same as `stop()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

const isRefreshSource = <F extends object>(source: Source<F>): source is RefreshSource<F> =>
  typeof (source as RefreshSource<F>).refresh === 'function';

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
  if (!isPlainObject(deps)) throw new TypeError(expected('deps', 'an object', deps));
  const { store, sources, signal, ...options } = deps;
  if (!Array.isArray(sources)) throw new TypeError(expected('sources', 'an array', sources));
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(expected('signal', 'an AbortSignal', signal));
  }
  const coalescer = new EventCoalescer<F>(store, options);
  const { logger } = coalescer.options;
  const detachers: Array<() => void> = [];
  const runners: RefreshRunner<F>[] = [];
  let stopped = false;
  let stopping: Promise<void> | undefined;

  const invalid = (source: string, workspaceId: unknown, message: string): void => {
    coalescer.countInvalid();
    logger.warn({ workspaceId, source }, `event-coalescer: ${message}; event ignored`);
  };

  const removeWorkspace = (workspaceId: string): void => {
    for (const runner of runners) runner.cancel(workspaceId);
    // Failures are retried and reported by the coalescer; the promise never rejects.
    void coalescer.remove(workspaceId);
  };

  const apply = (name: string, action: unknown): void => {
    if (!isPlainObject(action)) {
      invalid(name, undefined, 'map returned a malformed action');
    } else if (typeof action.workspaceId !== 'string' || action.workspaceId === '') {
      invalid(name, action.workspaceId, 'action without a non-empty string workspaceId');
    } else if (action.remove === true) {
      removeWorkspace(action.workspaceId);
    } else if (!isPlainObject(action.fields)) {
      invalid(name, action.workspaceId, 'action whose fields is not a plain object');
    } else {
      const immediate = action.immediate === true ? { immediate: true } : undefined;
      coalescer.enqueue(action.workspaceId, action.fields as Patch<F>, name, immediate);
    }
  };

  const patchListener = (source: PatchSource<F>, name: string) => {
    return (...args: unknown[]): void => {
      if (stopped) return;
      let result: unknown;
      try {
        result = source.map(...args);
      } catch (error) {
        coalescer.countInvalid();
        coalescer.reportError(error, { operation: 'map', source: name });
        return;
      }
      if (result === undefined || result === null) return;
      try {
        if (Array.isArray(result)) for (const action of result) apply(name, action);
        else apply(name, result);
      } catch (error) {
        // An action or its fields that cannot be read (a getter that throws): the event is
        // invalid, and the domain's emit() must still never see it.
        coalescer.countInvalid();
        coalescer.reportError(error, { operation: 'map', source: name });
      }
    };
  };

  const refreshListener = (source: RefreshSource<F>, name: string, runner: RefreshRunner<F>) => {
    return (...args: unknown[]): void => {
      if (stopped) return;
      let workspaceId: unknown;
      try {
        workspaceId = source.key(...args);
      } catch (error) {
        coalescer.countInvalid();
        coalescer.reportError(error, { operation: 'map', source: name });
        return;
      }
      if (workspaceId === undefined || workspaceId === null) return;
      if (typeof workspaceId === 'string' && workspaceId !== '') runner.signal(workspaceId);
      else invalid(name, workspaceId, 'key returned something other than a non-empty string');
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

  sources.forEach((source, index) => {
    const at = `sources[${index}]`;
    const shapeError = (what: string, value: unknown): TypeError => {
      detachAll();
      return new TypeError(expected(`${at}${what}`, whatExpected(what), value));
    };
    if (!isPlainObject(source as unknown)) throw shapeError('', source);
    // The whole source is checked before its listener is attached.
    if (typeof source.event !== 'string') throw shapeError('.event', source.event);
    if (source.name !== undefined && typeof source.name !== 'string') {
      throw shapeError('.name', source.name);
    }
    const name = sourceName(source);
    let listener: (...args: unknown[]) => void;
    if (isRefreshSource(source)) {
      if (typeof source.key !== 'function') throw shapeError('.key', source.key);
      if (source.immediate !== undefined && typeof source.immediate !== 'boolean') {
        throw shapeError('.immediate', source.immediate);
      }
      try {
        checkRetry(at, source.retry);
      } catch (error) {
        detachAll();
        throw error;
      }
      const runner = new RefreshRunner(source, coalescer);
      runners.push(runner);
      listener = refreshListener(source, name, runner);
    } else {
      if (typeof source.map !== 'function') throw shapeError('.map', source.map);
      listener = patchListener(source, name);
    }
    const detach = subscribe(source.emitter, source.event, listener);
    if (detach === undefined) throw shapeError(`.emitter (${name})`, source.emitter);
    detachers.push(detach);
  });

  const onAbort = (): void => {
    void collector.stop();
  };

  const collector: EventCollector<F> = {
    coalescer,
    stop() {
      if (stopping === undefined) {
        stopped = true;
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
  else signal?.addEventListener('abort', onAbort, { once: true });
  return collector;
}

/** A refresh source's `retry`, checked as the coalescer checks its own. */
function checkRetry(at: string, retry: unknown): void {
  if (retry === undefined) return;
  if (!isPlainObject(retry)) throw new TypeError(expected(`${at}.retry`, 'an object', retry));
  numberOption(`${at}.retry.attempts`, retry.attempts, 3, 'count');
  numberOption(`${at}.retry.delayMs`, retry.delayMs, 1000, 'duration');
}

function whatExpected(what: string): string {
  if (what === '') return 'a source object';
  if (what === '.event') return 'an event name (string)';
  if (what === '.name') return 'a string';
  if (what === '.immediate') return 'a boolean';
  if (what.startsWith('.emitter')) {
    return 'an emitter with on/off, addListener/removeListener or addEventListener/removeEventListener';
  }
  return 'a function';
}
