import { EventEmitter as NodeEventEmitter } from 'node:events';
import Emittery from 'emittery';
import { EventEmitter as EventEmitter3 } from 'eventemitter3';
import mittImport from 'mitt';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createEventCollector, type EmitterLike } from '../src/collector/index.js';
import { syncStore } from './support/helpers.js';
import { storeArgs } from './support/store-matchers.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** mitt ships CommonJS typings with a default export; its factory, typed for this test. */
interface Mitt {
  all: Map<string, unknown[]>;
  emit(type: string, event: unknown): void;
}
const mitt = ((mittImport as unknown as { default?: unknown }).default ?? mittImport) as () => Mitt;

interface Harness {
  emitter: EmitterLike;
  emit(workspaceId: string): void | Promise<void>;
  listenerCount(): number;
  /** How `map` receives the event: some emitters pass the payload, EventTarget the Event. */
  workspaceOf(arg: unknown): string;
}

const payload = (arg: unknown) => (arg as { workspaceId: string }).workspaceId;

const harnesses: Record<string, () => Harness> = {
  'Node EventEmitter': () => {
    const emitter = new NodeEventEmitter();
    return {
      emitter,
      emit: (id) => void emitter.emit('change', { workspaceId: id }),
      listenerCount: () => emitter.listenerCount('change'),
      workspaceOf: payload,
    };
  },
  EventTarget: () => {
    const emitter = new EventTarget();
    let count = 0;
    const add = emitter.addEventListener.bind(emitter);
    const remove = emitter.removeEventListener.bind(emitter);
    emitter.addEventListener = (...args: Parameters<EventTarget['addEventListener']>) => {
      count++;
      add(...args);
    };
    emitter.removeEventListener = (...args: Parameters<EventTarget['removeEventListener']>) => {
      count--;
      remove(...args);
    };
    return {
      emitter,
      emit: (id) => void emitter.dispatchEvent(new CustomEvent('change', { detail: id })),
      listenerCount: () => count,
      workspaceOf: (event) => (event as CustomEvent<string>).detail,
    };
  },
  eventemitter3: () => {
    const emitter = new EventEmitter3();
    return {
      emitter,
      emit: (id) => void emitter.emit('change', { workspaceId: id }),
      listenerCount: () => emitter.listenerCount('change'),
      workspaceOf: payload,
    };
  },
  mitt: () => {
    const emitter = mitt();
    return {
      emitter: emitter as unknown as EmitterLike,
      emit: (id) => emitter.emit('change', { workspaceId: id }),
      listenerCount: () => emitter.all.get('change')?.length ?? 0,
      workspaceOf: payload,
    };
  },
  emittery: () => {
    const emitter = new Emittery<{ change: { workspaceId: string } }>();
    return {
      emitter: emitter as unknown as EmitterLike,
      emit: (id) => emitter.emit('change', { workspaceId: id }),
      listenerCount: () => emitter.listenerCount('change'),
      workspaceOf: payload,
    };
  },
};

describe.each(Object.entries(harnesses))('with %s', (_name, make) => {
  it('coalesces its events and detaches on stop, back to the baseline', async () => {
    const harness = make();
    const baseline = harness.listenerCount();
    const store = syncStore();
    const collector = createEventCollector({
      store,
      sources: [
        {
          emitter: harness.emitter,
          event: 'change',
          map: (arg: unknown) => ({
            workspaceId: harness.workspaceOf(arg),
            fields: { seen: true },
          }),
        },
      ],
    });
    expect(harness.listenerCount()).toBe(baseline + 1);
    await harness.emit('ws-1');
    await harness.emit('ws-1');
    vi.advanceTimersByTime(150);
    expect(storeArgs(store.upsert)).toEqual([['ws-1', { seen: true }, 'event:change']]);
    await collector.stop();
    expect(harness.listenerCount()).toBe(baseline);
    await harness.emit('ws-2');
    vi.advanceTimersByTime(150);
    expect(store.upsert).toHaveBeenCalledTimes(1);
  });
});

describe('emitter shapes', () => {
  it('uses the unsubscribe function that on() returns (emittery)', async () => {
    const off = vi.fn();
    const emitter = { on: vi.fn(() => off), off: vi.fn() };
    const collector = createEventCollector({
      store: syncStore(),
      sources: [{ emitter, event: 'x', map: () => undefined }],
    });
    await collector.stop();
    expect(off).toHaveBeenCalledTimes(1);
    expect(emitter.off).not.toHaveBeenCalled();
  });

  it('detects the shape once, at subscribe time', async () => {
    const emitter = new NodeEventEmitter();
    const collector = createEventCollector({
      store: syncStore(),
      sources: [{ emitter, event: 'x', map: () => undefined }],
    });
    const off = vi.spyOn(emitter, 'off');
    (emitter as unknown as { on: unknown }).on = undefined;
    await collector.stop();
    expect(off).toHaveBeenCalledTimes(1);
  });
});
