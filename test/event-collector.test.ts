import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createEventCollector, type PatchSource } from '../src/collector/index.js';
import { createMemorySnapshotStore } from '../src/stores/memory.js';
import { gatedStore, settle, syncStore } from './support/helpers.js';
import { storeArgs } from './support/store-matchers.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

interface Change {
  workspaceId: string;
  value?: unknown;
  remove?: boolean;
}

const changeSource = (emitter: unknown, event = 'change'): PatchSource => ({
  emitter: emitter as EventEmitter,
  event,
  map: (change: Change) =>
    change.remove
      ? { workspaceId: change.workspaceId, remove: true }
      : { workspaceId: change.workspaceId, fields: { value: change.value } },
});

describe('createEventCollector', () => {
  it('coalesces events from an EventEmitter into one write per workspace', () => {
    const emitter = new EventEmitter();
    const store = syncStore();
    createEventCollector({ store, sources: [changeSource(emitter)] });
    emitter.emit('change', { workspaceId: 'ws-1', value: 1 });
    emitter.emit('change', { workspaceId: 'ws-1', value: 2 });
    vi.advanceTimersByTime(150);
    expect(storeArgs(store.upsert)).toEqual([['ws-1', { value: 2 }, 'event:change']]);
  });

  it('labels writes with the source name when given', () => {
    const emitter = new EventEmitter();
    const store = syncStore();
    createEventCollector({ store, sources: [{ ...changeSource(emitter), name: 'domain:x' }] });
    emitter.emit('change', { workspaceId: 'ws-1', value: 1 });
    vi.advanceTimersByTime(150);
    expect(storeArgs(store.upsert)[0]?.[2]).toBe('domain:x');
  });

  it('applies every action of an array and ignores undefined and null', () => {
    const emitter = new EventEmitter();
    const store = syncStore();
    createEventCollector({
      store,
      sources: [
        {
          emitter,
          event: 'batch',
          map: (ids: string[] | null) =>
            ids?.map((workspaceId) => ({ workspaceId, fields: { seen: true } })),
        },
      ],
    });
    emitter.emit('batch', ['ws-1', 'ws-2']);
    emitter.emit('batch', null);
    vi.advanceTimersByTime(150);
    expect(storeArgs(store.upsert).map((call) => call[0])).toEqual(['ws-1', 'ws-2']);
  });

  it('writes at once an action marked immediate', () => {
    const emitter = new EventEmitter();
    const store = syncStore();
    createEventCollector({
      store,
      sources: [
        {
          emitter,
          event: 'urgent',
          map: (id: string) => ({ workspaceId: id, fields: { urgent: true }, immediate: true }),
        },
      ],
    });
    emitter.emit('urgent', 'ws-1');
    expect(store.upsert).toHaveBeenCalledTimes(1);
  });

  it('removes at once and drops pending work', () => {
    const emitter = new EventEmitter();
    const store = syncStore();
    createEventCollector({ store, sources: [changeSource(emitter)] });
    emitter.emit('change', { workspaceId: 'ws-1', value: 1 });
    emitter.emit('change', { workspaceId: 'ws-1', remove: true });
    expect(store.remove).toHaveStoreCall('ws-1');
    vi.advanceTimersByTime(1000);
    expect(store.upsert).not.toHaveBeenCalled();
  });

  it('passes the Event to map for an EventTarget', () => {
    const target = new EventTarget();
    const store = syncStore();
    const collector = createEventCollector({
      store,
      sources: [
        {
          emitter: target,
          event: 'ping',
          map: (event: CustomEvent<string>) => ({
            workspaceId: event.detail,
            fields: { ping: true },
          }),
        },
      ],
    });
    target.dispatchEvent(new CustomEvent('ping', { detail: 'ws-1' }));
    vi.advanceTimersByTime(150);
    expect(store.upsert).toHaveStoreCall('ws-1', { ping: true }, 'event:ping');
    return collector.stop();
  });

  it('subscribes to addListener/removeListener emitters', async () => {
    const listeners = new Map<string, (...args: unknown[]) => void>();
    const emitter = {
      addListener: (event: string, listener: (...args: unknown[]) => void) =>
        listeners.set(event, listener),
      removeListener: (event: string) => listeners.delete(event),
    };
    const store = syncStore();
    const collector = createEventCollector({ store, sources: [changeSource(emitter)] });
    listeners.get('change')?.({ workspaceId: 'ws-1', value: 1 });
    vi.advanceTimersByTime(150);
    expect(store.upsert).toHaveBeenCalledTimes(1);
    await collector.stop();
    expect(listeners.size).toBe(0);
  });

  it('rejects an emitter of no known shape, naming the source, and detaches what it attached', () => {
    const good = new EventEmitter();
    expect(() =>
      createEventCollector({
        store: syncStore(),
        sources: [changeSource(good), changeSource({ emit() {} }, 'other')],
      }),
    ).toThrow(/sources\[1\]\.emitter \(event:other\)/);
    expect(good.listenerCount('change')).toBe(0);
  });

  it.each([
    [
      'a name that is not a string',
      { name: 42 },
      TypeError,
      /`sources\[1\]\.name` to be a string, got `42`/,
    ],
    [
      'an immediate that is not a boolean',
      { immediate: 'yes' },
      TypeError,
      /`sources\[1\]\.immediate`/,
    ],
    [
      'a retry that is not an object',
      { retry: 3 },
      TypeError,
      /`sources\[1\]\.retry` to be an object/,
    ],
    [
      'retry.attempts of 0',
      { retry: { attempts: 0 } },
      RangeError,
      /`sources\[1\]\.retry\.attempts`/,
    ],
    [
      'a negative retry.delayMs',
      { retry: { delayMs: -1 } },
      RangeError,
      /`sources\[1\]\.retry\.delayMs`/,
    ],
  ])(
    'rejects a refresh source with %s, naming it, and detaches what it attached',
    (_label, extra, kind, message) => {
      const good = new EventEmitter();
      const other = new EventEmitter();
      const create = () =>
        createEventCollector({
          store: syncStore(),
          sources: [
            changeSource(good),
            {
              emitter: other,
              event: 'x',
              key: () => 'ws',
              refresh: async () => ({}),
              ...extra,
            } as never,
          ],
        });
      expect(create).toThrow(kind);
      expect(create).toThrow(message);
      expect(good.listenerCount('change')).toBe(0);
      expect(other.listenerCount('x')).toBe(0);
    },
  );

  it('rejects a patch source whose name is not a string before attaching it', () => {
    const emitter = new EventEmitter();
    expect(() =>
      createEventCollector({
        store: syncStore(),
        sources: [{ ...changeSource(emitter), name: Symbol('n') } as never],
      }),
    ).toThrow(/`sources\[0\]\.name` to be a string/);
    expect(emitter.listenerCount('change')).toBe(0);
  });

  it('counts an action whose getter throws as invalid, never throwing into emit()', () => {
    const emitter = new EventEmitter();
    const onError = vi.fn();
    const collector = createEventCollector({
      store: syncStore(),
      onError,
      sources: [
        {
          emitter,
          event: 'x',
          map: () => ({
            workspaceId: 'ws-1',
            get fields(): never {
              throw new Error('getter');
            },
          }),
        },
      ],
    });
    expect(() => emitter.emit('x')).not.toThrow();
    expect(collector.coalescer.stats()).toMatchObject({ invalid: 1, enqueued: 0 });
    expect(onError.mock.calls[0]?.[1]).toEqual({ operation: 'map', source: 'event:x' });
  });

  it('rejects a source without map', () => {
    expect(() =>
      createEventCollector({
        store: syncStore(),
        sources: [{ emitter: new EventEmitter(), event: 'x' } as never],
      }),
    ).toThrow(TypeError);
  });
});

