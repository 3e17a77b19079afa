import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createEventCollector } from '../src/collector/index.js';
import { configureEventCollector, EventCoalescer, stopEventCollector } from '../src/index.js';
import { createMemorySnapshotStore } from '../src/stores/memory.js';
import { deferred, gatedStore, settle, syncStore } from './support/helpers.js';
import { meaningfulArgs, storeArgs } from './support/store-matchers.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('EventCoalescer window', () => {
  it('writes a single event after the coalescing window', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { status: 'READY' }, 'event:workspace_state_changed');
    expect(store.upsert).not.toHaveBeenCalled();
    vi.advanceTimersByTime(150);
    expect(store.upsert).toHaveBeenCalledTimes(1);
    expect(store.upsert).toHaveStoreCall(
      'ws-1',
      { status: 'READY' },
      'event:workspace_state_changed',
    );
  });

  it('does not write at 149 ms and writes at 150 ms', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    vi.advanceTimersByTime(149);
    expect(store.upsert).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(store.upsert).toHaveBeenCalledTimes(1);
  });

  it('restarts the window on every enqueue and writes one merged patch', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { status: 'READY' }, 'event:a');
    vi.advanceTimersByTime(50);
    coalescer.enqueue('ws-1', { isWorking: true }, 'event:b');
    vi.advanceTimersByTime(50);
    coalescer.enqueue('ws-1', { ratchetState: 'IDLE' }, 'event:c');
    vi.advanceTimersByTime(149);
    expect(store.upsert).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(store.upsert).toHaveBeenCalledTimes(1);
    expect(store.upsert).toHaveStoreCall(
      'ws-1',
      { status: 'READY', isWorking: true, ratchetState: 'IDLE' },
      'event:a+event:b+event:c',
    );
  });

  it('writes separate patches for different workspaces', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    coalescer.enqueue('ws-2', { a: 2 }, 's');
    vi.advanceTimersByTime(150);
    expect(storeArgs(store.upsert)).toEqual([
      ['ws-1', { a: 1 }, 's'],
      ['ws-2', { a: 2 }, 's'],
    ]);
  });

  it('writes each workspace at its own deadline', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    vi.advanceTimersByTime(100);
    coalescer.enqueue('ws-2', { a: 2 }, 's');
    vi.advanceTimersByTime(50);
    expect(storeArgs(store.upsert).map((call) => call[0])).toEqual(['ws-1']);
    vi.advanceTimersByTime(99);
    expect(store.upsert).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(1);
    expect(storeArgs(store.upsert).map((call) => call[0])).toEqual(['ws-1', 'ws-2']);
  });

  it('accepts windowMs as the second argument', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, 20);
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    vi.advanceTimersByTime(19);
    expect(store.upsert).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(store.upsert).toHaveBeenCalledTimes(1);
  });

  it('keeps one live timer however many workspaces are pending', () => {
    const coalescer = new EventCoalescer(syncStore());
    for (let i = 0; i < 1000; i++) coalescer.enqueue(`ws-${i}`, { i }, 's');
    expect(vi.getTimerCount()).toBe(1);
    expect(coalescer.pendingCount).toBe(1000);
  });

  it('leaves no timer once everything is written', () => {
    const coalescer = new EventCoalescer(syncStore());
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    vi.advanceTimersByTime(150);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('EventCoalescer clock', () => {
  it('keeps exact deadlines after weeks of uptime (its clock re-bases past 2^30 ms)', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    vi.advanceTimersByTime(150);
    vi.advanceTimersByTime(40 * 24 * 3600 * 1000);
    coalescer.enqueue('ws-2', { a: 2 }, 's');
    vi.advanceTimersByTime(149);
    expect(store.upsert).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(1);
    expect(storeArgs(store.upsert).map((call) => call[0])).toEqual(['ws-1', 'ws-2']);
  });

  it('with real clocks, counts the window from the real time of each enqueue, also within one busy tick', async () => {
    vi.useRealTimers();
    let writtenAt = 0;
    const coalescer = new EventCoalescer(
      {
        upsert: () => {
          writtenAt = performance.now();
        },
        getByWorkspaceId: () => ({}),
        remove: () => {},
      },
      { windowMs: 50, maxWaitMs: Infinity },
    );
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    const busyUntil = performance.now() + 30;
    while (performance.now() < busyUntil) {
      // A synchronous stretch of work between two enqueues of one tick.
    }
    coalescer.enqueue('ws-1', { a: 2 }, 's');
    const secondAt = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 120));
    // Never earlier than the window after the second enqueue, to the millisecond.
    expect(writtenAt - secondAt).toBeGreaterThanOrEqual(48);
    await coalescer.close();
  });

  it('works with fake timers installed after the coalescer was created', () => {
    vi.useRealTimers();
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    vi.useFakeTimers();
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    vi.advanceTimersByTime(149);
    expect(store.upsert).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(store.upsert).toHaveBeenCalledTimes(1);
  });
});

describe('EventCoalescer maxWait', () => {
  it('writes a steadily updated workspace maxWaitMs after its first enqueue', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { windowMs: 150, maxWaitMs: 1000 });
    for (let t = 0; t < 999; t += 100) {
      coalescer.enqueue('ws-1', { t }, 's');
      vi.advanceTimersByTime(100);
      if (t < 900) expect(store.upsert).not.toHaveBeenCalled();
    }
    // first enqueue at 0, now at 1000
    expect(store.upsert).toHaveBeenCalledTimes(1);
    expect(store.upsert).toHaveStoreCall('ws-1', { t: 900 }, 's');
  });

  it('does not write at maxWaitMs - 1', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { windowMs: 100, maxWaitMs: 300 });
    coalescer.enqueue('ws-1', { n: 0 }, 's');
    for (let i = 1; i <= 5; i++) {
      vi.advanceTimersByTime(50);
      coalescer.enqueue('ws-1', { n: i }, 's');
    }
    vi.advanceTimersByTime(49);
    expect(store.upsert).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(store.upsert).toHaveStoreCall('ws-1', { n: 5 }, 's');
  });

  it('never forces a write when maxWaitMs is Infinity', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { windowMs: 100, maxWaitMs: Infinity });
    for (let i = 0; i < 100; i++) {
      coalescer.enqueue('ws-1', { i }, 's');
      vi.advanceTimersByTime(50);
    }
    expect(store.upsert).not.toHaveBeenCalled();
    vi.advanceTimersByTime(50);
    expect(store.upsert).toHaveBeenCalledTimes(1);
  });
});

