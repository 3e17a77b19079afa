/**
 * Windows of their own, per enqueue, per source and per preset event: a workspace's patch is
 * due at the earliest deadline any of its enqueues demands, one write carries everything, and
 * one call stays in flight per workspace.
 */
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createEventCollector,
  createMemorySnapshotStore,
  EventCoalescer,
  workspaceSnapshotSources,
} from '../src/index.js';
import { gatedStore, settle, syncStore, workspaceDomains } from './support/helpers.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const upserts = (store: ReturnType<typeof syncStore>) =>
  store.upsert.mock.calls.map(([id, fields, source]) => ({ id, fields, source }));

describe('enqueue(…, { windowMs, maxWaitMs })', () => {
  it('a short window of its own writes before the coalescer window would', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { windowMs: 1000 });
    coalescer.enqueue('ws-1', { status: 'READY' }, 'status', { windowMs: 20 });
    vi.advanceTimersByTime(19);
    expect(store.upsert).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(upserts(store)).toEqual([{ id: 'ws-1', fields: { status: 'READY' }, source: 'status' }]);
  });

  it('a long window of its own waits past the coalescer window', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { windowMs: 20, maxWaitMs: Infinity });
    coalescer.enqueue('ws-1', { isWorking: true }, 'ping', { windowMs: 1000 });
    vi.advanceTimersByTime(999);
    expect(store.upsert).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(store.upsert).toHaveBeenCalledTimes(1);
  });

  it('slow pings do not hold back a fast field enqueued among them; one write carries both', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { windowMs: 20, maxWaitMs: Infinity });
    coalescer.enqueue('ws-1', { isWorking: true }, 'ping', { windowMs: 1000 });
    vi.advanceTimersByTime(5);
    coalescer.enqueue('ws-1', { status: 'READY' }, 'status');
    // Pings keep coming: they restart their own window, not the status's.
    for (let i = 0; i < 3; i++) {
      vi.advanceTimersByTime(5);
      coalescer.enqueue('ws-1', { isWorking: i % 2 === 0 }, 'ping', { windowMs: 1000 });
    }
    // The status was enqueued at 5 ms: due at 25 ms.
    vi.advanceTimersByTime(4);
    expect(store.upsert).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(upserts(store)).toEqual([
      { id: 'ws-1', fields: { isWorking: true, status: 'READY' }, source: 'ping+status' },
    ]);
  });

  it("another workspace's patch is written in the coalescer window while a long one waits", () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { windowMs: 100, maxWaitMs: 250 });
    coalescer.enqueue('ws-1', { a: 1 }, 'ping', { windowMs: 400 });
    coalescer.enqueue('ws-2', { a: 1 }, 's');
    vi.advanceTimersByTime(100);
    expect(upserts(store).map((call) => call.id)).toEqual(['ws-2']);
    vi.advanceTimersByTime(150);
    expect(upserts(store).map((call) => call.id)).toEqual(['ws-2', 'ws-1']);
  });

  it('a window restarts from the last enqueue of its own kind (overlapping bursts)', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { windowMs: 500, maxWaitMs: Infinity });
    coalescer.enqueue('ws-1', { a: 1 }, 'fast', { windowMs: 30 });
    vi.advanceTimersByTime(20);
    coalescer.enqueue('ws-1', { a: 2 }, 'fast', { windowMs: 30 });
    vi.advanceTimersByTime(20);
    coalescer.enqueue('ws-1', { b: 1 }, 'slow');
    // The fast kind's last enqueue was at 20 ms: due at 50 ms, not 70.
    vi.advanceTimersByTime(9);
    expect(store.upsert).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(upserts(store)).toEqual([{ id: 'ws-1', fields: { a: 2, b: 1 }, source: 'fast+slow' }]);
  });

  it('maxWaitMs of its own bounds a steady stream, counted from that enqueue', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { windowMs: 50, maxWaitMs: Infinity });
    coalescer.enqueue('ws-1', { a: 0 }, 's');
    vi.advanceTimersByTime(30);
    coalescer.enqueue('ws-1', { a: 1 }, 's', { maxWaitMs: 100 });
    for (let t = 60; t < 130; t += 30) {
      vi.advanceTimersByTime(30);
      coalescer.enqueue('ws-1', { a: t }, 's');
    }
    // Bound set at 30 ms: written at 130 ms although the window keeps restarting.
    expect(store.upsert).toHaveBeenCalledTimes(0);
    vi.advanceTimersByTime(10);
    expect(store.upsert).toHaveBeenCalledTimes(1);
  });

  it("the coalescer's maxWaitMs still bounds what its own enqueues added", () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { windowMs: 50, maxWaitMs: 200 });
    coalescer.enqueue('ws-1', { a: 0 }, 's');
    for (let t = 40; t <= 160; t += 40) {
      vi.advanceTimersByTime(40);
      coalescer.enqueue('ws-1', { a: t }, 's');
      coalescer.enqueue('ws-1', { b: t }, 'ping', { windowMs: 1000, maxWaitMs: 5000 });
    }
    vi.advanceTimersByTime(39);
    expect(store.upsert).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(store.upsert).toHaveBeenCalledTimes(1);
  });

  it('with the leading edge, a quiet workspace is written at once and its own window coalesces what follows', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { windowMs: 10, leading: true });
    coalescer.enqueue('ws-1', { a: 1 }, 's', { windowMs: 300 });
    expect(store.upsert).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(100);
    // Within its own 300 ms since that write: not quiet, so it waits for a trailing write.
    coalescer.enqueue('ws-1', { a: 2 }, 's', { windowMs: 300 });
    expect(store.upsert).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(300);
    expect(upserts(store).map((call) => call.fields)).toEqual([{ a: 1 }, { a: 2 }]);
    // With the coalescer's 10 ms window, the same pace is a leading write each time.
    vi.advanceTimersByTime(100);
    coalescer.enqueue('ws-1', { a: 3 }, 's');
    expect(store.upsert).toHaveBeenCalledTimes(3);
  });

  it('keeps one call in flight per workspace: a fast patch waits behind a slow call and lands after it', async () => {
    const { store, calls } = gatedStore();
    const coalescer = new EventCoalescer(store, { windowMs: 1000, canCreate: () => true });
    coalescer.enqueue('ws-1', { status: 'OLD' }, 'slow');
    vi.advanceTimersByTime(1000);
    await settle();
    expect(calls.map((call) => call.method)).toEqual(['upsert']);
    coalescer.enqueue('ws-1', { status: 'NEW' }, 'fast', { windowMs: 5 });
    vi.advanceTimersByTime(5);
    await settle();
    // Due, but the first upsert has not answered: nothing else goes out.
    expect(calls).toHaveLength(1);
    calls[0]?.gate.resolve(undefined);
    await settle();
    expect(calls.map((call) => call.args[1])).toEqual([{ status: 'OLD' }, { status: 'NEW' }]);
    calls[1]?.gate.resolve(undefined);
    await coalescer.close();
  });

  it('flushAll writes patches with windows of their own in first-enqueue order, with the rest', async () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { windowMs: 1000 });
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    vi.advanceTimersByTime(1);
    coalescer.enqueue('ws-2', { a: 1 }, 's', { windowMs: 5000 });
    vi.advanceTimersByTime(1);
    coalescer.enqueue('ws-3', { a: 1 }, 's');
    vi.advanceTimersByTime(1);
    coalescer.enqueue('ws-1', { b: 1 }, 's', { windowMs: 5000 });
    coalescer.enqueue('ws-4', { a: 1 }, 's', { windowMs: 5000 });
    expect(coalescer.pendingCount).toBe(4);
    await coalescer.flushAll();
    expect(upserts(store).map((call) => call.id)).toEqual(['ws-1', 'ws-2', 'ws-3', 'ws-4']);
    expect(coalescer.pendingCount).toBe(0);
  });

  it('maxPending writes the oldest first, whichever schedule holds it', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { windowMs: 1000, maxPending: 2 });
    coalescer.enqueue('ws-1', { a: 1 }, 's', { windowMs: 5000 });
    vi.advanceTimersByTime(1);
    coalescer.enqueue('ws-2', { a: 1 }, 's');
    vi.advanceTimersByTime(1);
    coalescer.enqueue('ws-3', { a: 1 }, 's');
    expect(upserts(store).map((call) => call.id)).toEqual(['ws-1']);
    expect(coalescer.pendingCount).toBe(2);
  });

  it('remove drops a pending patch with a window of its own, and nothing is written later', async () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { a: 1 }, 's', { windowMs: 50 });
    await coalescer.remove('ws-1');
    vi.advanceTimersByTime(10_000);
    expect(store.upsert).not.toHaveBeenCalled();
    expect(store.remove).toHaveBeenCalledTimes(1);
  });

  it('peek and settled see a patch with a window of its own', async () => {
    const store = createMemorySnapshotStore();
    const coalescer = new EventCoalescer(store, { canCreate: () => true });
    coalescer.enqueue('ws-1', { a: 1 }, 's', { windowMs: 40 });
    expect(coalescer.peek('ws-1')).toEqual({ a: 1 });
    const receipt = coalescer.settled('ws-1');
    vi.advanceTimersByTime(40);
    await expect(receipt).resolves.toBe('landed');
    expect(coalescer.isPending('ws-1')).toBe(false);
  });

  it('an overdue deadline is written at the next enqueue when the loop was too busy to fire', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { windowMs: 1000, maxWaitMs: Infinity });
    coalescer.enqueue('ws-1', { a: 1 }, 'fast', { windowMs: 10 });
    // The clock moves but no timer runs (a busy loop): the next enqueue sees the deadline passed.
    vi.setSystemTime(Date.now() + 50);
    vi.spyOn(performance, 'now').mockReturnValue(performance.now() + 50);
    coalescer.enqueue('ws-1', { b: 1 }, 'slow');
    expect(upserts(store)).toEqual([{ id: 'ws-1', fields: { a: 1, b: 1 }, source: 'fast+slow' }]);
  });

  it('keeps windows of their own exact across the clock re-basing past 2^30 ms', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { windowMs: 150, maxWaitMs: Infinity });
    vi.advanceTimersByTime(2 ** 30 - 1000);
    coalescer.enqueue('ws-1', { a: 1 }, 's', { windowMs: 3000 });
    vi.advanceTimersByTime(2000);
    // Past 2^30 ms since the epoch: this enqueue re-bases every pending time.
    coalescer.enqueue('ws-2', { a: 1 }, 's');
    vi.advanceTimersByTime(150);
    expect(upserts(store).map((call) => call.id)).toEqual(['ws-2']);
    vi.advanceTimersByTime(849);
    expect(store.upsert).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(1);
    expect(upserts(store).map((call) => call.id)).toEqual(['ws-2', 'ws-1']);
  });

  it('serves 10,000 workspaces with windows of their own from one timer, each at its deadline', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { windowMs: 1000, maxWaitMs: Infinity });
    const windows = [10, 50, 200];
    for (let i = 0; i < 10_000; i++) {
      coalescer.enqueue(`ws-${i}`, { i }, 's', { windowMs: windows[i % 3] as number });
    }
    expect(vi.getTimerCount()).toBe(1);
    const writtenBy = (ms: number) => {
      vi.advanceTimersByTime(ms);
      return store.upsert.mock.calls.length;
    };
    expect(writtenBy(9)).toBe(0);
    expect(writtenBy(1)).toBe(3334);
    expect(writtenBy(39)).toBe(3334);
    expect(writtenBy(1)).toBe(6667);
    expect(writtenBy(150)).toBe(10_000);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a windowMs getter that throws is the caller’s error, with nothing merged or counted', () => {
    const coalescer = new EventCoalescer(syncStore());
    const options = {
      get windowMs(): number {
        throw new Error('getter');
      },
    };
    expect(() => coalescer.enqueue('ws-1', { a: 1 }, 's', options)).toThrow('getter');
    expect(coalescer.isPending('ws-1')).toBe(false);
    expect(coalescer.stats().enqueued).toBe(0);
  });

  it('refuses windows that are not durations, naming the option', () => {
    const coalescer = new EventCoalescer(syncStore());
    expect(() => coalescer.enqueue('ws-1', { a: 1 }, 's', { windowMs: -1 })).toThrow(
      /`options\.windowMs` to be a finite number from 0 and up, got `-1`/,
    );
    expect(() =>
      coalescer.enqueue('ws-1', { a: 1 }, 's', { maxWaitMs: '5' as unknown as number }),
    ).toThrow(/`options\.maxWaitMs`/);
    expect(() =>
      coalescer.enqueue('ws-1', { a: 1 }, 's', { windowMS: 5 } as unknown as { windowMs: number }),
    ).toThrow(/did you mean `windowMs`/);
    expect(coalescer.stats().enqueued).toBe(0);
  });

  it('costs nothing when the window asked for is the coalescer’s own', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store, { windowMs: 100 });
    coalescer.enqueue('ws-1', { a: 1 }, 's', { windowMs: 100 });
    coalescer.enqueue('ws-1', { b: 1 }, 's');
    vi.advanceTimersByTime(100);
    expect(upserts(store)).toEqual([{ id: 'ws-1', fields: { a: 1, b: 1 }, source: 's' }]);
  });
});

