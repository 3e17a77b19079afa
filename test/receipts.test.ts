/**
 * Write receipts (`settled`) and read-your-writes (`peek`, `isPending`): every path that ends
 * a patch — landing, skipping, giving up, removal, flush, retries, the drain — settles every
 * receipt, and peek shows exactly what has not landed yet.
 */
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createEventCollector, createMemorySnapshotStore, EventCoalescer } from '../src/index.js';
import { gatedStore, settle, syncStore } from './support/helpers.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** The state of a promise, readable at any moment: pending, resolved with a value, or rejected. */
function watch<T>(promise: Promise<T>) {
  const state: { status: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } = {
    status: 'pending',
  };
  promise.then(
    (value) => {
      state.status = 'resolved';
      state.value = value;
    },
    (error: unknown) => {
      state.status = 'rejected';
      state.error = error;
    },
  );
  return state;
}

describe('settled(workspaceId)', () => {
  it('resolves "landed" once the merged write holding the fields has landed, not before', async () => {
    const store = createMemorySnapshotStore();
    const coalescer = new EventCoalescer(store, { canCreate: () => true });
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    coalescer.enqueue('ws-1', { b: 2 }, 's');
    const receipt = watch(coalescer.settled('ws-1'));
    vi.advanceTimersByTime(149);
    await settle();
    expect(receipt.status).toBe('pending');
    vi.advanceTimersByTime(1);
    await settle();
    expect(receipt).toEqual({ status: 'resolved', value: 'landed' });
    expect(store.getByWorkspaceId('ws-1')?.fields).toEqual({ a: 1, b: 2 });
  });

  it('resolves at once when nothing is outstanding', async () => {
    const coalescer = new EventCoalescer(syncStore());
    await expect(coalescer.settled('ws-1')).resolves.toBe('landed');
  });

  it('waits for the call in flight and the patch behind it, both', async () => {
    const { store, calls } = gatedStore();
    const coalescer = new EventCoalescer(store, { canCreate: () => true });
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    coalescer.enqueue('ws-1', { b: 2 }, 's');
    const receipt = watch(coalescer.settled('ws-1'));
    calls[0]?.gate.resolve(undefined);
    await settle();
    expect(receipt.status).toBe('pending');
    vi.advanceTimersByTime(150);
    expect(calls).toHaveLength(2);
    calls[1]?.gate.resolve(undefined);
    await settle();
    expect(receipt).toEqual({ status: 'resolved', value: 'landed' });
  });

  it('covers only what was enqueued before it: a later enqueue does not hold it', async () => {
    const { store, calls } = gatedStore();
    const coalescer = new EventCoalescer(store, { canCreate: () => true });
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    const receipt = watch(coalescer.settled('ws-1'));
    coalescer.enqueue('ws-1', { b: 2 }, 's');
    calls[0]?.gate.resolve(undefined);
    await settle();
    expect(receipt).toEqual({ status: 'resolved', value: 'landed' });
  });

  it('resolves "skipped" when the store did not know the workspace and canCreate refused', async () => {
    const coalescer = new EventCoalescer(syncStore(() => false));
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    const receipt = coalescer.settled('ws-1');
    vi.advanceTimersByTime(150);
    await expect(receipt).resolves.toBe('skipped');
  });

  it('rejects with the error reported to onError when the write is given up', async () => {
    const onError = vi.fn();
    const failure = new Error('down');
    const coalescer = new EventCoalescer(
      {
        upsert: () => {
          throw failure;
        },
        getByWorkspaceId: () => ({}),
        remove: () => {},
      },
      { onError, retry: { attempts: 2, delayMs: 10, jitter: 0 } },
    );
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    const receipt = watch(coalescer.settled('ws-1'));
    vi.advanceTimersByTime(150);
    await settle();
    expect(receipt.status).toBe('pending');
    vi.advanceTimersByTime(10);
    await settle();
    expect(receipt).toEqual({ status: 'rejected', error: failure });
    expect(onError).toHaveBeenCalledTimes(1);
    expect(onError.mock.calls[0]?.[0]).toBe(failure);
  });

  it('rejects with EC_VALUE_REFUSED at once for a value the store refuses', async () => {
    const coalescer = new EventCoalescer(createMemorySnapshotStore(), {
      canCreate: () => true,
      onError: () => {},
    });
    coalescer.enqueue('ws-1', { tags: new Set(['x']) as never }, 's', { immediate: true });
    await expect(coalescer.settled('ws-1')).resolves.toBe('landed');
    coalescer.enqueue('ws-1', { tags: new Set(['y']) as never }, 's');
    const receipt = coalescer.settled('ws-1');
    vi.advanceTimersByTime(150);
    await expect(receipt).rejects.toMatchObject({ code: 'EC_VALUE_REFUSED' });
  });

  it('lands through retries and back-offs, and a receipt taken during a back-off waits for it', async () => {
    const { store, calls } = gatedStore();
    const coalescer = new EventCoalescer(store, {
      canCreate: () => true,
      retry: { delayMs: 100, jitter: 0 },
    });
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    const first = watch(coalescer.settled('ws-1'));
    calls[0]?.gate.reject(new Error('blip'));
    await settle();
    const second = watch(coalescer.settled('ws-1'));
    await vi.advanceTimersByTimeAsync(100);
    calls[1]?.gate.resolve(undefined);
    await settle();
    expect(first).toEqual({ status: 'resolved', value: 'landed' });
    expect(second).toEqual({ status: 'resolved', value: 'landed' });
  });

  it.each([
    ['pending', false],
    ['waiting behind a call in flight', true],
  ])(
    'rejects with EC_REMOVED when the workspace is removed while its patch is %s',
    async (_label, behindCall) => {
      const { store, calls } = gatedStore();
      const coalescer = new EventCoalescer(store, { canCreate: () => true });
      if (behindCall) {
        coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
        coalescer.enqueue('ws-1', { b: 1 }, 's', { immediate: true });
      } else coalescer.enqueue('ws-1', { b: 1 }, 's');
      const receipt = coalescer.settled('ws-1');
      void coalescer.remove('ws-1');
      calls[0]?.gate.resolve(undefined);
      await settle();
      calls[1]?.gate.resolve(undefined);
      await expect(receipt).rejects.toMatchObject({ code: 'EC_REMOVED' });
    },
  );

  it('is settled by flush and by close, never left waiting', async () => {
    const { store, calls } = gatedStore();
    const coalescer = new EventCoalescer(store, { canCreate: () => true });
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    coalescer.enqueue('ws-2', { a: 1 }, 's');
    const one = watch(coalescer.settled('ws-1'));
    const two = watch(coalescer.settled('ws-2'));
    const flushed = coalescer.flush('ws-1');
    calls[0]?.gate.resolve(undefined);
    await flushed;
    await settle();
    expect(one).toEqual({ status: 'resolved', value: 'landed' });
    const closed = coalescer.close();
    calls[1]?.gate.resolve(undefined);
    await closed;
    await settle();
    expect(two).toEqual({ status: 'resolved', value: 'landed' });
  });

  it('rejects with EC_DRAIN_TIMEOUT when close() gives the write up', async () => {
    const { store } = gatedStore();
    const coalescer = new EventCoalescer(store, {
      canCreate: () => true,
      drainTimeoutMs: 500,
      onError: () => {},
    });
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    const receipt = watch(coalescer.settled('ws-1'));
    const closed = coalescer.close();
    await vi.advanceTimersByTimeAsync(500);
    await closed;
    await settle();
    expect(receipt.status).toBe('rejected');
    expect(receipt.error).toMatchObject({ code: 'EC_DRAIN_TIMEOUT' });
  });

  it('rejects with EC_CLOSED when asked after close() with nothing left to land', async () => {
    const coalescer = new EventCoalescer(syncStore());
    await coalescer.close();
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    await expect(coalescer.settled('ws-1')).rejects.toMatchObject({ code: 'EC_CLOSED' });
  });

  it('settles with the leading edge and with maxPending evicting the oldest', async () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { leading: true, maxPending: 1 });
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    await expect(coalescer.settled('ws-1')).resolves.toBe('landed');
    coalescer.enqueue('ws-1', { a: 2 }, 's');
    const one = watch(coalescer.settled('ws-1'));
    coalescer.enqueue('ws-2', { a: 1 }, 's');
    await settle();
    expect(one).toEqual({ status: 'resolved', value: 'landed' });
  });

  it('refuses a workspaceId that is not a non-empty string', () => {
    const coalescer = new EventCoalescer(syncStore());
    expect(() => coalescer.settled('')).toThrow(/Expected `workspaceId`/);
    expect(() => coalescer.peek(1 as never)).toThrow(/Expected `workspaceId`/);
    expect(() => coalescer.flush(undefined as never)).toThrow(/Expected `workspaceId`/);
  });
});

