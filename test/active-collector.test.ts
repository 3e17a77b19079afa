import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  configureEventCollector,
  type PatchSource,
  stopEventCollector,
} from '../src/collector/index.js';
import { deferred, syncStore } from './helpers.js';
import { storeArgs } from './store-matchers.js';

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