describe('EventCollector.stop', () => {
  it('detaches exactly its listeners, synchronously, back to the baseline', () => {
    const emitter = new EventEmitter();
    const own = () => {};
    emitter.on('change', own);
    const collector = createEventCollector({
      store: syncStore(),
      sources: [changeSource(emitter)],
    });
    expect(emitter.listenerCount('change')).toBe(2);
    void collector.stop();
    expect(emitter.listeners('change')).toEqual([own]);
  });

  it('flushes what is pending and resolves once an async store has settled', async () => {
    const emitter = new EventEmitter();
    const { store, calls } = gatedStore();
    const collector = createEventCollector({
      store,
      sources: [changeSource(emitter)],
      canCreate: () => true,
    });
    emitter.emit('change', { workspaceId: 'ws-1', value: 1 });
    let stopped = false;
    const stopping = collector.stop().then(() => {
      stopped = true;
    });
    expect(calls).toHaveLength(1);
    await settle();
    expect(stopped).toBe(false);
    calls[0]?.gate.resolve(undefined);
    await stopping;
    expect(stopped).toBe(true);
  });

  it('is idempotent', async () => {
    const collector = createEventCollector({ store: syncStore(), sources: [] });
    const first = collector.stop();
    expect(collector.stop()).toBe(first);
    await first;
  });

  it('ignores events after stop', async () => {
    const emitter = new EventEmitter();
    const store = syncStore();
    const collector = createEventCollector({ store, sources: [changeSource(emitter)] });
    const listener = emitter.listeners('change')[0] as (change: Change) => void;
    await collector.stop();
    listener({ workspaceId: 'ws-1', value: 1 });
    emitter.emit('change', { workspaceId: 'ws-1', value: 1 });
    vi.advanceTimersByTime(1000);
    expect(store.upsert).not.toHaveBeenCalled();
  });

  it('keeps two collectors on the same emitters apart', async () => {
    const emitter = new EventEmitter();
    const storeA = syncStore();
    const storeB = syncStore();
    const a = createEventCollector({ store: storeA, sources: [changeSource(emitter)] });
    const b = createEventCollector({ store: storeB, sources: [changeSource(emitter)] });
    await a.stop();
    expect(emitter.listenerCount('change')).toBe(1);
    emitter.emit('change', { workspaceId: 'ws-1', value: 1 });
    vi.advanceTimersByTime(150);
    expect(storeA.upsert).not.toHaveBeenCalled();
    expect(storeB.upsert).toHaveBeenCalledTimes(1);
    await b.stop();
    expect(emitter.listenerCount('change')).toBe(0);
  });

  it('stops when its AbortSignal aborts', () => {
    const emitter = new EventEmitter();
    const store = syncStore();
    const controller = new AbortController();
    createEventCollector({ store, sources: [changeSource(emitter)], signal: controller.signal });
    emitter.emit('change', { workspaceId: 'ws-1', value: 1 });
    controller.abort();
    expect(emitter.listenerCount('change')).toBe(0);
    expect(store.upsert).toHaveBeenCalledTimes(1);
  });

  it('starts stopped with an AbortSignal already aborted', () => {
    const emitter = new EventEmitter();
    createEventCollector({
      store: syncStore(),
      sources: [changeSource(emitter)],
      signal: AbortSignal.abort(),
    });
    expect(emitter.listenerCount('change')).toBe(0);
  });

  it('stops at the end of an await using block', async () => {
    const emitter = new EventEmitter();
    const store = createMemorySnapshotStore();
    {
      await using collector = createEventCollector({
        store,
        sources: [changeSource(emitter)],
        canCreate: () => true,
      });
      emitter.emit('change', { workspaceId: 'ws-1', value: 1 });
      expect(collector.coalescer.pendingCount).toBe(1);
    }
    expect(emitter.listenerCount('change')).toBe(0);
    expect(store.getByWorkspaceId('ws-1')?.fields).toEqual({ value: 1 });
  });
});