describe('EventCoalescer merge rules', () => {
  it('lets the later value win, field by field', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { a: 1, b: 1 }, 's');
    coalescer.enqueue('ws-1', { b: 2, c: 2 }, 's');
    vi.advanceTimersByTime(150);
    expect(store.upsert).toHaveStoreCall('ws-1', { a: 1, b: 2, c: 2 }, 's');
  });

  it('treats undefined as not provided', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    coalescer.enqueue('ws-1', { a: undefined, b: undefined }, 's');
    vi.advanceTimersByTime(150);
    const fields = storeArgs(store.upsert)[0]?.[1];
    expect(fields).toEqual({ a: 1 });
    expect(Object.keys(fields ?? {})).toEqual(['a']);
  });

  it('writes null as a real value', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { prNumber: 7 }, 's');
    coalescer.enqueue('ws-1', { prNumber: null }, 's');
    vi.advanceTimersByTime(150);
    expect(store.upsert).toHaveStoreCall('ws-1', { prNumber: null }, 's');
  });

  it('never changes a prototype through __proto__, constructor or prototype keys', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    const patch = JSON.parse(
      '{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}, "prototype": 1}',
    );
    coalescer.enqueue('ws-1', patch, 's');
    vi.advanceTimersByTime(150);
    const fields = storeArgs(store.upsert)[0]?.[1] as Record<string, unknown>;
    expect(Object.getPrototypeOf(fields)).toBe(Object.prototype);
    expect(Object.keys(fields)).toEqual(['__proto__', 'constructor', 'prototype']);
    expect(Object.getOwnPropertyDescriptor(fields, '__proto__')?.value).toEqual({ polluted: true });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('merges patches of any width field by field, in first-seen order', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    // Each workspace's patches as [from, to) ranges of field numbers: later ones add names and
    // overwrite earlier ones, within 4 fields, within 8, and past them.
    const bursts: Record<string, [number, number][]> = {
      'ws-narrow': [
        [0, 2],
        [1, 3],
        [0, 1],
      ],
      'ws-eight': [
        [0, 3],
        [2, 6],
        [7, 8],
        [5, 7],
        [0, 1],
      ],
      'ws-wide': [
        [0, 3],
        [2, 6],
        [5, 9],
        [0, 1],
        [8, 20],
        [3, 4],
      ],
    };
    const expected: Record<string, Record<string, unknown>> = {};
    for (const [workspaceId, ranges] of Object.entries(bursts)) {
      const model: Record<string, unknown> = {};
      ranges.forEach(([from, to], n) => {
        const patch: Record<string, unknown> = {};
        for (let i = to - 1; i >= from; i--) patch[`f${i}`] = `${n}-${i}`;
        coalescer.enqueue(workspaceId, patch, 's');
        Object.assign(model, patch);
      });
      expected[workspaceId] = model;
      // Reading the pending fields leaves them as they were.
      expect(coalescer.peek(workspaceId)).toEqual(model);
    }
    coalescer.enqueue('ws-eight', { f9: 'late' }, 's');
    Object.assign(expected['ws-eight'] ?? {}, { f9: 'late' });
    vi.advanceTimersByTime(150);
    const calls = storeArgs(store.upsert) as [string, object][];
    expect(calls).toHaveLength(3);
    for (const [workspaceId, fields] of calls) {
      expect(fields).toEqual(expected[workspaceId]);
      expect(Object.keys(fields)).toEqual(Object.keys(expected[workspaceId] ?? {}));
    }
  });

  it('keeps __proto__ an own field whichever place it takes in a patch', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', JSON.parse('{"a":1,"b":2,"c":3,"d":4,"__proto__":{"x":1}}'), 's');
    const wide = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`f${i}`, i]));
    coalescer.enqueue('ws-2', { ...wide, ...JSON.parse('{"__proto__":{"x":2}}') }, 's');
    vi.advanceTimersByTime(150);
    for (const [workspaceId, x] of [
      ['ws-1', 1],
      ['ws-2', 2],
    ] as const) {
      const fields = storeArgs(store.upsert).find((call) => call[0] === workspaceId)?.[1];
      expect(Object.getPrototypeOf(fields)).toBe(Object.prototype);
      expect(Object.getOwnPropertyDescriptor(fields, '__proto__')?.value).toEqual({ x });
    }
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('writes each workspace its own fields when every workspace has names of its own', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { maxPending: 10_000 });
    // More name lists than are kept for sharing, and the same names in other orders.
    for (let w = 0; w < 6000; w++) {
      coalescer.enqueue(`ws-${w}`, { [`own-${w}`]: w, shared: w }, 's');
      coalescer.enqueue(`ws-${w}`, w % 2 === 0 ? { b: w, a: w } : { a: w, b: w }, 's');
    }
    vi.advanceTimersByTime(150);
    const calls = storeArgs(store.upsert) as [string, object][];
    expect(calls).toHaveLength(6000);
    for (const [workspaceId, fields] of calls) {
      const w = Number(workspaceId.slice(3));
      expect(Object.entries(fields)).toEqual([
        [`own-${w}`, w],
        ['shared', w],
        ...(w % 2 === 0
          ? [
              ['b', w],
              ['a', w],
            ]
          : [
              ['a', w],
              ['b', w],
            ]),
      ]);
    }
  });

  it('does not keep a reference to the caller’s patch', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    const patch = { a: 1 };
    coalescer.enqueue('ws-1', patch, 's');
    patch.a = 2;
    vi.advanceTimersByTime(150);
    expect(store.upsert).toHaveStoreCall('ws-1', { a: 1 }, 's');
  });
});

describe('EventCoalescer sources', () => {
  it('passes sources in first-seen order, each once, joined with +', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { a: 1 }, 'event:b');
    coalescer.enqueue('ws-1', { a: 2 }, 'event:a');
    coalescer.enqueue('ws-1', { a: 3 }, 'event:b');
    coalescer.enqueue('ws-1', { a: 4 }, 'event:c');
    vi.advanceTimersByTime(150);
    expect(store.upsert).toHaveStoreCall('ws-1', { a: 4 }, 'event:b+event:a+event:c');
  });

  it('keeps each workspace’s own order when workspaces see the same sources in other orders', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    const orders = [
      ['event:a', 'event:b', 'event:c'],
      ['event:c', 'event:a', 'event:b'],
      ['event:a', 'event:c'],
      ['event:a', 'event:b', 'event:c'],
    ];
    orders.forEach((order, i) => {
      for (const source of order) coalescer.enqueue(`ws-${i}`, { i }, source);
      // A repeated source adds nothing, and leaves the other workspaces' lists alone.
      coalescer.enqueue(`ws-${i}`, { i }, order[0] as string);
    });
    vi.advanceTimersByTime(150);
    const labels = storeArgs(store.upsert).map((call) => [call[0], call[2]]);
    expect(labels).toEqual(orders.map((order, i) => [`ws-${i}`, order.join('+')]));
  });

  it('labels every write right when each event brings a source of its own', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { maxPending: 20_000 });
    // More combinations than the coalescer shares: past that bound, each patch has its own.
    for (let i = 0; i < 10_000; i++) {
      coalescer.enqueue(`ws-${i}`, { i }, 'event:common');
      coalescer.enqueue(`ws-${i}`, { i }, `event:${i}`);
      coalescer.enqueue(`ws-${i}`, { i }, `event:${i}-again`);
    }
    vi.advanceTimersByTime(150);
    const calls = storeArgs(store.upsert);
    expect(calls).toHaveLength(10_000);
    for (const [workspaceId, , source] of calls) {
      const i = String(workspaceId).slice(3);
      expect(source).toBe(`event:common+event:${i}+event:${i}-again`);
    }
  });
});

