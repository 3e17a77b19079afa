import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createEventCollector } from '../src/collector/index.js';
import { EventCoalescer, type SnapshotStore } from '../src/index.js';
import { createMemorySnapshotStore } from '../src/stores/memory.js';
import { deferred, settle, syncStore } from './support/helpers.js';
import { storeArgs } from './support/store-matchers.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

type Method = 'upsert' | 'getByWorkspaceId' | 'remove';
type Fault = 'throws' | 'rejects' | 'resolves late';

/** A memory store whose `method` fails its first `failures` calls in the given way. */
function faultyStore(method: Method, fault: Fault, failures: number) {
  const memory = createMemorySnapshotStore();
  let calls = 0;
  const wrap =
    <A extends unknown[]>(name: Method, real: (...args: A) => unknown) =>
    (...args: A): unknown => {
      if (name !== method) return real(...args);
      calls++;
      if (fault === 'resolves late') {
        return new Promise((resolve) => setTimeout(() => resolve(real(...args)), 500));
      }
      if (calls <= failures) {
        if (fault === 'throws') throw new Error(`${name} threw`);
        return Promise.reject(new Error(`${name} rejected`));
      }
      return real(...args);
    };
  const store: SnapshotStore = {
    upsert: wrap('upsert', memory.upsert),
    getByWorkspaceId: wrap('getByWorkspaceId', memory.getByWorkspaceId),
    remove: wrap('remove', memory.remove),
  };
  memory.upsert('known', { seeded: true }, 'seed');
  return { store, memory };
}

const methods: Method[] = ['upsert', 'getByWorkspaceId', 'remove'];
const faults: Fault[] = ['throws', 'rejects', 'resolves late'];

describe.each(methods)('a store whose %s', (method) => {
  it.each(faults)('%s: the work still lands, in order, without escaping', async (fault) => {
    const { store, memory } = faultyStore(method, fault, 2);
    const onError = vi.fn();
    const coalescer = new EventCoalescer(store, {
      onError,
      retry: { attempts: 3, delayMs: 100, jitter: 0 },
    });
    coalescer.enqueue('known', { a: 1 }, 's');
    coalescer.enqueue('other', { b: 1 }, 's');
    void coalescer.remove('other');
    await vi.advanceTimersByTimeAsync(150);
    coalescer.enqueue('known', { a: 2 }, 's');
    await vi.advanceTimersByTimeAsync(5000);
    await coalescer.close();
    expect(onError).not.toHaveBeenCalled();
    expect(memory.getByWorkspaceId('known')?.fields).toEqual({ seeded: true, a: 2 });
    expect(memory.getByWorkspaceId('other')).toBeUndefined();
  });

  it('fails every time: each patch and removal is reported once, nothing throws', async () => {
    const { store } = faultyStore(method, 'rejects', Number.POSITIVE_INFINITY);
    const onError = vi.fn();
    const coalescer = new EventCoalescer(store, {
      onError,
      retry: { attempts: 2, delayMs: 10, jitter: 0 },
    });
    coalescer.enqueue('known', { a: 1 }, 's');
    void coalescer.remove('gone');
    await vi.advanceTimersByTimeAsync(1000);
    await coalescer.close();
    const operations = onError.mock.calls.map(([, context]) => context.operation);
    const expected = {
      upsert: ['upsert'],
      getByWorkspaceId: ['getByWorkspaceId'],
      remove: ['remove'],
    }[method];
    expect(operations).toEqual(expected);
  });
});