describe('windows of a source', () => {
  it("a source's windowMs applies to its events, and a map result's overrides it", async () => {
    const store = syncStore();
    const emitter = new EventEmitter();
    const collector = createEventCollector({
      store,
      windowMs: 1000,
      maxWaitMs: Infinity,
      sources: [
        {
          emitter,
          event: 'status',
          windowMs: 20,
          map: (e: { id: string; urgent?: boolean }) => ({
            workspaceId: e.id,
            fields: { status: 'READY' },
            ...(e.urgent ? { windowMs: 1 } : {}),
          }),
        },
      ],
    });
    emitter.emit('status', { id: 'ws-1' });
    emitter.emit('status', { id: 'ws-2', urgent: true });
    vi.advanceTimersByTime(1);
    expect(upserts(store).map((call) => call.id)).toEqual(['ws-2']);
    vi.advanceTimersByTime(19);
    expect(upserts(store).map((call) => call.id)).toEqual(['ws-2', 'ws-1']);
    await collector.stop();
  });

  it("a refresh source's windowMs applies to what it reads", async () => {
    const store = syncStore();
    const emitter = new EventEmitter();
    const collector = createEventCollector({
      store,
      windowMs: 1000,
      sources: [
        {
          emitter,
          event: 'changed',
          windowMs: 10,
          key: (id: string) => id,
          refresh: async () => ({ status: 'READY' }),
        },
      ],
    });
    emitter.emit('changed', 'ws-1');
    await settle();
    vi.advanceTimersByTime(10);
    expect(upserts(store).map((call) => call.id)).toEqual(['ws-1']);
    await collector.stop();
  });

  it("a source's malformed window is refused at creation, naming the source", () => {
    expect(() =>
      createEventCollector({
        store: syncStore(),
        sources: [{ emitter: new EventEmitter(), event: 'e', windowMs: -5, map: () => undefined }],
      }),
    ).toThrow(/`sources\[0\]\.windowMs`/);
  });

  it("a map result's malformed window is counted invalid and reported, never thrown into emit()", async () => {
    const onError = vi.fn();
    const emitter = new EventEmitter();
    const collector = createEventCollector({
      store: syncStore(),
      onError,
      sources: [
        {
          emitter,
          event: 'e',
          map: () => ({ workspaceId: 'ws-1', fields: { a: 1 }, windowMs: Number.NaN }),
        },
      ],
    });
    expect(() => emitter.emit('e')).not.toThrow();
    expect(collector.stats().invalid).toBe(1);
    expect(onError).toHaveBeenCalledTimes(1);
    await collector.stop();
  });
});