describe('EventCoalescer immediate', () => {
  it('writes at once, taking the pending fields along', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { a: 1 }, 'event:a');
    coalescer.enqueue('ws-1', { b: 2 }, 'event:b', { immediate: true });
    expect(store.upsert).toHaveBeenCalledTimes(1);
    expect(store.upsert).toHaveStoreCall('ws-1', { a: 1, b: 2 }, 'event:a+event:b');
    expect(coalescer.pendingCount).toBe(0);
    vi.advanceTimersByTime(1000);
    expect(store.upsert).toHaveBeenCalledTimes(1);
  });

  it('leaves other workspaces to their windows', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-2', { a: 1 }, 's');
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    expect(storeArgs(store.upsert).map((call) => call[0])).toEqual(['ws-1']);
    vi.advanceTimersByTime(150);
    expect(storeArgs(store.upsert).map((call) => call[0])).toEqual(['ws-1', 'ws-2']);
  });
});

describe('EventCoalescer remove', () => {
  it('removes at once and drops the pending patch', async () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    const removed = coalescer.remove('ws-1');
    expect(store.remove).toHaveStoreCall('ws-1');
    await removed;
    vi.advanceTimersByTime(1000);
    expect(store.upsert).not.toHaveBeenCalled();
    expect(coalescer.stats()).toMatchObject({ removed: 1, pending: 0 });
  });

  it('waits for an upsert in flight, then removes', async () => {
    const { store, calls } = gatedStore();
    const coalescer = new EventCoalescer(store, { canCreate: () => true });
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    expect(calls.map((c) => c.method)).toEqual(['upsert']);
    const removed = coalescer.remove('ws-1');
    await settle();
    expect(calls.map((c) => c.method)).toEqual(['upsert']);
    calls[0]?.gate.resolve(undefined);
    await settle();
    expect(calls.map((c) => c.method)).toEqual(['upsert', 'remove']);
    calls[1]?.gate.resolve(undefined);
    await removed;
    expect(coalescer.stats().removed).toBe(1);
  });

  it('does not retry an upsert that failed after the workspace was removed', async () => {
    const { store, calls } = gatedStore();
    const onError = vi.fn();
    const coalescer = new EventCoalescer(store, { canCreate: () => true, onError });
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    const removed = coalescer.remove('ws-1');
    calls[0]?.gate.reject(new Error('down'));
    await settle();
    calls[1]?.gate.resolve(undefined);
    await removed;
    vi.advanceTimersByTime(10_000);
    await settle();
    expect(calls.map((c) => c.method)).toEqual(['upsert', 'remove']);
    expect(onError).not.toHaveBeenCalled();
  });

  it('writes a patch enqueued after the removal once the removal is done', async () => {
    const { store, calls } = gatedStore();
    const coalescer = new EventCoalescer(store, { canCreate: () => true });
    const removed = coalescer.remove('ws-1');
    coalescer.enqueue('ws-1', { a: 2 }, 's', { immediate: true });
    expect(calls.map((c) => c.method)).toEqual(['remove']);
    calls[0]?.gate.resolve(undefined);
    await removed;
    await settle();
    expect(calls.map((c) => c.method)).toEqual(['remove', 'upsert']);
    expect(calls[1]?.args).toEqual(['ws-1', { a: 2 }, 's']);
  });

  it('retries a failing removal and reports the final failure', async () => {
    const store = syncStore();
    store.remove.mockImplementation(() => {
      throw new Error('down');
    });
    const onError = vi.fn();
    const coalescer = new EventCoalescer(store, { retry: { attempts: 3, jitter: 0 }, onError });
    const removed = coalescer.remove('ws-1');
    expect(store.remove).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(100);
    expect(store.remove).toHaveBeenCalledTimes(2);
    vi.advanceTimersByTime(200);
    expect(store.remove).toHaveBeenCalledTimes(3);
    await removed;
    expect(onError).toHaveBeenCalledTimes(1);
    expect(onError.mock.calls[0]?.[1]).toEqual({ operation: 'remove', workspaceId: 'ws-1' });
  });
});

describe('EventCoalescer unknown-workspace rule', () => {
  it('skips a patch for a workspace the store does not know and cannot create', () => {
    const store = syncStore(() => false);
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { status: 'READY' }, 's');
    vi.advanceTimersByTime(150);
    expect(store.getByWorkspaceId).toHaveStoreCall('ws-1');
    expect(store.upsert).not.toHaveBeenCalled();
    expect(coalescer.stats().skipped).toBe(1);
  });

  it('warns once at the first skip, naming the workspace, the rule and how to change it; later skips are debug', () => {
    const store = syncStore(() => false);
    const logger = { debug: vi.fn(), warn: vi.fn() };
    const coalescer = new EventCoalescer(store, { logger });
    for (const id of ['ws-1', 'ws-2', 'ws-3']) coalescer.enqueue(id, { status: 'READY' }, 's');
    vi.advanceTimersByTime(150);
    expect(coalescer.stats().skipped).toBe(3);
    expect(logger.warn).toHaveBeenCalledTimes(1);
    const [context, message] = logger.warn.mock.calls[0] as [object, string];
    expect(context).toEqual({ workspaceId: 'ws-1', source: 's' });
    expect(message).toMatch(/skipped the write of ws-1/);
    expect(message).toMatch(/canCreate/);
    expect(message).toMatch(/projectId/);
    expect(message).toMatch(/Seed the store/);
    expect(logger.debug.mock.calls.map(([c]) => c)).toEqual([
      { workspaceId: 'ws-2', source: 's' },
      { workspaceId: 'ws-3', source: 's' },
    ]);
  });

  it.each([[null], [''], [0], [false]])(
    'treats a projectId of %j as absent: an unknown workspace is not created',
    (projectId) => {
      const store = syncStore(() => false);
      const coalescer = new EventCoalescer(store);
      coalescer.enqueue('ws-1', { projectId, status: 'READY' }, 's');
      vi.advanceTimersByTime(150);
      expect(store.getByWorkspaceId).toHaveStoreCall('ws-1');
      expect(store.upsert).not.toHaveBeenCalled();
      expect(coalescer.stats().skipped).toBe(1);
    },
  );

  it('treats a store answering null as not knowing the workspace', () => {
    const store = syncStore();
    store.getByWorkspaceId.mockReturnValue(null as never);
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { status: 'READY' }, 's');
    vi.advanceTimersByTime(150);
    expect(store.upsert).not.toHaveBeenCalled();
    expect(coalescer.stats().skipped).toBe(1);
  });

  it('writes a patch for a known workspace without projectId', () => {
    const store = syncStore(() => true);
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { status: 'READY' }, 's');
    vi.advanceTimersByTime(150);
    expect(store.upsert).toHaveStoreCall('ws-1', { status: 'READY' }, 's');
  });

  it('creates an unknown workspace when the patch has a projectId', () => {
    const store = syncStore(() => false);
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { projectId: 'p-1' }, 's');
    vi.advanceTimersByTime(150);
    expect(store.upsert).toHaveStoreCall('ws-1', { projectId: 'p-1' }, 's');
  });

  it('applies the rule in flushAll too', async () => {
    const store = syncStore((id) => id === 'known');
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('known', { a: 1 }, 's');
    coalescer.enqueue('unknown', { a: 1 }, 's');
    await coalescer.flushAll();
    expect(storeArgs(store.upsert).map((call) => call[0])).toEqual(['known']);
    expect(coalescer.stats().skipped).toBe(1);
  });

  it('uses a custom canCreate on the merged fields', () => {
    const store = syncStore(() => false);
    const canCreate = vi.fn((fields: Record<string, unknown>) => fields.name !== undefined);
    const coalescer = new EventCoalescer(store, { canCreate });
    coalescer.enqueue('ws-1', { name: 'x' }, 's');
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    vi.advanceTimersByTime(150);
    expect(canCreate).toHaveBeenCalledWith({ name: 'x', a: 1 });
    expect(store.upsert).toHaveBeenCalledTimes(1);
  });
});

