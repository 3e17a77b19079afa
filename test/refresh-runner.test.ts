import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createEventCollector } from '../src/collector/index.js';
import type { Fields, Patch } from '../src/index.js';
import { type Deferred, deferred, settle, syncStore } from './helpers.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** A refresh source whose runs the test settles by hand. */
function setup(options: { immediate?: boolean } = {}) {
  const emitter = new EventEmitter();
  const store = syncStore();
  const onError = vi.fn();
  const runs: Array<{
    workspaceId: string;
    signal: AbortSignal;
    result: Deferred<Patch<Fields> | undefined>;
  }> = [];
  const collector = createEventCollector({
    store,
    onError,
    sources: [
      {
        emitter,
        event: 'changed',
        key: (id: string) => id,
        refresh: (workspaceId, signal) => {
          const result = deferred<Patch<Fields> | undefined>();
          runs.push({ workspaceId, signal, result });
          return result.promise;
        },
        ...options,
      },
    ],
  });
  return { emitter, store, onError, runs, collector };
}

describe('refresh sources', () => {
  it('starts a refresh at once and writes its result through the coalescer', async () => {
    const { emitter, store, runs } = setup();
    emitter.emit('changed', 'ws-1');
    expect(runs).toHaveLength(1);
    runs[0]?.result.resolve({ title: 'fresh' });
    await settle();
    expect(store.upsert).not.toHaveBeenCalled();
    vi.advanceTimersByTime(150);
    expect(store.upsert).toHaveBeenCalledWith('ws-1', { title: 'fresh' }, 'event:changed');
  });

  it('writes at once when the source is immediate', async () => {
    const { emitter, store, runs } = setup({ immediate: true });
    emitter.emit('changed', 'ws-1');
    runs[0]?.result.resolve({ title: 'fresh' });
    await settle();
    expect(store.upsert).toHaveBeenCalledTimes(1);
  });

  it('runs one refresh at a time and exactly one more for any signals during it', async () => {
    const { emitter, runs } = setup();
    emitter.emit('changed', 'ws-1');
    emitter.emit('changed', 'ws-1');
    emitter.emit('changed', 'ws-1');
    emitter.emit('changed', 'ws-1');
    expect(runs).toHaveLength(1);
    runs[0]?.result.resolve({ n: 1 });
    await settle();
    expect(runs).toHaveLength(2);
    runs[1]?.result.resolve({ n: 2 });
    await settle();
    expect(runs).toHaveLength(2);
  });

  it('runs workspaces independently', () => {
    const { emitter, runs } = setup();
    emitter.emit('changed', 'ws-1');
    emitter.emit('changed', 'ws-2');
    expect(runs.map((run) => run.workspaceId)).toEqual(['ws-1', 'ws-2']);
  });

  it('retries a failed refresh after 1 s then 2 s and reports the third failure', async () => {
    const { emitter, runs, onError, collector } = setup();
    emitter.emit('changed', 'ws-1');
    runs[0]?.result.reject(new Error('down'));
    await settle();
    await vi.advanceTimersByTimeAsync(999);
    expect(runs).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(runs).toHaveLength(2);
    runs[1]?.result.reject(new Error('down'));
    await settle();
    await vi.advanceTimersByTimeAsync(1999);
    expect(runs).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(runs).toHaveLength(3);
    runs[2]?.result.reject(new Error('down'));
    await settle();
    expect(onError).toHaveBeenCalledTimes(1);
    expect(onError.mock.calls[0]?.[1]).toEqual({
      operation: 'refresh',
      source: 'event:changed',
      workspaceId: 'ws-1',
    });
    expect(collector.coalescer.stats().failed).toBe(1);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(runs).toHaveLength(3);
  });

  it('lets the retry satisfy signals that arrive during a failing run or its back-off', async () => {
    const { emitter, runs, onError } = setup();
    emitter.emit('changed', 'ws-1');
    emitter.emit('changed', 'ws-1');
    runs[0]?.result.reject(new Error('down'));
    await settle();
    emitter.emit('changed', 'ws-1');
    await vi.advanceTimersByTimeAsync(1000);
    expect(runs).toHaveLength(2);
    runs[1]?.result.resolve({ ok: true });
    await settle();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(runs).toHaveLength(2);
    expect(onError).not.toHaveBeenCalled();
  });

  it('runs again on a new signal after a final failure', async () => {
    const { emitter, runs } = setup();
    emitter.emit('changed', 'ws-1');
    for (let attempt = 0; attempt < 3; attempt++) {
      runs[attempt]?.result.reject(new Error('down'));
      await settle();
      await vi.advanceTimersByTimeAsync(2000);
    }
    expect(runs).toHaveLength(3);
    emitter.emit('changed', 'ws-1');
    expect(runs).toHaveLength(4);
  });

  it('drops a result for a workspace removed after the refresh began, and aborts it', async () => {
    const emitter = new EventEmitter();
    const store = syncStore();
    const result = deferred<Patch<Fields> | undefined>();
    let signal: AbortSignal | undefined;
    createEventCollector({
      store,
      sources: [
        {
          emitter,
          event: 'changed',
          key: (id: string) => id,
          refresh: (_id, abortSignal) => {
            signal = abortSignal;
            return result.promise;
          },
        },
        { emitter, event: 'archived', map: (id: string) => ({ workspaceId: id, remove: true }) },
      ],
    });
    emitter.emit('changed', 'ws-1');
    emitter.emit('archived', 'ws-1');
    expect(signal?.aborted).toBe(true);
    result.resolve({ stale: true });
    await settle();
    vi.advanceTimersByTime(1000);
    expect(store.upsert).not.toHaveBeenCalled();
    expect(store.remove).toHaveBeenCalledTimes(1);
  });

  it('drops a result that arrives after stop, and aborts the refresh', async () => {
    const { emitter, store, runs, collector } = setup();
    emitter.emit('changed', 'ws-1');
    await collector.stop();
    expect(runs[0]?.signal.aborted).toBe(true);
    runs[0]?.result.resolve({ late: true });
    await settle();
    vi.advanceTimersByTime(1000);
    expect(store.upsert).not.toHaveBeenCalled();
  });

  it('cancels a retry waiting out its back-off on stop', async () => {
    const { emitter, runs, collector } = setup();
    emitter.emit('changed', 'ws-1');
    runs[0]?.result.reject(new Error('down'));
    await settle();
    await collector.stop();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(runs).toHaveLength(1);
  });

  it('reports a throwing key as a map failure without throwing into emit()', () => {
    const emitter = new EventEmitter();
    const onError = vi.fn();
    createEventCollector({
      store: syncStore(),
      onError,
      sources: [
        {
          emitter,
          event: 'changed',
          key: () => {
            throw new Error('bad key');
          },
          refresh: async () => ({}),
        },
      ],
    });
    expect(() => emitter.emit('changed', 'x')).not.toThrow();
    expect(onError.mock.calls[0]?.[1]).toEqual({ operation: 'map', source: 'event:changed' });
  });
});

