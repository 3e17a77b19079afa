import diagnosticsChannel from 'node:diagnostics_channel';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  DROP_CHANNEL,
  EventCoalescer,
  GIVE_UP_CHANNEL,
  STORE_CHANNEL,
  type StoreCallContext,
} from '../src/index.js';
import { gatedStore, settle, syncStore } from './support/helpers.js';

beforeEach(() => {
  vi.useFakeTimers();
});

/** Every message of the store tracing channel, as `event:operation:attempt`. */
function recordStoreCalls() {
  const seen: Array<{ event: string; context: StoreCallContext }> = [];
  const record = (event: string) => (message: unknown) =>
    seen.push({ event, context: { ...(message as StoreCallContext) } });
  const handlers = {
    start: record('start'),
    end: record('end'),
    asyncStart: record('asyncStart'),
    asyncEnd: record('asyncEnd'),
    error: record('error'),
  };
  const channel = diagnosticsChannel.tracingChannel(STORE_CHANNEL);
  channel.subscribe(handlers);
  return {
    seen,
    events: () =>
      seen.map(({ event, context }) => `${event}:${context.operation}:${context.attempt}`),
    stop: () => channel.unsubscribe(handlers),
  };
}

let stop: (() => void) | undefined;
afterEach(() => {
  stop?.();
  stop = undefined;
  vi.useRealTimers();
});

describe('the store tracing channel', () => {
  it('publishes nothing while patches only wait for their window', () => {
    const calls = recordStoreCalls();
    stop = calls.stop;
    const coalescer = new EventCoalescer(syncStore());
    for (let i = 0; i < 10; i++) coalescer.enqueue('ws-1', { i }, 's');
    expect(calls.seen).toEqual([]);
  });

  it.each([
    ['immediate', { canCreate: (): boolean => true }, { immediate: true }],
    ['a leading edge', { canCreate: (): boolean => true, leading: true }, undefined],
  ] as const)(
    'traces the store call an enqueue starts (%s) inside that enqueue',
    (_label, options, enqueueOptions) => {
      const calls = recordStoreCalls();
      stop = calls.stop;
      const coalescer = new EventCoalescer(syncStore(), options);
      coalescer.enqueue('ws-1', { a: 1 }, 's', enqueueOptions);
      expect(calls.events()).toEqual(['start:upsert:1', 'end:upsert:1']);
      // What only merges into the pending patch publishes nothing.
      coalescer.enqueue('ws-1', { a: 2 }, 's');
      expect(calls.events()).toHaveLength(2);
    },
  );

  it('traces a synchronous write: start and end, with its context', () => {
    const calls = recordStoreCalls();
    stop = calls.stop;
    const coalescer = new EventCoalescer(syncStore(), { canCreate: () => true });
    coalescer.enqueue('ws-1', { a: 1 }, 'e1');
    coalescer.enqueue('ws-1', { b: 2 }, 'e2');
    vi.advanceTimersByTime(150);
    expect(calls.events()).toEqual(['start:upsert:1', 'end:upsert:1']);
    expect(calls.seen[0]?.context).toEqual({
      operation: 'upsert',
      workspaceId: 'ws-1',
      source: 'e1+e2',
      fields: { a: 1, b: 2 },
      attempt: 1,
    });
  });

  it('traces an asynchronous write to its settling, and a failed one with error, attempt by attempt', async () => {
    const calls = recordStoreCalls();
    stop = calls.stop;
    const { store, calls: gates } = gatedStore();
    const coalescer = new EventCoalescer(store, {
      canCreate: () => true,
      retry: { attempts: 2, delayMs: 10, jitter: 0 },
    });
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    const failure = new Error('down');
    gates[0]?.gate.reject(failure);
    await settle();
    await vi.advanceTimersByTimeAsync(10);
    gates[1]?.gate.resolve('ok');
    await settle();
    expect(calls.events()).toEqual([
      'start:upsert:1',
      'end:upsert:1',
      'error:upsert:1',
      'asyncStart:upsert:1',
      'asyncEnd:upsert:1',
      'start:upsert:2',
      'end:upsert:2',
      'asyncStart:upsert:2',
      'asyncEnd:upsert:2',
    ]);
    expect(calls.seen[2]?.context.error).toBe(failure);
    expect(calls.seen.at(-1)?.context.result).toBe('ok');
  });

  it('traces a store that throws: start, error, end', () => {
    const calls = recordStoreCalls();
    stop = calls.stop;
    const store = syncStore();
    store.remove.mockImplementation(() => {
      throw new Error('sync');
    });
    const coalescer = new EventCoalescer(store, { retry: { attempts: 1 } });
    void coalescer.remove('ws-1');
    expect(calls.events()).toEqual(['start:remove:1', 'error:remove:1', 'end:remove:1']);
    expect(calls.seen[0]?.context).toMatchObject({ source: undefined, fields: undefined });
  });

  it('runs the call inside the stores bound to the start channel, as APMs need for context', async () => {
    const { AsyncLocalStorage } = await import('node:async_hooks');
    const storage = new AsyncLocalStorage<string>();
    const channel = diagnosticsChannel.tracingChannel(STORE_CHANNEL);
    channel.start.bindStore(
      storage,
      (context) => `span of ${(context as StoreCallContext).workspaceId}`,
    );
    stop = () => channel.start.unbindStore(storage);
    const seenInside: Array<string | undefined> = [];
    const store = syncStore();
    store.upsert.mockImplementation(() => {
      seenInside.push(storage.getStore());
    });
    const coalescer = new EventCoalescer(store, { canCreate: () => true });
    coalescer.enqueue('ws-7', { a: 1 }, 's', { immediate: true });
    expect(seenInside).toEqual(['span of ws-7']);
  });
});

describe('the give-up and drop channels', () => {
  it('publish each thing given up with its context, and each patch dropped after close', async () => {
    const givenUp: unknown[] = [];
    const dropped: unknown[] = [];
    const onGiveUp = (message: unknown) => givenUp.push(message);
    const onDrop = (message: unknown) => dropped.push(message);
    diagnosticsChannel.subscribe(GIVE_UP_CHANNEL, onGiveUp);
    diagnosticsChannel.subscribe(DROP_CHANNEL, onDrop);
    stop = () => {
      diagnosticsChannel.unsubscribe(GIVE_UP_CHANNEL, onGiveUp);
      diagnosticsChannel.unsubscribe(DROP_CHANNEL, onDrop);
    };
    const failure = new Error('down');
    const store = syncStore();
    store.upsert.mockImplementation(() => {
      throw failure;
    });
    const coalescer = new EventCoalescer(store, { canCreate: () => true, retry: { attempts: 1 } });
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    await coalescer.close();
    coalescer.enqueue('ws-2', { a: 1 }, 'late');
    expect(givenUp).toEqual([
      {
        error: failure,
        context: { operation: 'upsert', workspaceId: 'ws-1', source: 's', fields: { a: 1 } },
      },
    ]);
    expect(dropped).toEqual([{ workspaceId: 'ws-2', source: 'late' }]);
  });
});