describe('EventCoalescer flush, flushAll and close', () => {
  it('flushAll writes every pending patch synchronously', async () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    coalescer.enqueue('ws-2', { a: 2 }, 's');
    const done = coalescer.flushAll();
    expect(store.upsert).toHaveBeenCalledTimes(2);
    await done;
    expect(coalescer.pendingCount).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('flush writes one workspace and leaves the others pending', async () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    coalescer.enqueue('ws-2', { a: 2 }, 's');
    await coalescer.flush('ws-2');
    expect(storeArgs(store.upsert).map((call) => call[0])).toEqual(['ws-2']);
    expect(coalescer.pendingCount).toBe(1);
  });

  it('flushAll resolves only after async writes settle', async () => {
    const { store, calls } = gatedStore();
    const coalescer = new EventCoalescer(store, { canCreate: () => true });
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    let settled = false;
    const done = coalescer.flushAll().then(() => {
      settled = true;
    });
    await settle();
    expect(settled).toBe(false);
    calls[0]?.gate.resolve(undefined);
    await done;
    expect(settled).toBe(true);
  });

  it('refuses enqueues after close, warns once and counts them as dropped', async () => {
    const store = syncStore();
    const warn = vi.fn();
    const coalescer = new EventCoalescer(store, { logger: { warn } });
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    await coalescer.close();
    expect(store.upsert).toHaveBeenCalledTimes(1);
    coalescer.enqueue('ws-1', { a: 2 }, 's');
    coalescer.enqueue('ws-2', { a: 3 }, 's');
    vi.advanceTimersByTime(1000);
    expect(store.upsert).toHaveBeenCalledTimes(1);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(coalescer.stats().dropped).toBe(2);
  });

  it('close is idempotent and leaves no timer', async () => {
    const coalescer = new EventCoalescer(syncStore());
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    const first = coalescer.close();
    expect(coalescer.close()).toBe(first);
    await first;
    expect(vi.getTimerCount()).toBe(0);
  });

  it('close reports what a hung store never finished after drainTimeoutMs', async () => {
    const { store, calls } = gatedStore();
    const onError = vi.fn();
    const coalescer = new EventCoalescer(store, {
      canCreate: () => true,
      onError,
      drainTimeoutMs: 1000,
    });
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    let closed = false;
    const closing = coalescer.close().then(() => {
      closed = true;
    });
    expect(calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(999);
    expect(closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await closing;
    expect(onError).toHaveBeenCalledTimes(1);
    expect(onError.mock.calls[0]?.[1]).toEqual({
      operation: 'upsert',
      workspaceId: 'ws-1',
      source: 's',
      fields: { a: 1 },
    });
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('EventCoalescer maxPending', () => {
  it('writes the oldest pending workspace early past the bound', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { maxPending: 2 });
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    coalescer.enqueue('ws-2', { a: 1 }, 's');
    coalescer.enqueue('ws-1', { a: 2 }, 's');
    expect(store.upsert).not.toHaveBeenCalled();
    coalescer.enqueue('ws-3', { a: 1 }, 's');
    expect(storeArgs(store.upsert)).toEqual([['ws-1', { a: 2 }, 's']]);
    expect(coalescer.pendingCount).toBe(2);
  });
});

/** Moves the fake clock past every stamp the process-wide store clock has handed out. */
function clockPastEveryStamp(): number {
  const probe = syncStore();
  new EventCoalescer(probe, { timestamps: true }).enqueue('probe', {}, 's', { immediate: true });
  const base = Math.ceil(Number(storeArgs(probe.upsert)[0]?.[3] ?? 0)) + 1000;
  vi.setSystemTime(base);
  return base;
}

describe('EventCoalescer timestamps', () => {
  it('passes strictly increasing timestamps to upsert and remove, never ahead of the clock', async () => {
    const base = clockPastEveryStamp();
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { timestamps: true });
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    coalescer.enqueue('ws-2', { a: 1 }, 's', { immediate: true });
    await coalescer.remove('ws-3');
    const stamps = [
      ...storeArgs(store.upsert).map((call) => call[3] as number),
      storeArgs(store.remove)[0]?.[1] as number,
    ];
    expect(stamps[0]).toBe(base);
    expect(stamps[1]).toBeGreaterThan(base);
    expect(stamps[2]).toBeGreaterThan(stamps[1] as number);
    expect(stamps[2]).toBeLessThan(base + 1);
    vi.advanceTimersByTime(100);
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    expect(storeArgs(store.upsert)[2]?.[3]).toBe(base + 100);
  });

  it('shares one clock between coalescers: a later write always carries a later stamp', () => {
    clockPastEveryStamp();
    const store = createMemorySnapshotStore();
    const first = new EventCoalescer(store, { timestamps: true, canCreate: () => true });
    const second = new EventCoalescer(store, { timestamps: true, canCreate: () => true });
    for (let i = 0; i < 1000; i++) first.enqueue(`ws-${i}`, { status: 'first' }, 'a');
    void first.flushAll();
    second.enqueue('ws-999', { status: 'second' }, 'b', { immediate: true });
    expect(store.getByWorkspaceId('ws-999')?.fields.status).toBe('second');
    expect(store.getByWorkspaceId('ws-999')?.updatedAt).toBeLessThanOrEqual(Date.now() + 1);
  });

  it('keeps the next collector’s write after configureEventCollector is called again', async () => {
    clockPastEveryStamp();
    const store = createMemorySnapshotStore();
    const emitter = new EventEmitter();
    const deps = {
      store,
      timestamps: true,
      canCreate: () => true,
      sources: [
        {
          emitter,
          event: 'status',
          map: (id: string, status: string) => ({ workspaceId: id, fields: { status } }),
        },
      ],
    };
    configureEventCollector(deps);
    for (let i = 0; i < 1000; i++) emitter.emit('status', `ws-${i}`, 'old');
    configureEventCollector(deps);
    emitter.emit('status', 'ws-999', 'new');
    await stopEventCollector();
    const entry = store.getByWorkspaceId('ws-999');
    expect(entry?.fields.status).toBe('new');
    expect(entry?.updatedAt).toBeLessThanOrEqual(Date.now() + 1);
  });

  it('passes no timestamp argument by default', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    expect(storeArgs(store.upsert)[0]).toHaveLength(3);
  });
});

describe('EventCoalescer with an async store', () => {
  it('keeps one store call in flight per workspace and merges what arrives meanwhile', async () => {
    const { store, calls } = gatedStore();
    const coalescer = new EventCoalescer(store, { canCreate: () => true });
    coalescer.enqueue('ws-1', { a: 1 }, 'e1', { immediate: true });
    coalescer.enqueue('ws-1', { b: 1 }, 'e2', { immediate: true });
    coalescer.enqueue('ws-1', { a: 2 }, 'e3');
    vi.advanceTimersByTime(150);
    expect(calls).toHaveLength(1);
    expect(coalescer.stats().inFlight).toBe(1);
    calls[0]?.gate.resolve(undefined);
    await settle();
    expect(calls).toHaveLength(2);
    expect(calls[1]?.args).toEqual(['ws-1', { b: 1, a: 2 }, 'e2+e3']);
    calls[1]?.gate.resolve(undefined);
    await settle();
    expect(coalescer.stats()).toMatchObject({ flushed: 2, inFlight: 0, pending: 0 });
  });

  it('writes other workspaces while one is in flight', () => {
    const { store, calls } = gatedStore();
    const coalescer = new EventCoalescer(store, { canCreate: () => true });
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    coalescer.enqueue('ws-2', { a: 1 }, 's', { immediate: true });
    expect(calls.map((c) => c.args[0])).toEqual(['ws-1', 'ws-2']);
  });

  it('waits for an async getByWorkspaceId before writing', async () => {
    const { store, calls } = gatedStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    expect(calls.map((c) => c.method)).toEqual(['getByWorkspaceId']);
    calls[0]?.gate.resolve({ workspaceId: 'ws-1' });
    await settle();
    expect(calls.map((c) => c.method)).toEqual(['getByWorkspaceId', 'upsert']);
  });
});

describe('EventCoalescer retries and failures', () => {
  it('merges a failed patch under newer fields and retries after the delay', async () => {
    const { store, calls } = gatedStore();
    const debug = vi.fn();
    const coalescer = new EventCoalescer(store, {
      canCreate: () => true,
      retry: { jitter: 0 },
      logger: { debug },
    });
    coalescer.enqueue('ws-1', { a: 1, b: 1 }, 'e1', { immediate: true });
    coalescer.enqueue('ws-1', { b: 2 }, 'e2');
    calls[0]?.gate.reject(new Error('down'));
    await settle();
    expect(debug).toHaveBeenCalledWith(
      expect.objectContaining({ workspaceId: 'ws-1', attempt: 1 }),
      'event-coalescer: store call failed; retrying',
    );
    expect(calls).toHaveLength(1);
    vi.advanceTimersByTime(99);
    expect(calls).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(calls).toHaveLength(2);
    expect(calls[1]?.args).toEqual(['ws-1', { a: 1, b: 2 }, 'e1+e2']);
    calls[1]?.gate.resolve(undefined);
    await settle();
    expect(coalescer.stats()).toMatchObject({ retried: 1, flushed: 1, failed: 0, pending: 0 });
  });

  it('doubles the delay and reports the patch to onError after the last attempt', async () => {
    const store = syncStore();
    store.upsert.mockImplementation(() => {
      throw new Error('down');
    });
    const onError = vi.fn();
    const coalescer = new EventCoalescer(store, {
      retry: { attempts: 3, delayMs: 100, jitter: 0 },
      onError,
    });
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    expect(store.upsert).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(100);
    expect(store.upsert).toHaveBeenCalledTimes(2);
    vi.advanceTimersByTime(199);
    expect(store.upsert).toHaveBeenCalledTimes(2);
    vi.advanceTimersByTime(1);
    expect(store.upsert).toHaveBeenCalledTimes(3);
    expect(onError).toHaveBeenCalledTimes(1);
    const [error, context] = onError.mock.calls[0] ?? [];
    expect(error).toBeInstanceOf(Error);
    expect(context).toEqual({
      operation: 'upsert',
      workspaceId: 'ws-1',
      source: 's',
      fields: { a: 1 },
    });
    expect(coalescer.stats()).toMatchObject({ failed: 1, retried: 2, pending: 0 });
    vi.advanceTimersByTime(10_000);
    expect(store.upsert).toHaveBeenCalledTimes(3);
  });

  it('survives a store that throws synchronously inside the timer', () => {
    const store = syncStore();
    store.upsert.mockImplementation(() => {
      throw new Error('boom');
    });
    const coalescer = new EventCoalescer(store, { retry: { attempts: 1 } });
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    coalescer.enqueue('ws-2', { a: 1 }, 's');
    expect(() => vi.advanceTimersByTime(150)).not.toThrow();
    expect(store.upsert).toHaveBeenCalledTimes(2);
    expect(coalescer.stats().failed).toBe(2);
  });

  it('reports a failing getByWorkspaceId with its operation', () => {
    const store = syncStore();
    store.getByWorkspaceId.mockImplementation(() => {
      throw new Error('db down');
    });
    const onError = vi.fn();
    const coalescer = new EventCoalescer(store, { retry: { attempts: 1 }, onError });
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    expect(onError.mock.calls[0]?.[1]).toMatchObject({
      operation: 'getByWorkspaceId',
      workspaceId: 'ws-1',
    });
  });

  it('survives an onError that throws', () => {
    const store = syncStore();
    store.upsert.mockImplementation(() => {
      throw new Error('down');
    });
    const coalescer = new EventCoalescer(store, {
      retry: { attempts: 1 },
      onError: () => {
        throw new Error('handler bug');
      },
    });
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    expect(() => vi.advanceTimersByTime(150)).not.toThrow();
  });

  it('flush writes a patch waiting out its back-off at once, its attempts still counting', async () => {
    const store = syncStore();
    store.upsert.mockImplementation(() => {
      throw new Error('down');
    });
    const onError = vi.fn();
    const coalescer = new EventCoalescer(store, {
      retry: { attempts: 2, delayMs: 1000, jitter: 0 },
      onError,
    });
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    expect(store.upsert).toHaveBeenCalledTimes(1);
    await coalescer.flush('ws-1');
    expect(store.upsert).toHaveBeenCalledTimes(2);
    expect(onError).toHaveBeenCalledTimes(1);
  });

  it('close tries a failing patch at once, then at its back-off, and reports it at drainTimeoutMs', async () => {
    const store = syncStore();
    store.upsert.mockImplementation(() => {
      throw new Error('down');
    });
    const onError = vi.fn();
    const coalescer = new EventCoalescer(store, {
      retry: { delayMs: 1000, jitter: 0 },
      drainTimeoutMs: 2500,
      onError,
    });
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    const closed = coalescer.close();
    expect(store.upsert).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(store.upsert).toHaveBeenCalledTimes(2);
    expect(onError).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1500);
    await closed;
    expect(store.upsert).toHaveBeenCalledTimes(2);
    expect(onError).toHaveBeenCalledTimes(1);
    expect(onError.mock.calls[0]?.[0]).toMatchObject({ code: 'EC_DRAIN_TIMEOUT' });
    expect(onError.mock.calls[0]?.[1]).toEqual({
      operation: 'upsert',
      workspaceId: 'ws-1',
      source: 's',
      fields: { a: 1 },
    });
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('EventCoalescer bad arguments', () => {
  const store = syncStore();
  it.each([
    [{ windowMs: -1 }, RangeError, /`windowMs`.*`-1` \(number\)/],
    [{ windowMs: Number.POSITIVE_INFINITY }, RangeError, /`windowMs`/],
    [{ windowMs: Number.NaN }, RangeError, /`windowMs`.*NaN/],
    [{ maxWaitMs: -5 }, RangeError, /`maxWaitMs`.*`-5`/],
    [{ maxWaitMs: Number.NaN }, RangeError, /`maxWaitMs`/],
    [{ maxPending: 0 }, RangeError, /`maxPending`.*`0`/],
    [{ retry: { attempts: 0 } }, RangeError, /`retry.attempts`/],
  ])('rejects options %o', (options, type, message) => {
    expect(() => new EventCoalescer(store, options)).toThrow(type);
    expect(() => new EventCoalescer(store, options)).toThrow(message);
  });

  it('accepts null-prototype objects and parsed JSON with its own constructor key', () => {
    const coalescer = new EventCoalescer(syncStore());
    expect(() => coalescer.enqueue('ws-1', Object.create(null), 's')).not.toThrow();
    expect(() => coalescer.enqueue('ws-1', JSON.parse('{"constructor": 1}'), 's')).not.toThrow();
  });

  it('accepts maxWaitMs Infinity', () => {
    expect(() => new EventCoalescer(store, { maxWaitMs: Number.POSITIVE_INFINITY })).not.toThrow();
  });

  it('rejects a store without the three methods', () => {
    expect(() => new EventCoalescer({ upsert() {} } as never)).toThrow(TypeError);
    expect(() => new EventCoalescer(null as never)).toThrow(/`store`.*`null`/);
  });

  it.each([[''], [42], [undefined]])('rejects workspaceId %j', (workspaceId) => {
    const coalescer = new EventCoalescer(store);
    expect(() => coalescer.enqueue(workspaceId as never, {}, 's')).toThrow(TypeError);
    expect(() => coalescer.enqueue(workspaceId as never, {}, 's')).toThrow(/`workspaceId`/);
  });

  it.each([[null], [undefined], [[1]], ['x'], [7], [new Date()], [new Map()]])(
    'rejects fields %j',
    (fields) => {
      const coalescer = new EventCoalescer(store);
      expect(() => coalescer.enqueue('ws-1', fields as never, 's')).toThrow(
        /`fields`.*plain object/,
      );
    },
  );
});

describe('EventCoalescer with real timers', () => {
  it('writes one merged patch after a short real window', async () => {
    vi.useRealTimers();
    const written = deferred<unknown[]>();
    const store = {
      upsert: (...args: unknown[]) => written.resolve(args),
      getByWorkspaceId: () => ({}),
      remove: () => {},
    };
    const coalescer = new EventCoalescer(store, { windowMs: 20 });
    const started = Date.now();
    coalescer.enqueue('ws-1', { a: 1 }, 'e1');
    coalescer.enqueue('ws-1', { b: 2 }, 'e2');
    const args = await written.promise;
    expect(meaningfulArgs(args)).toEqual(['ws-1', { a: 1, b: 2 }, 'e1+e2']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(19);
    await coalescer.close();
  });
});

describe('EventCoalescer durations of any length', () => {
  const LONG_MS = 2 ** 31 + 5000;

  it.each([
    ['windowMs', { windowMs: LONG_MS, maxWaitMs: Number.POSITIVE_INFINITY }],
    ['maxWaitMs', { windowMs: LONG_MS + 10, maxWaitMs: LONG_MS }],
  ])('waits a %s past 2^31 ms in full', (_name, options) => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, options);
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    vi.advanceTimersByTime(10);
    expect(store.upsert).not.toHaveBeenCalled();
    vi.advanceTimersByTime(LONG_MS - 11);
    expect(store.upsert).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(store.upsert).toHaveBeenCalledTimes(1);
  });

  it('waits out a retry back-off past 2^31 ms in full', () => {
    let calls = 0;
    const store = syncStore();
    store.upsert.mockImplementation(() => {
      if (++calls === 1) throw new Error('first');
    });
    const coalescer = new EventCoalescer(store, {
      retry: { delayMs: LONG_MS, maxDelayMs: LONG_MS, jitter: 0 },
    });
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    vi.advanceTimersByTime(LONG_MS - 1);
    expect(store.upsert).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(1);
    expect(store.upsert).toHaveBeenCalledTimes(2);
  });

  it('waits a drainTimeoutMs past 2^31 ms in full', async () => {
    const never = new Promise<void>(() => {});
    const onError = vi.fn();
    const coalescer = new EventCoalescer(
      { upsert: () => never, getByWorkspaceId: () => ({}), remove: () => {} },
      { onError, drainTimeoutMs: LONG_MS, callTimeoutMs: Infinity },
    );
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    const closing = coalescer.close();
    await vi.advanceTimersByTimeAsync(1000);
    expect(onError).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(LONG_MS - 1000);
    await closing;
    expect(onError).toHaveBeenCalledTimes(1);
  });

  it('arms no timer Node would cut short: no TimeoutOverflowWarning, no early write', async () => {
    vi.useRealTimers();
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const store = syncStore();
      const coalescer = new EventCoalescer(store, {
        windowMs: LONG_MS,
        maxWaitMs: Number.POSITIVE_INFINITY,
      });
      coalescer.enqueue('ws-1', { a: 1 }, 's');
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(store.upsert).not.toHaveBeenCalled();
      await coalescer.close();
      expect(store.upsert).toHaveBeenCalledTimes(1);
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((warning) => warning.name === 'TimeoutOverflowWarning')).toEqual([]);
  });
});

describe('EventCoalescer with a wall clock that steps back', () => {
  it('writes a patch enqueued after the step windowMs after its event, not with the earlier one', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-a', { a: 1 }, 's');
    vi.advanceTimersByTime(149);
    vi.setSystemTime(Date.now() - 3_600_000);
    coalescer.enqueue('ws-b', { b: 1 }, 's');
    vi.advanceTimersByTime(1);
    expect(storeArgs(store.upsert).map((call) => call[0])).toEqual(['ws-a']);
    vi.advanceTimersByTime(148);
    expect(store.upsert).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(1);
    expect(storeArgs(store.upsert).map((call) => call[0])).toEqual(['ws-a', 'ws-b']);
  });

  it('still writes a quiet patch windowMs after its last enqueue', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    vi.advanceTimersByTime(50);
    vi.setSystemTime(Date.now() - 3_600_000);
    vi.advanceTimersByTime(99);
    expect(store.upsert).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(store.upsert).toHaveBeenCalledTimes(1);
  });

  it('still writes a busy patch within maxWaitMs of its first enqueue', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { windowMs: 100, maxWaitMs: 300 });
    coalescer.enqueue('ws-1', { n: 0 }, 's');
    for (let n = 1; n <= 5; n++) {
      vi.advanceTimersByTime(50);
      // NTP steps the clock back an hour, twice.
      if (n === 2 || n === 4) vi.setSystemTime(Date.now() - 3_600_000);
      coalescer.enqueue('ws-1', { n }, 's');
    }
    expect(store.upsert).not.toHaveBeenCalled();
    vi.advanceTimersByTime(50);
    expect(storeArgs(store.upsert)).toEqual([['ws-1', { n: 5 }, 's']]);
  });

  it('keeps later deadlines exact after the step', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    vi.setSystemTime(Date.now() - 86_400_000);
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    vi.advanceTimersByTime(149);
    expect(store.upsert).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(store.upsert).toHaveBeenCalledTimes(1);
  });
});