describe('a store that never answers', () => {
  it('cannot hold a collector’s stop hostage: it resolves after drainTimeoutMs and reports', async () => {
    const emitter = new EventEmitter();
    const never = new Promise<void>(() => {});
    const onError = vi.fn();
    const collector = createEventCollector({
      store: { upsert: () => never, getByWorkspaceId: () => ({}), remove: () => never },
      sources: [
        {
          emitter,
          event: 'x',
          map: (id: string, remove?: boolean) =>
            remove ? { workspaceId: id, remove: true } : { workspaceId: id, fields: { n: 1 } },
        },
      ],
      onError,
    });
    emitter.emit('x', 'ws-1');
    emitter.emit('x', 'ws-2', true);
    let stopped = false;
    const stopping = collector.stop().then(() => {
      stopped = true;
    });
    await vi.advanceTimersByTimeAsync(4999);
    expect(stopped).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await stopping;
    const reported = onError.mock.calls.map(
      ([, context]) => `${context.operation} ${context.workspaceId}`,
    );
    expect(reported.sort()).toEqual(['remove ws-2', 'upsert ws-1']);
    expect(collector.coalescer.stats().failed).toBe(2);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('reports a patch that waited behind the hung call too, once', async () => {
    const never = new Promise<void>(() => {});
    const onError = vi.fn();
    const coalescer = new EventCoalescer(
      { upsert: () => never, getByWorkspaceId: () => ({}), remove: () => {} },
      { onError, drainTimeoutMs: 100 },
    );
    coalescer.enqueue('ws-1', { first: 1 }, 's', { immediate: true });
    coalescer.enqueue('ws-1', { second: 2 }, 's', { immediate: true });
    const closing = coalescer.close();
    await vi.advanceTimersByTimeAsync(100);
    await closing;
    expect(onError.mock.calls.map(([, context]) => context.fields)).toEqual([
      { first: 1 },
      { second: 2 },
    ]);
  });
});

describe('listeners under bad input', () => {
  it.each([
    [
      'a huge object',
      {
        workspaceId: 'ws-1',
        ...Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`f${i}`, i])),
      },
    ],
    ['an object with prototype keys', JSON.parse('{"workspaceId": "ws-1", "__proto__": {"x": 1}}')],
    ['a boolean', true],
    ['a symbol', Symbol('x')],
  ])('never throws into emit() for %s', (_label, payload) => {
    const emitter = new EventEmitter();
    const store = createMemorySnapshotStore();
    createEventCollector({
      store,
      canCreate: () => true,
      sources: [
        {
          emitter,
          event: 'x',
          map: (event: Record<string, unknown>) => {
            const { workspaceId, ...fields } = event;
            return { workspaceId: workspaceId as string, fields };
          },
        },
      ],
    });
    expect(() => emitter.emit('x', payload)).not.toThrow();
    vi.advanceTimersByTime(150);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('takes an event emitted during stop no further', async () => {
    const emitter = new EventEmitter();
    const store = createMemorySnapshotStore();
    const collector = createEventCollector({
      store: {
        ...store,
        upsert: (id, fields, source) => {
          emitter.emit('x', 'late');
          return store.upsert(id, fields, source);
        },
        getByWorkspaceId: store.getByWorkspaceId,
        remove: store.remove,
      },
      canCreate: () => true,
      sources: [
        { emitter, event: 'x', map: (id: string) => ({ workspaceId: id, fields: { n: 1 } }) },
      ],
    });
    emitter.emit('x', 'ws-1');
    await collector.stop();
    await settle();
    vi.advanceTimersByTime(1000);
    expect(store.getAll().map((entry) => entry.workspaceId)).toEqual(['ws-1']);
  });
});

/** A store that fails its first `failures` upserts, synchronously, then writes into memory. */
function failingFirst(failures: number) {
  const memory = createMemorySnapshotStore();
  let calls = 0;
  const store: SnapshotStore = {
    upsert(id, fields, source) {
      calls++;
      if (calls <= failures) throw new Error(`upsert ${calls} failed`);
      memory.upsert(id, fields, source);
    },
    getByWorkspaceId: (id) => memory.getByWorkspaceId(id),
    remove: (id) => memory.remove(id),
  };
  return { store, memory };
}

const throwingLogger = () => ({
  debug: vi.fn(() => {
    throw new Error('debug');
  }),
  info: vi.fn(() => {
    throw new Error('info');
  }),
  warn: vi.fn(() => {
    throw new Error('warn');
  }),
  error: vi.fn(() => {
    throw new Error('error');
  }),
});

describe('callbacks that throw', () => {
  /** One run: two workspaces, the first write failing twice, a give-up, an enqueue after close. */
  async function run(logger: object | undefined) {
    const { store, memory } = failingFirst(3);
    const onError = vi.fn();
    const coalescer = new EventCoalescer(store, {
      ...(logger === undefined ? {} : { logger }),
      onError,
      canCreate: () => true,
      retry: { attempts: 2, delayMs: 10, jitter: 0 },
    });
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    coalescer.enqueue('ws-2', { b: 1 }, 's');
    await vi.advanceTimersByTimeAsync(1000);
    await coalescer.close();
    coalescer.enqueue('ws-3', { c: 1 }, 's');
    return {
      stats: coalescer.stats(),
      errors: onError.mock.calls.map(([, context]) => context),
      rows: memory.getAll().map((entry) => [entry.workspaceId, entry.fields]),
    };
  }

  it('a logger whose every method throws changes no write, retry, count or report', async () => {
    const logger = throwingLogger();
    const silent = await run(undefined);
    const throwing = await run(logger);
    expect(throwing).toEqual(silent);
    expect(silent.stats).toMatchObject({ failed: 1, retried: 2, flushed: 1, dropped: 1 });
    expect(logger.warn).toHaveBeenCalled();
    expect(logger.error).toHaveBeenCalled();
  });

  it('a throwing canCreate is a failed attempt: retried, then written', async () => {
    const store = syncStore();
    let calls = 0;
    const coalescer = new EventCoalescer(store, {
      canCreate: () => {
        calls++;
        if (calls === 1) throw new Error('canCreate');
        return true;
      },
      retry: { attempts: 2, delayMs: 10, jitter: 0 },
    });
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    expect(() => vi.advanceTimersByTime(150)).not.toThrow();
    expect(store.upsert).not.toHaveBeenCalled();
    vi.advanceTimersByTime(10);
    expect(storeArgs(store.upsert)).toEqual([['ws-1', { a: 1 }, 's']]);
    expect(coalescer.stats()).toMatchObject({ retried: 1, flushed: 1, failed: 0 });
  });

  it('a canCreate that always throws is reported once as canCreate, and counted', async () => {
    const store = syncStore();
    const onError = vi.fn();
    const failure = new Error('canCreate');
    const coalescer = new EventCoalescer(store, {
      canCreate: () => {
        throw failure;
      },
      onError,
      retry: { attempts: 3, delayMs: 10, jitter: 0 },
    });
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    await vi.advanceTimersByTimeAsync(1000);
    expect(onError.mock.calls).toEqual([
      [failure, { operation: 'canCreate', workspaceId: 'ws-1', source: 's', fields: { a: 1 } }],
    ]);
    expect(coalescer.stats()).toMatchObject({ failed: 1, retried: 2, flushed: 0 });
    expect(store.upsert).not.toHaveBeenCalled();
    expect(store.getByWorkspaceId).not.toHaveBeenCalled();
  });

  it('a throwing onError is contained, logged, and not called again for itself', async () => {
    const logger = { error: vi.fn() };
    const onError = vi.fn(() => {
      throw new Error('onError');
    });
    const { store } = failingFirst(Number.POSITIVE_INFINITY);
    const coalescer = new EventCoalescer(store, {
      logger,
      onError,
      canCreate: () => true,
      retry: { attempts: 1 },
    });
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    expect(() => vi.advanceTimersByTime(150)).not.toThrow();
    expect(onError).toHaveBeenCalledTimes(1);
    expect(logger.error.mock.calls.map(([, message]) => message)).toEqual([
      'event-coalescer: upsert given up',
      'event-coalescer: onError threw',
    ]);
  });

  it('a throwing onError and logger together still let close() settle', async () => {
    const onError = vi.fn(() => {
      throw new Error('onError');
    });
    const never = { then() {} };
    const coalescer = new EventCoalescer(
      { upsert: () => never, getByWorkspaceId: () => ({}), remove: () => never },
      { onError, logger: throwingLogger(), drainTimeoutMs: 100 },
    );
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    void coalescer.remove('ws-2');
    const closing = coalescer.close();
    await vi.advanceTimersByTimeAsync(100);
    await closing;
    expect(onError).toHaveBeenCalledTimes(2);
  });
});

describe('store answers that are odd thenables', () => {
  const thenables: Array<[string, () => unknown, 'done' | 'failed']> = [
    [
      'a then that throws',
      () => ({
        then() {
          throw new Error('then threw');
        },
      }),
      'failed',
    ],
    [
      'a then getter that throws',
      () => ({
        get then() {
          throw new Error('getter threw');
        },
      }),
      'failed',
    ],
    [
      'a thenable that fulfils twice',
      () => ({
        then(ok: (value: unknown) => void) {
          ok(undefined);
          ok(undefined);
        },
      }),
      'done',
    ],
    [
      'a thenable that fulfils, then rejects',
      () => ({
        then(ok: (value: unknown) => void, fail: (error: unknown) => void) {
          ok(undefined);
          fail(new Error('late rejection'));
        },
      }),
      'done',
    ],
    [
      'a thenable that rejects, then fulfils, then throws',
      () => ({
        then(ok: (value: unknown) => void, fail: (error: unknown) => void) {
          fail(new Error('rejected'));
          ok(undefined);
          throw new Error('then threw after settling');
        },
      }),
      'failed',
    ],
    [
      'a native promise carrying a then of its own',
      () => Object.assign(Promise.resolve(), { then: () => undefined }),
      'done',
    ],
  ];

  it.each(thenables)('%s counts once, as await would', async (_label, answer, outcome) => {
    const onError = vi.fn();
    let inFlight = 0;
    let overlap = false;
    const coalescer = new EventCoalescer(
      {
        upsert: () => {
          if (++inFlight > 1) overlap = true;
          const value = answer();
          void Promise.resolve().then(() => inFlight--);
          return value as never;
        },
        getByWorkspaceId: () => ({}),
        remove: () => {},
      },
      { onError, canCreate: () => true, retry: { attempts: 1 } },
    );
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    coalescer.enqueue('ws-1', { a: 2 }, 's', { immediate: true });
    await vi.advanceTimersByTimeAsync(100);
    await coalescer.close();
    const stats = coalescer.stats();
    expect(stats.inFlight).toBe(0);
    expect(overlap).toBe(false);
    expect(stats.flushed + stats.failed).toBe(2);
    expect(outcome === 'done' ? stats.flushed : stats.failed).toBe(2);
    expect(onError).toHaveBeenCalledTimes(stats.failed);
  });
});

describe('close() under a hostile store', () => {
  it('settles within drainTimeoutMs when a then never calls back', async () => {
    const never = { then() {} };
    const onError = vi.fn();
    const coalescer = new EventCoalescer(
      { upsert: () => never, getByWorkspaceId: () => never, remove: () => never },
      { onError, canCreate: () => true, drainTimeoutMs: 200 },
    );
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    let closed = false;
    const closing = coalescer.close().then(() => {
      closed = true;
    });
    await vi.advanceTimersByTimeAsync(199);
    expect(closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await closing;
    expect(onError).toHaveBeenCalledTimes(1);
    // The coalescer stopped waiting for the call: it no longer counts as in flight.
    expect(coalescer.stats()).toMatchObject({ failed: 1, inFlight: 0 });
  });

  it('settles within drainTimeoutMs, in real time, when a store fails synchronously without end', async () => {
    vi.useRealTimers();
    const onError = vi.fn();
    const coalescer = new EventCoalescer(
      {
        upsert: () => {
          throw new Error('always');
        },
        getByWorkspaceId: () => ({}),
        remove: () => {},
      },
      { onError, canCreate: () => true, retry: { attempts: 1e9 }, drainTimeoutMs: 50 },
    );
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    const started = performance.now();
    await coalescer.close();
    expect(performance.now() - started).toBeLessThan(5000);
    expect(onError).toHaveBeenCalledTimes(1);
    expect(coalescer.stats().failed).toBe(1);
  });
});

describe('a store that calls the coalescer back from inside a write', () => {
  /** `close()` resolves once the gated call has landed, not before, with both writes landed. */
  async function expectCloseToWaitFor(coalescer: EventCoalescer, gate: { resolve(): void }) {
    let closed = false;
    void coalescer.close().then(() => {
      closed = true;
    });
    await settle();
    expect(closed).toBe(false);
    gate.resolve();
    await settle();
    expect(closed).toBe(true);
    expect(coalescer.stats()).toMatchObject({ flushed: 2, failed: 0 });
  }

  it('keeps track of a write still in flight whose call started another workspace’s', async () => {
    const gate = deferred<void>();
    const store = syncStore();
    let coalescer!: EventCoalescer;
    store.upsert.mockImplementation((id: string) => {
      if (id !== 'ws-a') return;
      coalescer.enqueue('ws-b', { status: 'READY' }, 'event:b', { immediate: true });
      return gate.promise as unknown as undefined;
    });
    coalescer = new EventCoalescer(store, { windowMs: 100 });
    coalescer.enqueue('ws-a', { status: 'RUNNING' }, 'event:a', { immediate: true });
    expect(store.upsert).toHaveBeenCalledTimes(2);
    // ws-a's call is in flight, ws-b's landed at once.
    expect(coalescer.peek('ws-a')).toEqual({ status: 'RUNNING' });
    expect(coalescer.peek('ws-b')).toBeUndefined();
    await expectCloseToWaitFor(coalescer, gate);
  });

  it('keeps track of a call in flight started from inside a write that answered at once', async () => {
    const gate = deferred<void>();
    const store = syncStore();
    let coalescer!: EventCoalescer;
    store.upsert.mockImplementation((id: string) => {
      if (id === 'ws-a') {
        coalescer.enqueue('ws-b', { status: 'READY' }, 'event:b', { immediate: true });
        return;
      }
      return gate.promise as unknown as undefined;
    });
    coalescer = new EventCoalescer(store, { windowMs: 100 });
    coalescer.enqueue('ws-a', { status: 'RUNNING' }, 'event:a', { immediate: true });
    expect(coalescer.peek('ws-a')).toBeUndefined();
    expect(coalescer.peek('ws-b')).toEqual({ status: 'READY' });
    await expectCloseToWaitFor(coalescer, gate);
  });

  it('holds a patch the store enqueued for the same workspace from inside its first call until that call lands', async () => {
    const gate = deferred<void>();
    const store = syncStore();
    let coalescer!: EventCoalescer;
    store.upsert.mockImplementationOnce(() => {
      coalescer.enqueue('ws-a', { isWorking: true }, 'event:again', { immediate: true });
      return gate.promise as unknown as undefined;
    });
    coalescer = new EventCoalescer(store, { windowMs: 100 });
    coalescer.enqueue('ws-a', { status: 'RUNNING' }, 'event:a', { immediate: true });
    // One call in flight per workspace: the second write waits behind the first.
    expect(store.upsert).toHaveBeenCalledTimes(1);
    await expectCloseToWaitFor(coalescer, gate);
    expect(storeArgs(store.upsert)).toEqual([
      ['ws-a', { status: 'RUNNING' }, 'event:a'],
      ['ws-a', { isWorking: true }, 'event:again'],
    ]);
  });
});
