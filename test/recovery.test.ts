import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createEventCollector } from '../src/collector/index.js';
import { EventCoalescer, type Fields, type SnapshotStore } from '../src/index.js';
import { deferred, settle } from './support/helpers.js';

/** A store that keeps marks, recording every call in order: `mark ws-1`, `upsert ws-1`, …. */
function markingStore(options: { known?: boolean; failing?: number } = {}) {
  const log: string[] = [];
  let failures = options.failing ?? 0;
  const gates: Array<ReturnType<typeof deferred<unknown>>> = [];
  const store: SnapshotStore & { gated: boolean } = {
    gated: false,
    upsert(workspaceId) {
      log.push(`upsert ${workspaceId}`);
      if (failures > 0) {
        failures--;
        throw new Error('store away');
      }
      if (!store.gated) return undefined;
      const gate = deferred<unknown>();
      gates.push(gate);
      return gate.promise;
    },
    getByWorkspaceId: (workspaceId) =>
      options.known === false ? undefined : { workspaceId, fields: {} },
    remove(workspaceId) {
      log.push(`remove ${workspaceId}`);
    },
    markPending(workspaceIds) {
      log.push(`mark ${workspaceIds.join(',')}`);
    },
    unmarkPending(workspaceIds) {
      log.push(`unmark ${workspaceIds.join(',')}`);
    },
  };
  return { store, log, gates };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('marks for crash recovery, with a store that keeps them', () => {
  it('marks a workspace once per pending patch, not per event, before its write', async () => {
    const { store, log } = markingStore();
    const coalescer = new EventCoalescer(store, { windowMs: 100 });
    for (let i = 0; i < 5; i++) coalescer.enqueue('ws-1', { i }, 's');
    await settle();
    expect(log).toEqual(['mark ws-1']);
    await vi.advanceTimersByTimeAsync(100);
    expect(log).toEqual(['mark ws-1', 'upsert ws-1']);
    // The next burst is a new pending patch: marked again.
    coalescer.enqueue('ws-1', { i: 9 }, 's');
    await vi.advanceTimersByTimeAsync(100);
    expect(log).toEqual(['mark ws-1', 'upsert ws-1', 'mark ws-1', 'upsert ws-1']);
    await coalescer.close();
  });

  it('marks every workspace that became pending in one turn with one call', async () => {
    const { store, log } = markingStore();
    const coalescer = new EventCoalescer(store);
    for (let i = 0; i < 1000; i++) coalescer.enqueue(`ws-${i % 100}`, { i }, 's');
    await settle();
    expect(log).toHaveLength(1);
    expect(log[0]?.split(',')).toHaveLength(100);
    await coalescer.close();
  });

  it('sends the mark before a write made in the same turn (immediate, leading edge)', async () => {
    const { store, log } = markingStore();
    const coalescer = new EventCoalescer(store, { leading: true });
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    coalescer.enqueue('ws-2', { a: 1 }, 's');
    expect(log).toEqual(['mark ws-1', 'upsert ws-1', 'mark ws-2', 'upsert ws-2']);
    await coalescer.close();
  });

  it('marks again what is still owed after a write ends: a patch that came during the write', async () => {
    const { store, log, gates } = markingStore();
    store.gated = true;
    const coalescer = new EventCoalescer(store, { windowMs: 100 });
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    await vi.advanceTimersByTimeAsync(100);
    expect(log).toEqual(['mark ws-1', 'upsert ws-1']);
    // A new patch while the write is in flight: its mark goes after the write was sent.
    coalescer.enqueue('ws-1', { a: 2 }, 's');
    await settle();
    expect(log).toEqual(['mark ws-1', 'upsert ws-1', 'mark ws-1']);
    // The write lands and clears the mark in the store: the patch still owed is marked again.
    gates[0]?.resolve(undefined);
    await settle();
    expect(log).toEqual(['mark ws-1', 'upsert ws-1', 'mark ws-1', 'mark ws-1']);
    store.gated = false;
    await vi.advanceTimersByTimeAsync(100);
    expect(log.at(-1)).toBe('upsert ws-1');
    await coalescer.close();
  });

  it('marks again before each retry: a failed write may have landed and cleared the mark', async () => {
    const { store, log } = markingStore({ failing: 2 });
    const coalescer = new EventCoalescer(store, {
      windowMs: 10,
      retry: { delayMs: 50, jitter: 0 },
    });
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    await vi.advanceTimersByTimeAsync(10);
    await vi.advanceTimersByTimeAsync(200);
    expect(log).toEqual([
      'mark ws-1',
      'upsert ws-1',
      'mark ws-1',
      'upsert ws-1',
      'mark ws-1',
      'upsert ws-1',
    ]);
    await coalescer.close();
  });

  it('unmarks a patch skipped for an unknown workspace, and keeps a given-up one marked', async () => {
    const skipped = markingStore({ known: false });
    const coalescer = new EventCoalescer(skipped.store, { windowMs: 10 });
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    await vi.advanceTimersByTimeAsync(10);
    await settle();
    expect(skipped.log).toEqual(['mark ws-1', 'unmark ws-1']);
    await coalescer.close();

    // Given up: its mark stays, so that a survivor re-reads the workspace once this one is gone.
    const failing = markingStore({ failing: 1 });
    const onError = vi.fn();
    const strict = new EventCoalescer(failing.store, {
      windowMs: 10,
      canCreate: () => true,
      retry: { attempts: 1 },
      onError,
    });
    strict.enqueue('ws-1', { a: 1 }, 's');
    await vi.advanceTimersByTimeAsync(10);
    await settle();
    expect(onError).toHaveBeenCalledTimes(1);
    expect(failing.log).toEqual(['mark ws-1', 'upsert ws-1']);
    await strict.close();
  });

  it('writes on, and warns, when marking throws or rejects; nothing reaches the caller', async () => {
    const warn = vi.fn();
    const upsert = vi.fn();
    let calls = 0;
    const store: SnapshotStore = {
      upsert,
      getByWorkspaceId: () => ({}),
      remove: () => {},
      markPending: () => {
        calls++;
        if (calls === 1) throw new Error('thrown');
        return Promise.reject(new Error('rejected'));
      },
    };
    const coalescer = new EventCoalescer(store, { windowMs: 10, logger: { warn } });
    expect(() => coalescer.enqueue('ws-1', { a: 1 }, 's')).not.toThrow();
    await vi.advanceTimersByTimeAsync(10);
    coalescer.enqueue('ws-2', { a: 1 }, 's');
    await vi.advanceTimersByTimeAsync(10);
    await settle();
    expect(upsert).toHaveBeenCalledTimes(2);
    expect(warn.mock.calls.map(([context]) => String(context.err))).toEqual([
      'Error: thrown',
      'Error: rejected',
    ]);
    expect(warn.mock.calls[0]?.[1]).toMatch(/markPending failed/);
    await coalescer.close();
  });

  it('calls no marks on a store without markPending', async () => {
    const upsert = vi.fn();
    const store = { upsert, getByWorkspaceId: () => ({}), remove: () => {} };
    const coalescer = new EventCoalescer(store, { windowMs: 10 });
    coalescer.enqueue('ws-1', { a: 1 }, 's');
    await vi.advanceTimersByTimeAsync(10);
    expect(upsert).toHaveBeenCalledTimes(1);
    await coalescer.close();
  });
});

describe('collector.recover(): re-reading what a replica that is gone had pending', () => {
  /** A store that keeps marks, with orphans to hand out once per claim. */
  function orphanStore(rounds: string[][]) {
    const { store, log } = markingStore();
    const claims = [...rounds];
    const claimOrphans = vi.fn(() => Promise.resolve(claims.shift() ?? []));
    return { store: { ...store, claimOrphans }, log, claimOrphans };
  }
  const refreshSource = (refresh: (workspaceId: string) => Promise<Fields | undefined>) => ({
    emitter: new EventEmitter(),
    event: 'changed',
    key: (workspaceId: string) => workspaceId,
    refresh,
  });

  it('at start, claims the orphans and re-reads them through the refresh sources', async () => {
    const { store, log, claimOrphans } = orphanStore([['ws-1', 'ws-gone']]);
    const refresh = vi.fn(async (workspaceId: string) =>
      workspaceId === 'ws-gone' ? undefined : { status: 'truth' },
    );
    const collector = createEventCollector({
      store,
      windowMs: 10,
      sources: [refreshSource(refresh)],
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(claimOrphans).toHaveBeenCalledTimes(1);
    expect(refresh.mock.calls.map(([id]) => id)).toEqual(['ws-1', 'ws-gone']);
    await vi.advanceTimersByTimeAsync(10);
    // ws-1 is written (its write clears the mark); ws-gone gave nothing: unmarked.
    expect(log).toContain('upsert ws-1');
    expect(log).toContain('unmark ws-gone');
    expect(log).not.toContain('unmark ws-1');
    await collector.stop();
  });

  it('looks again every recoverEveryMs, and never after stop()', async () => {
    const { store, claimOrphans } = orphanStore([[], ['ws-2']]);
    const refresh = vi.fn(async () => ({ a: 1 }));
    const collector = createEventCollector({
      store,
      recoverEveryMs: 5000,
      sources: [refreshSource(refresh)],
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(claimOrphans).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(5000);
    expect(claimOrphans).toHaveBeenCalledTimes(2);
    expect(refresh).toHaveBeenCalledWith('ws-2', expect.any(AbortSignal));
    await collector.stop();
    await vi.advanceTimersByTimeAsync(20_000);
    expect(claimOrphans).toHaveBeenCalledTimes(2);
  });

  it('hands the orphans to onOrphans when given, and keeps their marks if it fails', async () => {
    const { store, log } = orphanStore([['ws-1'], ['ws-2']]);
    const onOrphans = vi.fn(async (ids: readonly string[]) => {
      if (ids.includes('ws-2')) throw new Error('host failed');
    });
    const error = vi.fn();
    const collector = createEventCollector({
      store,
      onOrphans,
      recoverEveryMs: Infinity,
      logger: { error },
      sources: [],
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(onOrphans).toHaveBeenCalledWith(['ws-1']);
    expect(log).toEqual(['unmark ws-1']);
    // On call: the second claim, whose handling fails, keeps its marks.
    expect(await collector.recover()).toEqual(['ws-2']);
    expect(log).toEqual(['unmark ws-1']);
    expect(error.mock.calls[0]?.[1]).toMatch(/onOrphans failed; the workspaces stay marked/);
    await collector.stop();
  });

  it('shares a recovery in flight, and never rejects when the claim fails', async () => {
    const warn = vi.fn();
    let claims = 0;
    const { store } = markingStore();
    const failing = {
      ...store,
      claimOrphans: () => {
        claims++;
        return Promise.reject(new Error('store away'));
      },
    };
    const collector = createEventCollector({
      store: failing,
      onOrphans: () => {},
      logger: { warn },
      recoverEveryMs: Infinity,
      sources: [],
    });
    const [a, b] = [collector.recover(), collector.recover()];
    expect(await a).toEqual([]);
    expect(await b).toEqual([]);
    expect(claims).toBe(1);
    expect(warn.mock.calls[0]?.[1]).toMatch(/looking for orphaned workspaces failed/);
    await collector.stop();
  });

  it('does nothing without a store that keeps marks, or without a way to re-read', async () => {
    const { store, claimOrphans } = orphanStore([['ws-1']]);
    const blind = createEventCollector({ store, sources: [] });
    expect(await blind.recover()).toEqual([]);
    expect(claimOrphans).not.toHaveBeenCalled();
    await blind.stop();
    const plain = createEventCollector({
      store: { upsert: () => {}, getByWorkspaceId: () => ({}), remove: () => {} },
      onOrphans: () => {},
      sources: [],
    });
    expect(await plain.recover()).toEqual([]);
    await plain.stop();
  });

  it.each([
    [{ onOrphans: 'log' }, /`onOrphans` to be a function/],
    [{ recoverEveryMs: 0 }, /`recoverEveryMs`/],
  ])('refuses %j, naming it', (deps, message) => {
    const { store } = markingStore();
    expect(() => createEventCollector({ store, sources: [], ...deps } as never)).toThrow(message);
  });
});