describe('refresh results that cannot be read', () => {
  it.each([
    [
      'a getter that throws',
      () => ({
        get title(): string {
          throw new Error('getter');
        },
      }),
    ],
    ['a number', () => 42],
    ['an array', () => ['x']],
  ])(
    '%s is a failed refresh: retried, reported, and later signals still refresh',
    async (_l, make) => {
      const emitter = new EventEmitter();
      const store = syncStore();
      const onError = vi.fn();
      let runs = 0;
      const collector = createEventCollector({
        store,
        onError,
        sources: [
          {
            emitter,
            event: 'changed',
            key: (id: string) => id,
            refresh: async () => {
              runs++;
              return (runs <= 2 ? make() : { title: 'fresh' }) as never;
            },
            retry: { attempts: 2, delayMs: 100 },
          },
        ],
      });
      emitter.emit('changed', 'ws-1');
      await vi.advanceTimersByTimeAsync(100);
      expect(runs).toBe(2);
      expect(onError).toHaveBeenCalledTimes(1);
      expect(onError.mock.calls[0]?.[1]).toEqual({
        operation: 'refresh',
        source: 'event:changed',
        workspaceId: 'ws-1',
      });
      expect(collector.coalescer.stats().failed).toBe(1);
      emitter.emit('changed', 'ws-1');
      await vi.advanceTimersByTimeAsync(150);
      expect(runs).toBe(3);
      expect(store.upsert).toHaveBeenCalledWith('ws-1', { title: 'fresh' }, 'event:changed');
    },
  );

  it('waits a back-off past 2^31 ms in full', async () => {
    const emitter = new EventEmitter();
    let runs = 0;
    createEventCollector({
      store: syncStore(),
      sources: [
        {
          emitter,
          event: 'changed',
          key: (id: string) => id,
          refresh: async () => {
            runs++;
            throw new Error('down');
          },
          retry: { attempts: 2, delayMs: 2 ** 31 + 1000 },
        },
      ],
    });
    emitter.emit('changed', 'ws-1');
    await vi.advanceTimersByTimeAsync(2 ** 31);
    expect(runs).toBe(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(runs).toBe(2);
  });
});
