import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createEventCollector } from '../src/collector/index.js';
import type { Fields, Patch, RetryOptions } from '../src/index.js';
import { type Deferred, deferred, settle, syncStore } from './support/helpers.js';
import { storeArgs } from './support/store-matchers.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** A refresh source whose runs the test settles by hand. */
function setup(options: { immediate?: boolean; retry?: RetryOptions } = {}) {
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
        retry: { attempts: 3, jitter: 0 },
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
    expect(store.upsert).toHaveStoreCall('ws-1', { title: 'fresh' }, 'event:changed');
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
            retry: { attempts: 2, delayMs: 100, jitter: 0 },
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
      expect(store.upsert).toHaveStoreCall('ws-1', { title: 'fresh' }, 'event:changed');
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
          retry: { attempts: 2, delayMs: 2 ** 31 + 1000, maxDelayMs: 2 ** 31 + 1000, jitter: 0 },
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

/** Refresh sources over one emitter, all reading through one hand-settled `refresh`. */
function sharedSetup(sourceCount: number, extra: Record<string, unknown> = {}) {
  const emitter = new EventEmitter();
  const store = syncStore();
  const onError = vi.fn();
  const runs: Array<{ workspaceId: string; result: Deferred<Patch<Fields> | undefined> }> = [];
  const refresh = (workspaceId: string) => {
    const result = deferred<Patch<Fields> | undefined>();
    runs.push({ workspaceId, result });
    return result.promise;
  };
  const collector = createEventCollector({
    store,
    onError,
    canCreate: () => true,
    sources: Array.from({ length: sourceCount }, (_, i) => ({
      emitter,
      event: `e${i}`,
      key: (id: string) => id,
      refresh,
      ...extra,
    })),
  });
  return { emitter, store, onError, runs, collector };
}

describe('collector.remove', () => {
  it('cancels a refresh in flight, so its late result cannot create the workspace again', async () => {
    const { emitter, store, runs, collector } = sharedSetup(1);
    emitter.emit('e0', 'ws-1');
    expect(runs).toHaveLength(1);
    await collector.remove('ws-1');
    expect(store.remove).toHaveStoreCall('ws-1');
    runs[0]?.result.resolve({ title: 'late' });
    await settle();
    vi.advanceTimersByTime(1000);
    expect(store.upsert).not.toHaveBeenCalled();
  });

  it('refuses a workspaceId that is not a non-empty string', () => {
    const { collector } = sharedSetup(1);
    expect(() => collector.remove('' as string)).toThrow(/Expected `workspaceId`/);
  });
});

describe('refresh sources that share a refresh', () => {
  it('run one read for a burst of four events on four sources, then one rerun', async () => {
    const { emitter, store, runs } = sharedSetup(4);
    for (let i = 0; i < 4; i++) emitter.emit(`e${i}`, 'ws-1');
    expect(runs).toHaveLength(1);
    runs[0]?.result.resolve({ n: 1 });
    await settle();
    expect(runs).toHaveLength(2);
    runs[1]?.result.resolve({ n: 2 });
    await settle();
    vi.advanceTimersByTime(150);
    expect(runs).toHaveLength(2);
    expect(storeArgs(store.upsert)).toEqual([['ws-1', { n: 2 }, 'event:e0']]);
  });

  it('share by group name too, and label their writes with it', async () => {
    const emitter = new EventEmitter();
    const store = syncStore();
    let reads = 0;
    const read = async () => {
      reads++;
      return { n: reads };
    };
    createEventCollector({
      store,
      canCreate: () => true,
      sources: [
        { emitter, event: 'a', key: (id: string) => id, refresh: read, group: 'workspace-row' },
        {
          emitter,
          event: 'b',
          key: (id: string) => id,
          refresh: async () => read(),
          group: 'workspace-row',
        },
      ],
    });
    emitter.emit('a', 'ws-1');
    emitter.emit('b', 'ws-1');
    await settle();
    vi.advanceTimersByTime(150);
    expect(reads).toBe(2);
    expect(storeArgs(store.upsert)).toEqual([['ws-1', { n: 2 }, 'workspace-row']]);
  });
});

describe('refresh sources that share a function, one naming a group', () => {
  it.each([
    ['the named one first', ['row', undefined]],
    ['the unnamed one first', [undefined, 'row']],
  ] as const)(
    'share its runs (%s): never two reads of one workspace at once',
    async (_label, groups) => {
      const emitter = new EventEmitter();
      const store = syncStore();
      let reading = 0;
      let mostAtOnce = 0;
      let reads = 0;
      const gates: Array<() => void> = [];
      const read = async () => {
        reads++;
        reading++;
        mostAtOnce = Math.max(mostAtOnce, reading);
        await new Promise<void>((resolve) => gates.push(resolve));
        reading--;
        return { n: reads };
      };
      createEventCollector({
        store,
        canCreate: () => true,
        sources: groups.map((group, i) => ({
          emitter,
          event: `e${i}`,
          key: (id: string) => id,
          refresh: read,
          ...(group === undefined ? {} : { group }),
        })),
      });
      emitter.emit('e0', 'ws-1');
      emitter.emit('e1', 'ws-1');
      expect(reads).toBe(1);
      gates.shift()?.();
      await settle();
      gates.shift()?.();
      await settle();
      vi.advanceTimersByTime(150);
      expect(mostAtOnce).toBe(1);
      expect(reads).toBe(2);
      expect(storeArgs(store.upsert)).toEqual([['ws-1', { n: 2 }, 'row']]);
    },
  );
});

describe('refresh sources with async keys', () => {
  function asyncKeySetup() {
    const emitter = new EventEmitter();
    const store = syncStore();
    const onError = vi.fn();
    const lookups: Array<Deferred<string | undefined>> = [];
    const reads: string[] = [];
    const collector = createEventCollector({
      store,
      onError,
      canCreate: () => true,
      sources: [
        {
          emitter,
          event: 'session',
          key: () => {
            const lookup = deferred<string | undefined>();
            lookups.push(lookup);
            return lookup.promise;
          },
          refresh: async (workspaceId) => {
            reads.push(workspaceId);
            return { seen: true };
          },
        },
      ],
    });
    return { emitter, store, onError, lookups, reads, collector };
  }

  it('refresh the workspace a lookup finds', async () => {
    const { emitter, store, lookups, reads } = asyncKeySetup();
    emitter.emit('session', 's-1');
    expect(reads).toEqual([]);
    lookups[0]?.resolve('ws-1');
    await settle();
    expect(reads).toEqual(['ws-1']);
    vi.advanceTimersByTime(150);
    expect(store.upsert).toHaveStoreCall('ws-1', { seen: true }, 'event:session');
  });

  it('report a lookup that rejects as map, counted invalid', async () => {
    const { emitter, onError, lookups, collector } = asyncKeySetup();
    emitter.emit('session', 's-1');
    const failure = new Error('no session');
    lookups[0]?.reject(failure);
    await settle();
    expect(onError).toHaveBeenCalledWith(failure, { operation: 'map', source: 'event:session' });
    expect(collector.coalescer.stats().invalid).toBe(1);
  });

  it('drop a lookup answered after the workspace was removed', async () => {
    const { emitter, store, lookups, reads, collector } = asyncKeySetup();
    emitter.emit('session', 's-1');
    await collector.remove('ws-1');
    lookups[0]?.resolve('ws-1');
    await settle();
    vi.advanceTimersByTime(150);
    expect(reads).toEqual([]);
    expect(store.upsert).not.toHaveBeenCalled();
  });

  it('still refresh for an event that arrived after the removal', async () => {
    const { emitter, lookups, reads, collector } = asyncKeySetup();
    emitter.emit('session', 's-1');
    await collector.remove('ws-1');
    emitter.emit('session', 's-2');
    lookups[1]?.resolve('ws-1');
    lookups[0]?.resolve('ws-1');
    await settle();
    expect(reads).toEqual(['ws-1']);
  });

  it('ignore a lookup answered after stop', async () => {
    const { emitter, lookups, reads, collector } = asyncKeySetup();
    emitter.emit('session', 's-1');
    await collector.stop();
    lookups[0]?.resolve('ws-1');
    await settle();
    expect(reads).toEqual([]);
  });
});

describe('collector.refresh (priming)', () => {
  it('runs the refresh sources for the given workspaces and resolves once they settled', async () => {
    const { store, runs, collector } = sharedSetup(2);
    let primed = false;
    const priming = collector.refresh(['ws-1', 'ws-2']).then(() => {
      primed = true;
    });
    expect(runs.map((run) => run.workspaceId)).toEqual(['ws-1', 'ws-2']);
    runs[0]?.result.resolve({ a: 1 });
    await settle();
    expect(primed).toBe(false);
    runs[1]?.result.resolve({ a: 2 });
    await priming;
    vi.advanceTimersByTime(150);
    expect(store.upsert).toHaveBeenCalledTimes(2);
  });

  it('goes through single flight: an event during priming causes one rerun, not a second read', async () => {
    const { emitter, runs, collector } = sharedSetup(1);
    const priming = collector.refresh(['ws-1']);
    emitter.emit('e0', 'ws-1');
    expect(runs).toHaveLength(1);
    runs[0]?.result.resolve({ a: 1 });
    await settle();
    expect(runs).toHaveLength(2);
    runs[1]?.result.resolve({ a: 2 });
    await priming;
  });

  it('retries a failed read and resolves when the retries are done', async () => {
    const { runs, onError, collector } = sharedSetup(1, {
      retry: { attempts: 2, delayMs: 100, jitter: 0 },
    });
    let primed = false;
    const priming = collector.refresh(['ws-1']).then(() => {
      primed = true;
    });
    runs[0]?.result.reject(new Error('down'));
    await settle();
    expect(primed).toBe(false);
    await vi.advanceTimersByTimeAsync(100);
    runs[1]?.result.reject(new Error('down'));
    await priming;
    expect(onError).toHaveBeenCalledTimes(1);
  });

  it('resolves, writing nothing, when the workspace is removed meanwhile', async () => {
    const { store, runs, collector } = sharedSetup(1);
    const priming = collector.refresh(['ws-1']);
    await collector.remove('ws-1');
    await priming;
    runs[0]?.result.resolve({ a: 1 });
    await settle();
    vi.advanceTimersByTime(150);
    expect(store.upsert).not.toHaveBeenCalled();
  });

  it('refuses something that is not an iterable of workspace ids', () => {
    const { collector } = sharedSetup(1);
    expect(() => collector.refresh(42 as never)).toThrow(/Expected `workspaceIds`/);
    expect(() => collector.refresh([''])).toThrow(/Expected `workspaceId`/);
  });
});