describe('EventCoalescer fields that look plain but are not', () => {
  it.each([
    ['an object with an inherited enumerable key', () => Object.create({ a: 1 })],
    ['an array with an own constructor', () => Object.assign([], { constructor: Object })],
    [
      'a class instance with an own constructor',
      () => Object.assign(new Map(), { constructor: Object }),
    ],
  ])('refuses %s with a TypeError', (_label, make) => {
    const coalescer = new EventCoalescer(syncStore());
    expect(() => coalescer.enqueue('ws-1', make(), 's')).toThrow(
      /Expected `fields` to be a plain object/,
    );
    expect(coalescer.stats()).toMatchObject({ enqueued: 0, pending: 0 });
  });

  it('never merges a key inherited from a polluted Object.prototype', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    Object.defineProperty(Object.prototype, 'polluted', {
      value: 'yes',
      enumerable: true,
      configurable: true,
      writable: true,
    });
    try {
      coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    } finally {
      delete (Object.prototype as Record<string, unknown>).polluted;
    }
    expect(Object.keys(storeArgs(store.upsert)[0]?.[1] ?? {})).toEqual(['a']);
  });

  it('is atomic: a getter that throws merges nothing, counts nothing, and throws to the caller', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    const hostile = {
      a: 2,
      get b(): number {
        throw new Error('getter');
      },
    };
    expect(() => coalescer.enqueue('ws-1', hostile, 's2')).toThrow('getter');
    expect(() => coalescer.enqueue('ws-2', hostile, 's2')).toThrow('getter');
    expect(coalescer.stats()).toMatchObject({ enqueued: 1, pending: 1 });
    vi.advanceTimersByTime(150);
    expect(storeArgs(store.upsert)).toEqual([['ws-1', { a: 1 }, 's']]);
  });

  it('is atomic when reading the options throws too', () => {
    const coalescer = new EventCoalescer(syncStore());
    const options = {
      get immediate(): boolean {
        throw new Error('options getter');
      },
    };
    expect(() => coalescer.enqueue('ws-1', { a: 1 }, 's', options)).toThrow('options getter');
    expect(coalescer.stats()).toMatchObject({ enqueued: 0, pending: 0 });
  });

  it('names the argument even when the value fights being described', () => {
    const coalescer = new EventCoalescer(syncStore());
    const hostile = Object.create(
      new Proxy(
        {},
        {
          get() {
            throw new Error('trap');
          },
        },
      ),
    );
    expect(() => coalescer.enqueue('ws-1', hostile, 's')).toThrow(
      'Expected `fields` to be a plain object, got an object',
    );
  });

  it('reads each getter once', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    let reads = 0;
    const fields = {
      get a(): number {
        reads++;
        return 1;
      },
    };
    coalescer.enqueue('ws-1', fields, 's', { immediate: true });
    expect(reads).toBe(1);
    expect(storeArgs(store.upsert)).toEqual([['ws-1', { a: 1 }, 's']]);
  });
});