describe('preset windows per event', () => {
  const domains = () => workspaceDomains();

  it('activity pings wait their own second while a state change goes out in the window', async () => {
    const store = syncStore();
    const d = domains();
    const collector = createEventCollector({
      store,
      windowMs: 50,
      maxWaitMs: 5000,
      sources: workspaceSnapshotSources(d, { windowMs: { workspaceActive: 1000 } }),
    });
    d.workspaceActivityService.emit('workspace_active', { workspaceId: 'ws-1' });
    d.workspaceActivityService.emit('workspace_active', { workspaceId: 'ws-2' });
    vi.advanceTimersByTime(500);
    d.workspaceStateMachine.emit('workspace_state_changed', {
      workspaceId: 'ws-2',
      fromStatus: 'NEW',
      toStatus: 'READY',
    });
    vi.advanceTimersByTime(50);
    expect(upserts(store)).toEqual([
      {
        id: 'ws-2',
        fields: { isWorking: true, status: 'READY' },
        source: 'event:workspace_active+event:workspace_state_changed',
      },
    ]);
    vi.advanceTimersByTime(450);
    expect(upserts(store).map((call) => call.id)).toEqual(['ws-2', 'ws-1']);
    await collector.stop();
  });

  it('refuses a window for an event it does not have, with the one it likely meant', () => {
    expect(() =>
      workspaceSnapshotSources(domains(), {
        windowMs: { workspaceActiv: 1000 } as unknown as { workspaceActive: number },
      }),
    ).toThrow(/`options\.windowMs\.workspaceActiv` \(did you mean `workspaceActive`\?\)/);
    expect(() => workspaceSnapshotSources(domains(), { maxWaitMs: { workspaceIdle: -1 } })).toThrow(
      RangeError,
    );
  });
});
