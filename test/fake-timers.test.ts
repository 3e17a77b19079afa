import { EventEmitter } from 'node:events';
import FakeTimers from '@sinonjs/fake-timers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { gatedStore, settle, syncStore } from './support/helpers.js';
import { storeArgs } from './support/store-matchers.js';

/** Imports a fresh copy of the package, so that fake timers can be installed before it loads. */
async function freshPackage() {
  vi.resetModules();
  const [core, collector] = await Promise.all([
    import('../src/index.js'),
    import('../src/collector/index.js'),
  ]);
  return { ...core, ...collector };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('vitest fake timers', () => {
  it.each([
    ['installed before the package loaded', true],
    ['installed after', false],
  ])(
    'fake performance with the real Date (%s) counts every window in fake time',
    async (_, before) => {
      const fake = () =>
        vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
      if (before) fake();
      const { EventCoalescer } = await freshPackage();
      if (!before) fake();
      const store = syncStore();
      const coalescer = new EventCoalescer(store, { windowMs: 150, maxWaitMs: Infinity });
      coalescer.enqueue('ws-1', { a: 1 }, 's');
      // The real wall clock has not moved a millisecond; fake time has.
      vi.advanceTimersByTime(100);
      coalescer.enqueue('ws-1', { a: 2 }, 's');
      vi.advanceTimersByTime(149);
      expect(store.upsert).not.toHaveBeenCalled();
      vi.advanceTimersByTime(1);
      expect(store.upsert).toHaveBeenCalledTimes(1);
    },
  );

  it('drive a coalescer imported after they were installed', async () => {
    vi.useFakeTimers();
    const { EventCoalescer } = await freshPackage();
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { windowMs: 100, maxWaitMs: 250 });
    for (let i = 0; i < 10; i++) {
      coalescer.enqueue('ws-1', { i }, 's');
      vi.advanceTimersByTime(50);
    }
    // maxWait: written at 250 ms although events kept coming every 50 ms
    expect(storeArgs(store.upsert)[0]?.[1]).toEqual({ i: 4 });
  });

  it('drive a coalescer imported before they were installed', async () => {
    const { EventCoalescer } = await freshPackage();
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    vi.useFakeTimers();
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    vi.advanceTimersByTime(150);
    expect(store.upsert).toHaveBeenCalledTimes(1);
  });

  it('drive retries of an async store with advanceTimersByTimeAsync', async () => {
    vi.useFakeTimers();
    const { EventCoalescer } = await freshPackage();
    const { store, calls } = gatedStore();
    const coalescer = new EventCoalescer(store, { canCreate: () => true, retry: { jitter: 0 } });
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    await vi.advanceTimersByTimeAsync(150);
    calls[0]?.gate.reject(new Error('down'));
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toHaveLength(2);
    calls[1]?.gate.resolve(undefined);
    await settle();
    expect(coalescer.stats()).toMatchObject({ flushed: 1, retried: 1 });
  });
});

describe('@sinonjs/fake-timers (what jest modern timers are built on)', () => {
  it('drive the window and maxWait with tick', async () => {
    const clock = FakeTimers.install();
    try {
      const { EventCoalescer } = await freshPackage();
      const store = syncStore();
      const coalescer = new EventCoalescer(store, { windowMs: 100, maxWaitMs: 300 });
      coalescer.enqueue('ws-1', { a: 1 }, 's');
      clock.tick(99);
      expect(store.upsert).not.toHaveBeenCalled();
      clock.tick(1);
      expect(store.upsert).toHaveBeenCalledTimes(1);
      for (let i = 0; i < 10; i++) {
        coalescer.enqueue('ws-2', { i }, 's');
        clock.tick(50);
      }
      expect(storeArgs(store.upsert)[1]?.[1]).toEqual({ i: 5 });
    } finally {
      clock.uninstall();
    }
  });

  it('drive a collector’s refresh retries with tickAsync', async () => {
    const clock = FakeTimers.install();
    try {
      const { createEventCollector } = await freshPackage();
      const emitter = new EventEmitter();
      let attempts = 0;
      const store = syncStore();
      const collector = createEventCollector({
        store,
        sources: [
          {
            emitter,
            event: 'changed',
            key: (id: string) => id,
            immediate: true,
            retry: { jitter: 0 },
            refresh: async () => {
              attempts++;
              if (attempts < 3) throw new Error('flaky');
              return { fresh: true };
            },
          },
        ],
      });
      emitter.emit('changed', 'ws-1');
      await clock.tickAsync(1000);
      expect(attempts).toBe(2);
      await clock.tickAsync(2000);
      expect(attempts).toBe(3);
      expect(store.upsert).toHaveStoreCall('ws-1', { fresh: true }, 'event:changed');
      await collector.stop();
    } finally {
      clock.uninstall();
    }
  });
});
