/**
 * Store outages of any length: the retry rule, what will not heal, a store that is away,
 * calls that never answer, and the bounds a host may set. Fake timers throughout.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createEventCollector } from '../src/collector/index.js';
import {
  defaultRetryable,
  EventCoalescer,
  EventCoalescerError,
  type Fields,
  type Patch,
  type SnapshotStore,
  STORE_HEALTH_CHANNEL,
  type StoreCallOptions,
  type StoreHealthMessage,
} from '../src/index.js';
import { createMemorySnapshotStore } from '../src/stores/memory.js';
import { gatedStore, settle, syncStore } from './support/helpers.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

/** A memory store that can be taken away: its calls then throw, reject or hang. */
function outageStore() {
  const memory = createMemorySnapshotStore();
  let away: 'rejects' | 'throws' | 'hangs' | undefined;
  let calls = 0;
  let callsWhileAway = 0;
  let maxInFlight = 0;
  let inFlight = 0;
  const answer = (apply: () => void, call: StoreCallOptions | undefined): unknown => {
    calls++;
    if (away === 'throws') {
      callsWhileAway++;
      throw new Error('ECONNREFUSED');
    }
    if (away === 'rejects') {
      callsWhileAway++;
      return Promise.reject(new Error('ECONNREFUSED'));
    }
    if (away === 'hangs') {
      callsWhileAway++;
      return new Promise((_resolve, reject) => {
        call?.signal.addEventListener('abort', () => reject(call.signal.reason));
      });
    }
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    return Promise.resolve().then(() => {
      inFlight--;
      apply();
    });
  };
  const store: SnapshotStore = {
    upsert: (id, fields, source, timestamp, call) =>
      answer(() => memory.upsert(id, fields, source, timestamp), call),
    getByWorkspaceId: (id) => memory.getByWorkspaceId(id),
    remove: (id, timestamp, call) => answer(() => memory.remove(id, timestamp), call),
  };
  return {
    store,
    memory,
    goAway(how: 'rejects' | 'throws' | 'hangs') {
      away = how;
    },
    comeBack() {
      away = undefined;
    },
    get calls() {
      return calls;
    },
    get callsWhileAway() {
      return callsWhileAway;
    },
    get maxInFlight() {
      return maxInFlight;
    },
  };
}

const logger = () => ({ debug: vi.fn(), info: vi.fn(), warn: vi.fn(), error: vi.fn() });

