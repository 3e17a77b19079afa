import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  activeEventCollector,
  configureEventCollector,
  type PatchSource,
  stopEventCollector,
} from '../src/collector/index.js';
import { deferred, syncStore } from './support/helpers.js';
import { storeArgs } from './support/store-matchers.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(async () => {
  await stopEventCollector();
  vi.useRealTimers();
});

const source = (emitter: EventEmitter): PatchSource => ({
  emitter,
  event: 'change',
  map: (id: string) => ({ workspaceId: id, fields: { changed: true } }),
});

describe('configureEventCollector and stopEventCollector', () => {
  it('subscribes on configure and flushes and detaches on stop', async () => {
    const emitter = new EventEmitter();
    const store = syncStore();
    configureEventCollector({ store, sources: [source(emitter)] });
    emitter.emit('change', 'ws-1');
    await stopEventCollector();
    expect(store.upsert).toHaveBeenCalledTimes(1);
    expect(emitter.listenerCount('change')).toBe(0);
  });

  it('stops the active collector before configuring the next one', () => {
    const emitter = new EventEmitter();
    const first = syncStore();
    const second = syncStore();
    configureEventCollector({ store: first, sources: [source(emitter)] });
    emitter.emit('change', 'ws-1');
    configureEventCollector({ store: second, sources: [source(emitter)] });
    expect(emitter.listenerCount('change')).toBe(1);
    expect(first.upsert).toHaveBeenCalledTimes(1);
    emitter.emit('change', 'ws-2');
    vi.advanceTimersByTime(150);
    expect(first.upsert).toHaveBeenCalledTimes(1);
    expect(storeArgs(second.upsert).map((call) => call[0])).toEqual(['ws-2']);
  });

  it('is a no-op when nothing is configured', async () => {
    await expect(stopEventCollector()).resolves.toBeUndefined();
  });

  it('waits for a replaced collector still settling its writes', async () => {
    const emitter = new EventEmitter();
    const gate = deferred();
    const slowStore = { ...syncStore(), upsert: () => gate.promise };
    configureEventCollector({ store: slowStore, sources: [source(emitter)] });
    emitter.emit('change', 'ws-1');
    configureEventCollector({ store: syncStore(), sources: [source(emitter)] });
    let stopped = false;
    const stopping = stopEventCollector().then(() => {
      stopped = true;
    });
    await Promise.resolve();
    await Promise.resolve();
    expect(stopped).toBe(false);
    gate.resolve();
    await stopping;
    expect(stopped).toBe(true);
  });
});

describe('module hooks that cannot be tricked', () => {
  it('checks bad deps before stopping the collector that works, and leaves it running', () => {
    const emitter = new EventEmitter();
    const store = syncStore();
    const working = configureEventCollector({ store, sources: [source(emitter)] });
    expect(() =>
      configureEventCollector({ store, sources: [{ ...source(emitter), emitter: {} as never }] }),
    ).toThrow(/sources\[0\]\.emitter/);
    expect(() => configureEventCollector({ store, windowMs: -1, sources: [] })).toThrow(/windowMs/);
    expect(activeEventCollector()).toBe(working);
    emitter.emit('change', 'ws-1');
    vi.advanceTimersByTime(150);
    expect(storeArgs(store.upsert)).toEqual([['ws-1', { changed: true }, 'event:change']]);
  });

  it('leaves no orphan when a store call of the final flush configures again', async () => {
    const emitter = new EventEmitter();
    let reentered: ReturnType<typeof configureEventCollector> | undefined;
    const reentrant = {
      ...syncStore(),
      upsert: () => {
        reentered ??= configureEventCollector({ store: syncStore(), sources: [source(emitter)] });
      },
    };
    configureEventCollector({
      store: reentrant,
      canCreate: () => true,
      sources: [source(emitter)],
    });
    emitter.emit('change', 'ws-1');
    const last = configureEventCollector({ store: syncStore(), sources: [source(emitter)] });
    expect(reentered).toBeDefined();
    expect(activeEventCollector()).toBe(last);
    // Only the last one listens: the one configured from inside the flush was stopped.
    expect(emitter.listenerCount('change')).toBe(1);
    await stopEventCollector();
    expect(emitter.listenerCount('change')).toBe(0);
  });

  it('resolves a second stopEventCollector() only once the writes have settled too', async () => {
    const emitter = new EventEmitter();
    const gate = deferred();
    configureEventCollector({
      store: { ...syncStore(), upsert: () => gate.promise },
      sources: [source(emitter)],
    });
    emitter.emit('change', 'ws-1');
    const stopped: string[] = [];
    const first = stopEventCollector().then(() => stopped.push('first'));
    const second = stopEventCollector().then(() => stopped.push('second'));
    await Promise.resolve();
    await Promise.resolve();
    expect(stopped).toEqual([]);
    gate.resolve();
    await Promise.all([first, second]);
    expect(stopped.sort()).toEqual(['first', 'second']);
  });

  it('share the active collector between two copies of the package in one process', async () => {
    vi.resetModules();
    const other = await import('../src/collector/index.js');
    expect(other.stopEventCollector).not.toBe(stopEventCollector);
    const emitter = new EventEmitter();
    const store = syncStore();
    const collector = configureEventCollector({ store, sources: [source(emitter)] });
    expect(other.activeEventCollector()).toBe(collector);
    emitter.emit('change', 'ws-1');
    await other.stopEventCollector();
    expect(store.upsert).toHaveBeenCalledTimes(1);
    expect(emitter.listenerCount('change')).toBe(0);
    expect(activeEventCollector()).toBeUndefined();
  });
});