describe('peek(workspaceId) and isPending(workspaceId)', () => {
  it('show the fields in flight, waiting and pending, merged in that order, until they land', async () => {
    const { store, calls } = gatedStore();
    const coalescer = new EventCoalescer(store, {
      canCreate: () => true,
      retry: { delayMs: 100, jitter: 0 },
    });
    expect(coalescer.peek('ws-1')).toBeUndefined();
    expect(coalescer.isPending('ws-1')).toBe(false);
    coalescer.enqueue('ws-1', { a: 1, b: 1 }, 's', { immediate: true });
    coalescer.enqueue('ws-1', { b: 2, c: undefined }, 's');
    // In flight {a:1, b:1}, pending {b:2}.
    expect(coalescer.peek('ws-1')).toEqual({ a: 1, b: 2 });
    expect(coalescer.isPending('ws-1')).toBe(true);
    // The call fails: during the back-off the failed patch waits, merged under the newer one.
    calls[0]?.gate.reject(new Error('blip'));
    await settle();
    coalescer.enqueue('ws-1', { c: null }, 's');
    expect(coalescer.peek('ws-1')).toEqual({ a: 1, b: 2, c: null });
    await vi.advanceTimersByTimeAsync(100);
    calls[1]?.gate.resolve(undefined);
    await settle();
    expect(coalescer.peek('ws-1')).toEqual({ c: null });
    await vi.advanceTimersByTimeAsync(150);
    calls[2]?.gate.resolve(undefined);
    await settle();
    expect(coalescer.peek('ws-1')).toBeUndefined();
    expect(coalescer.isPending('ws-1')).toBe(false);
  });

  it('returns a copy: changing it changes nothing pending', () => {
    const coalescer = new EventCoalescer(syncStore());
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    const seen = coalescer.peek('ws-1') as Record<string, unknown>;
    seen.a = 2;
    expect(coalescer.peek('ws-1')).toEqual({ a: 1 });
  });
});

describe('the collector on its own', () => {
  it('offers stats, flush, flushAll, settled, peek and isPending without reaching through .coalescer', async () => {
    const emitter = new EventEmitter();
    const store = createMemorySnapshotStore();
    const collector = createEventCollector({
      store,
      canCreate: () => true,
      sources: [
        { emitter, event: 'x', map: (id: string) => ({ workspaceId: id, fields: { n: 1 } }) },
      ],
    });
    emitter.emit('x', 'ws-1');
    emitter.emit('x', 'ws-2');
    expect(collector.peek('ws-1')).toEqual({ n: 1 });
    expect(collector.isPending('ws-2')).toBe(true);
    const receipt = collector.settled('ws-1');
    await collector.flush('ws-1');
    await expect(receipt).resolves.toBe('landed');
    expect(collector.stats()).toMatchObject({ enqueued: 2, flushed: 1, pending: 1 });
    await collector.flushAll();
    expect(store.getByWorkspaceId('ws-2')?.fields).toEqual({ n: 1 });
    await collector.stop();
  });
});