describe('the retry rule', () => {
  it('doubles the delay up to maxDelayMs', () => {
    const store = syncStore();
    store.upsert.mockImplementation(() => {
      throw new Error('down');
    });
    const coalescer = new EventCoalescer(store, {
      retry: { delayMs: 100, maxDelayMs: 400, jitter: 0 },
    });
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    // Tries at 0, then 100, 200, 400 later, then every 400 ms: the cap.
    const triesAt = [100, 300, 700, 1100, 1500];
    let elapsed = 0;
    for (const at of triesAt) {
      vi.advanceTimersByTime(at - elapsed - 1);
      const before = store.upsert.mock.calls.length;
      vi.advanceTimersByTime(1);
      elapsed = at;
      expect(store.upsert.mock.calls.length, `a try at ${at} ms`).toBe(before + 1);
    }
  });

  it('spreads each delay by ±jitter', () => {
    const store = syncStore();
    store.upsert.mockImplementation(() => {
      throw new Error('down');
    });
    const random = vi.spyOn(Math, 'random').mockReturnValue(0);
    const coalescer = new EventCoalescer(store, { retry: { delayMs: 1000, jitter: 0.2 } });
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    // random() = 0 at the first failure: the shortest delay, 1000 × 0.8; then → 1: the
    // longest, 2000 × 1.2.
    random.mockReturnValue(1 - Number.EPSILON);
    vi.advanceTimersByTime(799);
    expect(store.upsert).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(1);
    expect(store.upsert).toHaveBeenCalledTimes(2);
    store.upsert.mockClear();
    vi.advanceTimersByTime(2399);
    expect(store.upsert).toHaveBeenCalledTimes(0);
    vi.advanceTimersByTime(1);
    expect(store.upsert).toHaveBeenCalledTimes(1);
  });

  it('keeps trying by default: a store that fails for an hour loses nothing', async () => {
    const faulty = outageStore();
    const onError = vi.fn();
    const coalescer = new EventCoalescer(faulty.store, { canCreate: () => true, onError });
    faulty.goAway('rejects');
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    await vi.advanceTimersByTimeAsync(60 * 60_000);
    coalescer.enqueue('ws-1', { b: 2 }, 's');
    faulty.comeBack();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(onError).not.toHaveBeenCalled();
    expect(faulty.memory.getByWorkspaceId('ws-1')?.fields).toEqual({ a: 1, b: 2 });
    expect(coalescer.stats()).toMatchObject({ failed: 0, backlog: 0, storeAvailable: true });
  });

  it('accepts attempts: Infinity and refuses attempts: 0', () => {
    const store = syncStore();
    expect(() => new EventCoalescer(store, { retry: { attempts: Infinity } })).not.toThrow();
    expect(() => new EventCoalescer(store, { retry: { attempts: 0 } })).toThrow(
      /`retry.attempts` to be a whole number from 1 and up, or Infinity, got `0`/,
    );
    expect(() => new EventCoalescer(store, { retry: { jitter: 2 } })).toThrow(/`retry.jitter`/);
    expect(() => new EventCoalescer(store, { retry: { maxElapsedMs: -1 } })).toThrow(
      /`retry.maxElapsedMs`/,
    );
    expect(() => new EventCoalescer(store, { retry: { retryable: 'no' as never } })).toThrow(
      /`retry.retryable` to be a function/,
    );
  });

  it('gives up once maxElapsedMs has passed since the first try', () => {
    const store = syncStore();
    store.upsert.mockImplementation(() => {
      throw new Error('down');
    });
    const onError = vi.fn();
    const coalescer = new EventCoalescer(store, {
      retry: { delayMs: 100, maxDelayMs: 100, jitter: 0, maxElapsedMs: 1000 },
      onError,
    });
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    vi.advanceTimersByTime(999);
    expect(onError).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(onError).toHaveBeenCalledTimes(1);
    expect(onError.mock.calls[0]?.[1]).toMatchObject({ operation: 'upsert', workspaceId: 'ws-1' });
    vi.advanceTimersByTime(10_000);
    expect(store.upsert).toHaveBeenCalledTimes(11);
  });

  it('gives up at once what retryable calls permanent, telling it the failure', () => {
    const store = syncStore();
    const refused = Object.assign(new Error('quota'), { code: 'QUOTA' });
    store.upsert.mockImplementation(() => {
      throw refused;
    });
    const retryable = vi.fn((error: unknown) => (error as { code?: string }).code !== 'QUOTA');
    const onError = vi.fn();
    const coalescer = new EventCoalescer(store, { retry: { retryable }, onError });
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    expect(retryable).toHaveBeenCalledWith(refused, {
      operation: 'upsert',
      workspaceId: 'ws-1',
      attempt: 1,
      elapsedMs: 0,
      thrown: true,
    });
    expect(onError).toHaveBeenCalledWith(refused, expect.objectContaining({ operation: 'upsert' }));
    expect(coalescer.stats()).toMatchObject({ failed: 1, retried: 0 });
  });

  it('retries when retryable throws: a predicate that fails keeps the write', () => {
    const store = syncStore();
    let fail = true;
    store.upsert.mockImplementation(() => {
      if (fail) throw new Error('down');
    });
    const coalescer = new EventCoalescer(store, {
      retry: {
        jitter: 0,
        retryable: () => {
          throw new Error('predicate bug');
        },
      },
    });
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    fail = false;
    vi.advanceTimersByTime(100);
    expect(coalescer.stats()).toMatchObject({ flushed: 1, failed: 0 });
  });

  it('by default gives up on permanent codes, NOPERM and a bad argument thrown at the call', () => {
    const context = {
      operation: 'upsert' as const,
      workspaceId: 'ws-1',
      attempt: 1,
      elapsedMs: 0,
      thrown: false,
    };
    for (const code of ['EC_VALUE_REFUSED', 'EC_ACL_REFUSED', 'EC_SCRIPT_ERROR'] as const) {
      expect(defaultRetryable(new EventCoalescerError(code, 'x'), context), code).toBe(false);
    }
    expect(defaultRetryable(new Error('NOPERM this user has no permissions'), context)).toBe(false);
    expect(defaultRetryable(new TypeError('bad'), { ...context, thrown: true })).toBe(false);
    expect(defaultRetryable(new RangeError('bad'), { ...context, thrown: true })).toBe(false);
    // A rejection is the store's answer, not a bad argument: it may heal.
    expect(defaultRetryable(new TypeError('fetch failed'), context)).toBe(true);
    for (const code of [
      'EC_CALL_TIMEOUT',
      'EC_NOT_CONNECTED',
      'EC_CONNECTION_LOST',
      'EC_REPLICAS_UNACKNOWLEDGED',
    ] as const) {
      expect(defaultRetryable(new EventCoalescerError(code, 'x'), context), code).toBe(true);
    }
    expect(defaultRetryable(new Error('LOADING Redis is loading the dataset'), context)).toBe(true);
  });

  it('gives a refused value up at once, while the other workspaces keep landing', async () => {
    const faulty = outageStore();
    const refusing: SnapshotStore = {
      ...faulty.store,
      upsert: (id, fields, source, timestamp, call) =>
        'bad' in fields
          ? Promise.reject(new EventCoalescerError('EC_VALUE_REFUSED', 'field `bad`'))
          : faulty.store.upsert(id, fields, source, timestamp, call),
    };
    const onError = vi.fn();
    const coalescer = new EventCoalescer(refusing, { canCreate: () => true, onError });
    for (let i = 0; i < 20; i++) coalescer.enqueue(`ws-${i}`, { bad: 1 }, 's');
    coalescer.enqueue('good', { a: 1 }, 's');
    await vi.advanceTimersByTimeAsync(150);
    expect(onError).toHaveBeenCalledTimes(20);
    expect(faulty.memory.getByWorkspaceId('good')?.fields).toEqual({ a: 1 });
    expect(coalescer.stats()).toMatchObject({ storeAvailable: true, retried: 0, failed: 20 });
  });

  it('uses the same rule for refresh sources, which keep trying by default', async () => {
    const emitter = new EventEmitter();
    const onError = vi.fn();
    let runs = 0;
    const store = syncStore();
    createEventCollector({
      store,
      onError,
      sources: [
        {
          emitter,
          event: 'changed',
          key: (id: string) => id,
          retry: { jitter: 0 },
          refresh: async () => {
            if (++runs < 8) throw new Error('read failed');
            return { fresh: true };
          },
        },
      ],
    });
    emitter.emit('changed', 'ws-1');
    // 1 s, 2 s, 4 s, 8 s, 16 s, 30 s (the cap), 30 s.
    await vi.advanceTimersByTimeAsync(1000 + 2000 + 4000 + 8000 + 16_000 + 30_000 + 30_000);
    expect(runs).toBe(8);
    expect(onError).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(150);
    expect(store.upsert).toHaveStoreCall('ws-1', { fresh: true }, 'event:changed');
  });
});

