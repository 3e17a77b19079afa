import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createMemorySnapshotStore,
  EventCoalescer,
  type SnapshotStore,
  type UpsertItem,
  type UpsertOutcome,
} from '../src/index.js';
import { deferred, settle } from './support/helpers.js';

/** A store with `upsertMany`, recording each call: `many 3` or `one ws-1`. */
function batchingStore(answer?: (items: readonly UpsertItem[]) => unknown) {
  const log: string[] = [];
  const items: UpsertItem[][] = [];
  const store: SnapshotStore = {
    upsert(workspaceId) {
      log.push(`one ${workspaceId}`);
    },
    getByWorkspaceId: (workspaceId) => ({ workspaceId }),
    remove: () => {},
    upsertMany(batch) {
      log.push(`many ${batch.length}`);
      items.push([...batch]);
      return (answer?.(batch) ??
        batch.map(() => ({ status: 'fulfilled' }))) as readonly UpsertOutcome[];
    },
  };
  return { store, log, items };
}

const enqueueMany = (coalescer: EventCoalescer, count: number, from = 0) => {
  for (let i = from; i < from + count; i++) coalescer.enqueue(`ws-${i}`, { i }, 's');
};

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('batched writes, with a store that has upsertMany', () => {
  it('writes the workspaces due in one turn with one call per batchSize, and one alone as upsert', async () => {
    const { store, log, items } = batchingStore();
    const coalescer = new EventCoalescer(store, {
      windowMs: 100,
      batchSize: 100,
      canCreate: () => true,
    });
    enqueueMany(coalescer, 250);
    vi.advanceTimersByTime(100);
    expect(log).toEqual(['many 100', 'many 100', 'many 50']);
    expect(items[0]?.[0]).toMatchObject({ workspaceId: 'ws-0', fields: { i: 0 }, source: 's' });
    expect(coalescer.stats().flushed).toBe(250);
    coalescer.enqueue('ws-x', { a: 1 }, 's');
    vi.advanceTimersByTime(100);
    expect(log.at(-1)).toBe('one ws-x');
    await coalescer.close();
  });

  it('counts a batch as one of maxConcurrentWrites calls: a wave opens at most that many', async () => {
    const gates: Array<ReturnType<typeof deferred<UpsertOutcome[]>>> = [];
    const { store, log } = batchingStore(() => {
      const gate = deferred<UpsertOutcome[]>();
      gates.push(gate);
      return gate.promise;
    });
    const coalescer = new EventCoalescer(store, {
      windowMs: 10,
      maxConcurrentWrites: 2,
      batchSize: 10,
    });
    enqueueMany(coalescer, 50);
    vi.advanceTimersByTime(10);
    expect(log).toEqual(['many 10', 'many 10']);
    expect(coalescer.stats().inFlight).toBe(20);
    const fulfilled = (n: number) =>
      Array.from({ length: n }, () => ({ status: 'fulfilled' as const }));
    gates[0]?.resolve(fulfilled(10));
    await settle();
    // The freed slot starts the next ten together.
    expect(log).toEqual(['many 10', 'many 10', 'many 10']);
    for (let i = 1; i < 5; i++) {
      gates[i]?.resolve(fulfilled(10));
      await settle();
    }
    expect(coalescer.stats()).toMatchObject({ flushed: 50, inFlight: 0 });
    expect(log).toHaveLength(5);
  });

  it('retries a failed item alone; its neighbours landed', async () => {
    let first = true;
    const { store, log, items } = batchingStore((batch) =>
      batch.map((item) => {
        if (item.workspaceId === 'ws-1' && first) {
          first = false;
          return { status: 'rejected', reason: new Error('one item failed') };
        }
        return { status: 'fulfilled' };
      }),
    );
    const coalescer = new EventCoalescer(store, {
      windowMs: 10,
      retry: { delayMs: 50, jitter: 0 },
    });
    enqueueMany(coalescer, 3);
    const receipt = coalescer.settled('ws-0');
    vi.advanceTimersByTime(10);
    await expect(receipt).resolves.toBe('landed');
    expect(coalescer.stats()).toMatchObject({ flushed: 2, retried: 1, backlog: 1 });
    vi.advanceTimersByTime(50);
    expect(log).toEqual(['many 3', 'one ws-1']);
    expect(items[0]?.map((item) => item.workspaceId)).toEqual(['ws-0', 'ws-1', 'ws-2']);
    expect(coalescer.stats()).toMatchObject({ flushed: 3, failed: 0 });
    await coalescer.close();
  });

  it('fails every item of a call that throws, each retried on its own', async () => {
    const { store, log } = batchingStore(() => {
      throw new Error('thrown');
    });
    const coalescer = new EventCoalescer(store, {
      windowMs: 10,
      retry: { delayMs: 50, jitter: 0 },
    });
    enqueueMany(coalescer, 3);
    vi.advanceTimersByTime(10);
    expect(coalescer.stats()).toMatchObject({ flushed: 0, retried: 3, backlog: 3 });
    // Each back-off is a timer of its own: each retry goes alone.
    vi.advanceTimersByTime(50);
    expect(log).toEqual(['many 3', 'one ws-0', 'one ws-1', 'one ws-2']);
    expect(coalescer.stats()).toMatchObject({ flushed: 3, failed: 0 });
    await coalescer.close();
  });

  it.each([
    ['too few outcomes', [{ status: 'fulfilled' }]],
    ['no array', undefined],
    ['an outcome without a status', [{}, {}, {}]],
  ])('fails every item of an answer with %s, and retries them', async (_, answer) => {
    let calls = 0;
    const { store } = batchingStore(() => (++calls === 1 ? (answer ?? 'nothing') : undefined));
    const debug = vi.fn();
    const coalescer = new EventCoalescer(store, {
      windowMs: 10,
      retry: { delayMs: 50, jitter: 0 },
      logger: { debug },
    });
    enqueueMany(coalescer, 3);
    vi.advanceTimersByTime(10);
    expect(coalescer.stats()).toMatchObject({ flushed: 0, retried: 3 });
    expect(String(debug.mock.calls[0]?.[0].err)).toMatch(/upsertMany/);
    vi.advanceTimersByTime(50);
    expect(coalescer.stats()).toMatchObject({ flushed: 3, failed: 0 });
    await coalescer.close();
  });

  it('keeps one call in flight per workspace: a patch for a workspace in a batch waits for it', async () => {
    const gate = deferred<UpsertOutcome[]>();
    const { store, log, items } = batchingStore(() => gate.promise);
    const coalescer = new EventCoalescer(store, { windowMs: 10 });
    enqueueMany(coalescer, 2);
    vi.advanceTimersByTime(10);
    coalescer.enqueue('ws-0', { i: 'newer' }, 's');
    vi.advanceTimersByTime(10);
    expect(log).toEqual(['many 2']);
    expect(coalescer.stats().waiting).toBe(1);
    gate.resolve([{ status: 'fulfilled' }, { status: 'fulfilled' }]);
    await settle();
    expect(log).toEqual(['many 2', 'one ws-0']);
    expect(items).toHaveLength(1);
    await coalescer.close();
  });

  it('gives each item its own timestamp and its own signal, aborted at its callTimeoutMs', async () => {
    const { store, items } = batchingStore(() => new Promise(() => {}));
    const onError = vi.fn();
    const coalescer = new EventCoalescer(store, {
      windowMs: 10,
      timestamps: true,
      callTimeoutMs: 100,
      retry: { attempts: 1 },
      onError,
      drainTimeoutMs: 0,
    });
    enqueueMany(coalescer, 3);
    vi.advanceTimersByTime(10);
    const stamps = items[0]?.map((item) => item.timestamp as number) ?? [];
    expect(stamps).toHaveLength(3);
    expect([...stamps].sort((a, b) => a - b)).toEqual(stamps);
    expect(new Set(stamps).size).toBe(3);
    const signals = items[0]?.map((item) => item.call.signal) ?? [];
    expect(signals.some((signal) => signal.aborted)).toBe(false);
    vi.advanceTimersByTime(100);
    expect(signals.every((signal) => signal.aborted)).toBe(true);
    expect(onError).toHaveBeenCalledTimes(3);
    expect(onError.mock.calls.map(([error]) => error.code)).toEqual([
      'EC_CALL_TIMEOUT',
      'EC_CALL_TIMEOUT',
      'EC_CALL_TIMEOUT',
    ]);
    await coalescer.close();
  });

  it('stays synchronous with the memory store: a wave lands inside advanceTimersByTime', async () => {
    const store = createMemorySnapshotStore();
    const upsertMany = vi.spyOn(store, 'upsertMany');
    const coalescer = new EventCoalescer(store, { windowMs: 10, canCreate: () => true });
    enqueueMany(coalescer, 5);
    vi.advanceTimersByTime(10);
    expect(upsertMany).toHaveBeenCalledTimes(1);
    expect(store.size).toBe(5);
    expect(coalescer.stats()).toMatchObject({ flushed: 5, inFlight: 0 });
    // A refused value fails its own item only.
    coalescer.enqueue('ws-bad', { value: Number.NaN }, 's');
    coalescer.enqueue('ws-good', { value: 1 }, 's');
    const refused = coalescer.settled('ws-bad');
    const landed = coalescer.settled('ws-good');
    await coalescer.flushAll();
    await expect(refused).rejects.toMatchObject({ code: 'EC_VALUE_REFUSED' });
    await expect(landed).resolves.toBe('landed');
    await coalescer.close();
  });

  it('batches flushAll and what a store that came back releases', async () => {
    let away = true;
    const { store, log } = batchingStore((batch) =>
      batch.map(() =>
        away ? { status: 'rejected', reason: new Error('away') } : { status: 'fulfilled' },
      ),
    );
    const upsert = vi.spyOn(store, 'upsert').mockImplementation(() => {
      if (away) throw new Error('away');
    });
    const coalescer = new EventCoalescer(store, {
      windowMs: 1000,
      retry: { delayMs: 50, jitter: 0 },
    });
    enqueueMany(coalescer, 30);
    void coalescer.flushAll();
    expect(log).toEqual(['many 30']);
    expect(coalescer.stats().storeAvailable).toBe(false);
    away = false;
    await vi.advanceTimersByTimeAsync(10_000);
    // One probe lands alone; the 29 held behind it are released together.
    expect(upsert).toHaveBeenCalled();
    expect(log.at(-1)).toBe('many 29');
    expect(coalescer.stats()).toMatchObject({ flushed: 30, backlog: 0 });
    await coalescer.close();
  });

  it('refuses a batchSize that is not a whole number from 1', () => {
    const { store } = batchingStore();
    expect(() => new EventCoalescer(store, { batchSize: 0 })).toThrow(/`batchSize`/);
  });
});