describe('EventCollector bad input', () => {
  it('never throws into emit() and reports a throwing map', () => {
    const emitter = new EventEmitter();
    const onError = vi.fn();
    const collector = createEventCollector({
      store: syncStore(),
      onError,
      sources: [
        {
          emitter,
          event: 'x',
          map: () => {
            throw new Error('bad map');
          },
        },
      ],
    });
    expect(() => emitter.emit('x', 1)).not.toThrow();
    expect(onError).toHaveBeenCalledWith(expect.any(Error), {
      operation: 'map',
      source: 'event:x',
    });
    expect(collector.coalescer.stats().invalid).toBe(1);
  });

  it.each([
    ['undefined payload', undefined],
    ['number payload', 42],
    ['string payload', 'nope'],
    ['array payload', [1, 2]],
    ['empty workspaceId', { workspaceId: '', value: 1 }],
    ['numeric workspaceId', { workspaceId: 7, value: 1 }],
  ])('counts an action from a %s as invalid and warns', (_label, payload) => {
    const emitter = new EventEmitter();
    const warn = vi.fn();
    const store = syncStore();
    const collector = createEventCollector({
      store,
      logger: { warn },
      sources: [
        {
          emitter,
          event: 'change',
          map: (change: Change | undefined) => ({
            workspaceId: change?.workspaceId as string,
            fields: { value: change?.value },
          }),
        },
      ],
    });
    expect(() => emitter.emit('change', payload)).not.toThrow();
    expect(collector.coalescer.stats().invalid).toBe(1);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]?.[0]).toMatchObject({ source: 'event:change' });
  });

  it('counts fields that are not a plain object as invalid', () => {
    const emitter = new EventEmitter();
    const collector = createEventCollector({
      store: syncStore(),
      sources: [
        {
          emitter,
          event: 'x',
          map: (fields: unknown) => ({ workspaceId: 'ws-1', fields: fields as object }),
        },
      ],
    });
    emitter.emit('x', [1]);
    emitter.emit('x', 'str');
    emitter.emit('x', null);
    expect(collector.coalescer.stats().invalid).toBe(3);
  });

  it('keeps prototype keys of a payload as plain data', () => {
    const emitter = new EventEmitter();
    const store = createMemorySnapshotStore();
    createEventCollector({
      store,
      canCreate: () => true,
      sources: [
        {
          emitter,
          event: 'x',
          map: (json: string) => ({ workspaceId: 'ws-1', fields: JSON.parse(json) }),
        },
      ],
    });
    emitter.emit('x', '{"__proto__": {"polluted": true}, "ok": 1}');
    vi.advanceTimersByTime(150);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(store.getByWorkspaceId('ws-1')?.fields).toMatchObject({ ok: 1 });
  });
});