describe('EventCoalescer pending and waiting', () => {
  it('keeps pendingCount within maxPending with a slow store; due patches wait apart', async () => {
    const { store, calls } = gatedStore();
    const coalescer = new EventCoalescer(store, { maxPending: 3, canCreate: () => true });
    let highest = 0;
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 10; i++) {
        coalescer.enqueue(`ws-${i}`, { round }, 's');
        highest = Math.max(highest, coalescer.pendingCount, coalescer.stats().pending);
      }
    }
    expect(highest).toBe(3);
    const stats = coalescer.stats();
    expect(stats.pending).toBe(3);
    // Every workspace with a call in flight holds at most one merged waiting patch.
    expect(stats.waiting).toBeLessThanOrEqual(calls.length);
    expect(stats.waiting).toBeGreaterThan(0);
    for (const call of calls) call.gate.resolve(undefined);
    await settle();
  });
});

describe('EventCoalescer leading edge', () => {
  it('keeps a maxWaitMs shorter than windowMs for what follows a leading write', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { windowMs: 150, maxWaitMs: 20, leading: true });
    coalescer.enqueue('ws-1', { n: 0 }, 's');
    expect(store.upsert).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(25);
    coalescer.enqueue('ws-1', { n: 1 }, 's');
    vi.advanceTimersByTime(19);
    expect(store.upsert).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(1);
    expect(storeArgs(store.upsert)[1]).toEqual(['ws-1', { n: 1 }, 's']);
  });

  it.each([
    [150, 1000],
    [150, 20],
  ])(
    'spaces the writes of a steady stream (windowMs %i, maxWaitMs %i) by the shorter of the two',
    (windowMs, maxWaitMs) => {
      const writesAt: number[] = [];
      const store = syncStore();
      store.upsert.mockImplementation(() => {
        writesAt.push(performance.now());
      });
      const coalescer = new EventCoalescer(store, { windowMs, maxWaitMs, leading: true });
      for (let ms = 0; ms < 2500; ms++) {
        coalescer.enqueue('ws-1', { ms }, 's');
        vi.advanceTimersByTime(1);
      }
      const spacing = Math.min(windowMs, maxWaitMs);
      const gaps = writesAt.slice(1).map((at, i) => at - (writesAt[i] as number));
      expect(writesAt.length).toBeGreaterThanOrEqual(3);
      expect(Math.min(...gaps)).toBeGreaterThanOrEqual(spacing);
      expect(writesAt.length).toBeLessThanOrEqual(Math.floor(2500 / spacing) + 1);
    },
  );

  it('writes the first event of a quiet workspace in the same tick', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { leading: true });
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    expect(storeArgs(store.upsert)).toEqual([['ws-1', { a: 1 }, 's']]);
    expect(coalescer.pendingCount).toBe(0);
  });

  it('coalesces the burst after it into one trailing write, windowMs after its last event', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { leading: true });
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    for (let i = 2; i <= 5; i++) {
      vi.advanceTimersByTime(20);
      coalescer.enqueue('ws-1', { a: i }, 's');
    }
    expect(store.upsert).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(149);
    expect(store.upsert).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(1);
    expect(storeArgs(store.upsert)[1]).toEqual(['ws-1', { a: 5 }, 's']);
  });

  it('makes no trailing write when nothing came after the leading one', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { leading: true });
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    vi.advanceTimersByTime(5000);
    expect(store.upsert).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('is quiet again only windowMs after the last write started', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { leading: true });
    coalescer.enqueue('ws-1', { a: 1 }, 's'); // leading, at 0
    vi.advanceTimersByTime(100);
    coalescer.enqueue('ws-1', { a: 2 }, 's'); // pending; trailing at 250
    vi.advanceTimersByTime(150);
    expect(store.upsert).toHaveBeenCalledTimes(2);
    vi.advanceTimersByTime(149);
    coalescer.enqueue('ws-1', { a: 3 }, 's'); // 149 ms after the trailing write: not quiet
    expect(store.upsert).toHaveBeenCalledTimes(2);
    vi.advanceTimersByTime(150);
    expect(store.upsert).toHaveBeenCalledTimes(3);
    vi.advanceTimersByTime(150);
    coalescer.enqueue('ws-1', { a: 4 }, 's'); // quiet: written at once
    expect(store.upsert).toHaveBeenCalledTimes(4);
  });

  it('keeps maxWaitMs for a steady stream: at most one write per window, plus one', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { leading: true, maxWaitMs: 400 });
    for (let t = 0; t < 1000; t += 50) {
      coalescer.enqueue('ws-1', { t }, 's');
      vi.advanceTimersByTime(50);
    }
    const writes = storeArgs(store.upsert).length;
    expect(writes).toBeGreaterThanOrEqual(3);
    expect(writes).toBeLessThanOrEqual(1000 / 150 + 1);
  });

  it('does not lead while a store call of the workspace is in flight', async () => {
    const { store, calls } = gatedStore();
    const coalescer = new EventCoalescer(store, { leading: true, canCreate: () => true });
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    expect(calls).toHaveLength(1);
    vi.advanceTimersByTime(500);
    coalescer.enqueue('ws-1', { a: 2 }, 's');
    expect(calls).toHaveLength(1);
    vi.advanceTimersByTime(150);
    expect(calls).toHaveLength(1);
    calls[0]?.gate.resolve(undefined);
    await settle();
    expect(calls.map((call) => call.args[1])).toEqual([{ a: 1 }, { a: 2 }]);
  });

  it('leaves a removal in between intact: the next event waits out the window', async () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { leading: true });
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    await coalescer.remove('ws-1');
    coalescer.enqueue('ws-1', { a: 2 }, 's');
    expect(store.upsert).toHaveBeenCalledTimes(1);
    expect(store.remove).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(150);
    expect(storeArgs(store.upsert)[1]).toEqual(['ws-1', { a: 2 }, 's']);
  });

  it('forgets a quiet workspace once the window has passed: no timer is left behind', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { leading: true });
    for (let i = 0; i < 1000; i++) coalescer.enqueue(`ws-${i}`, { a: 1 }, 's');
    expect(store.upsert).toHaveBeenCalledTimes(1000);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(150);
    expect(vi.getTimerCount()).toBe(0);
    coalescer.enqueue('ws-1', { a: 2 }, 's');
    expect(store.upsert).toHaveBeenCalledTimes(1001);
  });

  it('is refused when not a boolean', () => {
    expect(() => new EventCoalescer(syncStore(), { leading: 'yes' as never })).toThrow(
      /Expected `leading` to be a boolean/,
    );
  });

  it('reaches the coalescer through the collector', () => {
    const emitter = new EventEmitter();
    const store = createMemorySnapshotStore();
    createEventCollector({
      store,
      leading: true,
      canCreate: () => true,
      sources: [
        { emitter, event: 'x', map: (id: string) => ({ workspaceId: id, fields: { n: 1 } }) },
      ],
    });
    emitter.emit('x', 'ws-1');
    expect(store.getByWorkspaceId('ws-1')?.fields).toEqual({ n: 1 });
  });
});