describe('a store that is away', () => {
  it('probes at the back-off pace instead of every workspace retrying on its own', async () => {
    const faulty = outageStore();
    const log = logger();
    const coalescer = new EventCoalescer(faulty.store, {
      canCreate: () => true,
      logger: log,
      retry: { jitter: 0 },
    });
    faulty.goAway('rejects');
    for (let i = 0; i < 1000; i++) coalescer.enqueue(`ws-${i}`, { i }, 's');
    await vi.advanceTimersByTimeAsync(150);
    expect(coalescer.stats().storeAvailable).toBe(false);
    const firstWave = faulty.callsWhileAway;
    // The first wave meets the outage (at most the calls started before it was noticed)...
    expect(firstWave).toBeLessThanOrEqual(128 + 5);
    await vi.advanceTimersByTimeAsync(60_000);
    // ...then one probe at a time: 100, 200, … ms, then every 5 s.
    const probes = faulty.callsWhileAway - firstWave;
    expect(probes).toBeGreaterThan(5);
    expect(probes).toBeLessThan(25);
    expect(log.warn).toHaveBeenCalledTimes(1);
    expect(log.warn.mock.calls[0]?.[1]).toMatch(/the store is away/);
    expect(coalescer.stats()).toMatchObject({ backlog: 1000, failed: 0, inFlight: 0 });
    faulty.comeBack();
    await vi.advanceTimersByTimeAsync(5000);
    expect(log.info).toHaveBeenCalledTimes(1);
    expect(log.info.mock.calls[0]?.[1]).toMatch(/the store is back/);
    expect(faulty.memory.size).toBe(1000);
    expect(coalescer.stats()).toMatchObject({ backlog: 0, storeAvailable: true, failed: 0 });
  });

  it('drains the backlog oldest first, at most maxConcurrentWrites calls at a time', async () => {
    const faulty = outageStore();
    const order: string[] = [];
    const store: SnapshotStore = {
      ...faulty.store,
      upsert: (id, fields, source, timestamp, call) => {
        order.push(id);
        return faulty.store.upsert(id, fields, source, timestamp, call);
      },
    };
    const coalescer = new EventCoalescer(store, {
      canCreate: () => true,
      maxConcurrentWrites: 8,
      retry: { jitter: 0 },
    });
    faulty.goAway('rejects');
    for (let i = 0; i < 200; i++) {
      coalescer.enqueue(`ws-${i}`, { i }, 's');
      await vi.advanceTimersByTimeAsync(1);
    }
    await vi.advanceTimersByTimeAsync(10_000);
    faulty.comeBack();
    order.length = 0;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(faulty.memory.size).toBe(200);
    expect(faulty.maxInFlight).toBeLessThanOrEqual(8);
    // After the probe that found the store back, what waited goes in the order it began to wait.
    const drained = order.slice(1).map((id) => Number(id.slice(3)));
    expect(drained).toEqual([...drained].sort((a, b) => a - b));
  });

  it('publishes when the store goes away and when it is back', async () => {
    const faulty = outageStore();
    const messages: StoreHealthMessage[] = [];
    const listener = (message: unknown) => messages.push(message as StoreHealthMessage);
    diagnosticsChannel.subscribe(STORE_HEALTH_CHANNEL, listener);
    try {
      const coalescer = new EventCoalescer(faulty.store, { canCreate: () => true });
      faulty.goAway('throws');
      for (let i = 0; i < 10; i++) coalescer.enqueue(`ws-${i}`, { i }, 's');
      await vi.advanceTimersByTimeAsync(150);
      faulty.comeBack();
      await vi.advanceTimersByTimeAsync(1000);
      expect(messages).toEqual([
        { available: false, error: expect.any(Error), backlog: expect.any(Number) },
        { available: true, awayMs: expect.any(Number), backlog: 10 },
      ]);
    } finally {
      diagnosticsChannel.unsubscribe(STORE_HEALTH_CHANNEL, listener);
    }
  });

  it('does not take the store as away while other workspaces keep landing', async () => {
    const faulty = outageStore();
    // One workspace lives on a node that is down; the others answer.
    const store: SnapshotStore = {
      ...faulty.store,
      upsert: (id, fields, source, timestamp, call) =>
        id === 'down'
          ? Promise.reject(new Error('CLUSTERDOWN'))
          : faulty.store.upsert(id, fields, source, timestamp, call),
    };
    const coalescer = new EventCoalescer(store, { canCreate: () => true });
    coalescer.enqueue('down', { a: 1 }, 's');
    for (let round = 0; round < 50; round++) {
      coalescer.enqueue(`up-${round}`, { round }, 's');
      await vi.advanceTimersByTimeAsync(200);
      expect(coalescer.stats().storeAvailable).toBe(true);
    }
    expect(faulty.memory.size).toBe(50);
    expect(coalescer.stats()).toMatchObject({ backlog: 1, failed: 0 });
  });

  it('counts a failed probe as a try of every held write when the host bounds attempts', async () => {
    const faulty = outageStore();
    const onError = vi.fn();
    const coalescer = new EventCoalescer(faulty.store, {
      canCreate: () => true,
      retry: { attempts: 8, jitter: 0 },
      onError,
    });
    faulty.goAway('rejects');
    for (let i = 0; i < 1000; i++) coalescer.enqueue(`ws-${i}`, { i }, 's');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(onError).toHaveBeenCalledTimes(1000);
    expect(coalescer.stats()).toMatchObject({ failed: 1000, backlog: 0 });
    // The first wave (maxConcurrentWrites) and a few probes, not 1000 workspaces × 8 attempts.
    expect(faulty.callsWhileAway).toBeLessThan(128 + 20);
  });
});

