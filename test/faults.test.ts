import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createEventCollector } from '../src/collector/index.js';
import { EventCoalescer, type SnapshotStore } from '../src/index.js';
import { createMemorySnapshotStore } from '../src/stores/memory.js';
import { settle } from './helpers.js';

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
    const coalescer = new EventCoalescer(store, { onError, retry: { attempts: 3, delayMs: 100 } });
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
    const coalescer = new EventCoalescer(store, { onError, retry: { attempts: 2, delayMs: 10 } });
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