describe('EventCoalescer with a wall clock that jumps ahead', () => {
  it('makes nothing due early: deadlines count real elapsed time', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { windowMs: 100, maxWaitMs: 300 });
    coalescer.enqueue('ws-1', { n: 0 }, 's');
    vi.setSystemTime(Date.now() + 3_600_000);
    coalescer.enqueue('ws-1', { n: 1 }, 's');
    coalescer.enqueue('ws-2', { n: 1 }, 's');
    vi.advanceTimersByTime(99);
    expect(store.upsert).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(storeArgs(store.upsert).map((call) => call[0])).toEqual(['ws-1', 'ws-2']);
  });
});

/**
 * A synchronous loop as the coalescer sees it: `performance.now()` moves, timers do not fire.
 * Returns how to move that clock on.
 */
function busyEventLoop(): (ms: number) => void {
  let busyMs = 0;
  const realNow = performance.now.bind(performance);
  vi.spyOn(performance, 'now').mockImplementation(() => realNow() + busyMs);
  return (ms) => {
    busyMs += ms;
  };
}

describe('EventCoalescer maxWaitMs while the event loop is busy', () => {
  it('writes an overdue patch from the enqueue itself when the timer could not run', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { maxWaitMs: 128 });
    const busyFor = busyEventLoop();
    coalescer.enqueue('ws-1', { n: 0 }, 's');
    busyFor(127);
    coalescer.enqueue('ws-1', { n: 1 }, 's');
    expect(store.upsert).not.toHaveBeenCalled();
    busyFor(1);
    coalescer.enqueue('ws-1', { n: 2 }, 's');
    expect(storeArgs(store.upsert)).toEqual([['ws-1', { n: 2 }, 's']]);
    vi.restoreAllMocks();
  });

  it('keeps maxWaitMs in a real synchronous loop of enqueues', () => {
    vi.useRealTimers();
    const writesAt: number[] = [];
    const started = performance.now();
    const coalescer = new EventCoalescer(
      {
        upsert: () => {
          writesAt.push(performance.now() - started);
        },
        getByWorkspaceId: () => ({}),
        remove: () => {},
      },
      { maxWaitMs: 50, canCreate: () => true },
    );
    while (performance.now() - started < 200) coalescer.enqueue('ws-1', { n: 1 }, 's');
    // Written during the loop, not after it: no timer could have run. (How soon after 50 ms
    // depends on the machine's load; the fake-timer test above pins the exact moment.)
    expect(writesAt.length).toBeGreaterThanOrEqual(2);
    expect(writesAt[0]).toBeLessThan(200);
    void coalescer.close();
  });
});