describe('a call that never answers', () => {
  it('counts as failed after callTimeoutMs, its signal aborted, and is retried', async () => {
    const { store, calls } = gatedStore();
    const coalescer = new EventCoalescer(store, {
      canCreate: () => true,
      callTimeoutMs: 1000,
      retry: { jitter: 0 },
    });
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    expect(calls[0]?.signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(999);
    expect(calls[0]?.signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls[0]?.signal?.aborted).toBe(true);
    expect(calls[0]?.signal?.reason).toMatchObject({ code: 'EC_CALL_TIMEOUT' });
    expect(coalescer.stats()).toMatchObject({ retried: 1, inFlight: 0 });
    await vi.advanceTimersByTimeAsync(100);
    expect(calls).toHaveLength(2);
    // The late answer of the first call is ignored: the retry's decides.
    calls[0]?.gate.resolve(undefined);
    await settle();
    expect(coalescer.stats()).toMatchObject({ flushed: 0, inFlight: 1 });
    calls[1]?.gate.resolve(undefined);
    await settle();
    expect(coalescer.stats()).toMatchObject({ flushed: 1, inFlight: 0 });
  });

  it('never holds its workspace until close(): newer patches land once the store answers', async () => {
    const faulty = outageStore();
    const coalescer = new EventCoalescer(faulty.store, { canCreate: () => true });
    faulty.goAway('hangs');
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    await vi.advanceTimersByTimeAsync(30_000);
    coalescer.enqueue('ws-1', { b: 2 }, 's');
    faulty.comeBack();
    await vi.advanceTimersByTimeAsync(20_000);
    expect(faulty.memory.getByWorkspaceId('ws-1')?.fields).toEqual({ a: 1, b: 2 });
  });

  it('a host store that honours the signal never lands a write reported as given up', async () => {
    const landed: Patch<Fields>[] = [];
    const honouring: SnapshotStore = {
      // Slow: answers after 3 s, unless aborted first.
      upsert: (_id, fields, _source, _timestamp, call) =>
        new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => {
            landed.push(fields);
            resolve();
          }, 3000);
          call?.signal.addEventListener('abort', () => {
            clearTimeout(timer);
            reject(call.signal.reason);
          });
        }),
      getByWorkspaceId: () => ({}),
      remove: () => {},
    };
    const reported: Patch<Fields>[] = [];
    const coalescer = new EventCoalescer(honouring, {
      canCreate: () => true,
      drainTimeoutMs: 1000,
      onError: (error, context) => {
        expect(error).toMatchObject({ code: 'EC_DRAIN_TIMEOUT' });
        if (context.operation === 'upsert') reported.push(context.fields);
      },
    });
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    const closing = coalescer.close();
    await vi.advanceTimersByTimeAsync(10_000);
    await closing;
    expect(reported).toEqual([{ a: 1 }]);
    expect(landed).toEqual([]);
  });

  it('the memory store refuses a call whose signal is already aborted', () => {
    const memory = createMemorySnapshotStore();
    const controller = new AbortController();
    controller.abort(new Error('given up'));
    expect(() => memory.upsert('ws-1', { a: 1 }, 's', undefined, controller)).toThrow('given up');
    expect(memory.size).toBe(0);
    expect(() => memory.remove('ws-1', undefined, controller)).toThrow('given up');
  });
});

describe('memory during an outage', () => {
  it('holds one merged patch per waiting workspace, however many events arrive', async () => {
    const faulty = outageStore();
    const coalescer = new EventCoalescer(faulty.store, { canCreate: () => true });
    faulty.goAway('rejects');
    for (let event = 0; event < 100; event++) {
      for (let i = 0; i < 50; i++) coalescer.enqueue(`ws-${i}`, { [`f${event % 5}`]: event }, 's');
      await vi.advanceTimersByTimeAsync(200);
    }
    const stats = coalescer.stats();
    expect(stats.backlog + stats.pending).toBeLessThanOrEqual(50);
    expect(stats.waiting).toBeLessThanOrEqual(50);
    faulty.comeBack();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(faulty.memory.getByWorkspaceId('ws-7')?.fields).toEqual({
      f0: 95,
      f1: 96,
      f2: 97,
      f3: 98,
      f4: 99,
    });
  });

  it('gives up the oldest waiting writes past maxBacklog, reporting each once', async () => {
    const faulty = outageStore();
    const onError = vi.fn();
    const coalescer = new EventCoalescer(faulty.store, {
      canCreate: () => true,
      maxBacklog: 10,
      onError,
    });
    faulty.goAway('rejects');
    for (let i = 0; i < 15; i++) {
      coalescer.enqueue(`ws-${i}`, { i }, 's');
      await vi.advanceTimersByTimeAsync(200);
    }
    expect(coalescer.stats().backlog).toBe(10);
    expect(onError).toHaveBeenCalledTimes(5);
    expect(onError.mock.calls.map(([error]) => (error as EventCoalescerError).code)).toEqual(
      Array(5).fill('EC_BACKLOG_FULL'),
    );
    expect(onError.mock.calls.map(([, context]) => context.workspaceId)).toEqual([
      'ws-0',
      'ws-1',
      'ws-2',
      'ws-3',
      'ws-4',
    ]);
    faulty.comeBack();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(faulty.memory.size).toBe(10);
    expect(onError).toHaveBeenCalledTimes(5);
  });
});

describe('close() during an outage', () => {
  it('lands everything if the store is back before drainTimeoutMs', async () => {
    const faulty = outageStore();
    const onError = vi.fn();
    const coalescer = new EventCoalescer(faulty.store, { canCreate: () => true, onError });
    faulty.goAway('rejects');
    for (let i = 0; i < 100; i++) coalescer.enqueue(`ws-${i}`, { i }, 's');
    await vi.advanceTimersByTimeAsync(120_000);
    const closing = coalescer.close();
    await vi.advanceTimersByTimeAsync(1000);
    faulty.comeBack();
    await vi.advanceTimersByTimeAsync(4000);
    await closing;
    expect(faulty.memory.size).toBe(100);
    expect(onError).not.toHaveBeenCalled();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('reports each write left at drainTimeoutMs once, with EC_DRAIN_TIMEOUT, and leaves no timer', async () => {
    const faulty = outageStore();
    const onError = vi.fn();
    const coalescer = new EventCoalescer(faulty.store, { canCreate: () => true, onError });
    faulty.goAway('hangs');
    for (let i = 0; i < 100; i++) coalescer.enqueue(`ws-${i}`, { i }, 's');
    const closing = coalescer.close();
    await vi.advanceTimersByTimeAsync(5000);
    await closing;
    expect(onError).toHaveBeenCalledTimes(100);
    expect(new Set(onError.mock.calls.map(([error]) => error.code))).toEqual(
      new Set(['EC_DRAIN_TIMEOUT']),
    );
    expect(coalescer.stats()).toMatchObject({ failed: 100, inFlight: 0, backlog: 0 });
    expect(vi.getTimerCount()).toBe(0);
  });
});
