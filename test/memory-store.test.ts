import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EventCoalescer, type SnapshotChange } from '../src/index.js';
import { createMemorySnapshotStore } from '../src/stores/memory.js';
import { describeStoreContract, workspaceOf } from './support/store-contract.js';

describeStoreContract('memory store', async (options) => createMemorySnapshotStore(options));

describe('createMemorySnapshotStore', () => {
  it('gives every change the next position: one order, the same ids for every subscriber', () => {
    const store = createMemorySnapshotStore({ feedLength: 3 });
    const first: SnapshotChange[] = [];
    store.subscribe((change) => first.push(change));
    for (let i = 1; i <= 5; i++) store.upsert(`ws-${i}`, { i }, 's');
    const ids = first.map((change) => change.id);
    const replayed: SnapshotChange[] = [];
    // Replayed before subscribe returns: a synchronous store has no window between the two.
    store.subscribe((change) => replayed.push(change), { since: ids[1] });
    expect(replayed.map((change) => change.id)).toEqual(ids.slice(2));
    expect(replayed.map(workspaceOf)).toEqual(['ws-3', 'ws-4', 'ws-5']);
    expect(store.position()).toBe(ids[4]);
    // Three kept: one further back starts with a reset at the current position.
    const behind: SnapshotChange[] = [];
    store.subscribe((change) => behind.push(change), { since: ids[0] });
    expect(behind).toEqual([{ type: 'reset', id: ids[4] }]);
  });

  it('keeps no changes with feedLength 0: any earlier position resets', () => {
    const store = createMemorySnapshotStore({ feedLength: 0 });
    const start = store.position();
    store.upsert('ws-1', { a: 1 }, 's');
    const seen: SnapshotChange[] = [];
    store.subscribe((change) => seen.push(change), { since: start });
    expect(seen.map((change) => change.type)).toEqual(['reset']);
    const now: SnapshotChange[] = [];
    store.subscribe((change) => now.push(change), { since: store.position() });
    expect(now).toEqual([]);
  });

  it.each([[-1], [1.5], ['10']])('refuses a feedLength of %j, naming it', (feedLength) => {
    expect(() => createMemorySnapshotStore({ feedLength } as never)).toThrow(/`feedLength`/);
  });

  it('hands out frozen entries, so a host cannot change the snapshot by accident', () => {
    const store = createMemorySnapshotStore();
    store.upsert('ws-1', { a: 1 }, 's');
    const entry = store.getByWorkspaceId('ws-1');
    expect(Object.isFrozen(entry)).toBe(true);
    expect(Object.isFrozen(entry?.fields)).toBe(true);
  });

  it('answers synchronously and counts its workspaces', () => {
    const store = createMemorySnapshotStore();
    expect(store.upsert('ws-1', { a: 1 }, 's')).toBeUndefined();
    store.upsert('ws-2', { a: 1 }, 's');
    store.remove('ws-1');
    expect(store.size).toBe(1);
    expect(store.getAll()).toHaveLength(1);
  });
});

describe('createMemorySnapshotStore removals', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('forgets removals once tombstoneTtlMs has passed, so removed ids do not hold memory', () => {
    const store = createMemorySnapshotStore({ tombstoneTtlMs: 1000 });
    for (let i = 0; i < 300_000; i++) store.remove(`ws-${i}`, i + 1);
    expect(store.removalCount).toBe(300_000);
    vi.advanceTimersByTime(999);
    expect(store.removalCount).toBe(300_000);
    vi.advanceTimersByTime(1);
    expect(store.removalCount).toBe(0);
  });

  it('keeps an older write from resurrecting a workspace until the TTL, and no longer', () => {
    const store = createMemorySnapshotStore({ tombstoneTtlMs: 1000 });
    store.remove('ws-1', 500);
    store.upsert('ws-1', { a: 1 }, 'late', 400);
    expect(store.getByWorkspaceId('ws-1')).toBeUndefined();
    vi.advanceTimersByTime(1000);
    store.upsert('ws-1', { a: 1 }, 'late', 400);
    expect(store.getByWorkspaceId('ws-1')?.fields).toEqual({ a: 1 });
  });

  it.each([[0], [-1], [1.5], [Number.NaN], ['600000']])(
    'refuses a tombstoneTtlMs of %s, naming it',
    (value) => {
      expect(() => createMemorySnapshotStore({ tombstoneTtlMs: value as number })).toThrow(
        /Expected `tombstoneTtlMs` to be a whole number from 1 and up/,
      );
    },
  );
});

describe('createMemorySnapshotStore listeners', () => {
  it('reports a listener that throws, and the other listeners still get the change', () => {
    const onError = vi.fn();
    const store = createMemorySnapshotStore({ onError });
    const failure = new Error('listener');
    const seen: string[] = [];
    store.subscribe(() => {
      throw failure;
    });
    store.subscribe((change) => seen.push(workspaceOf(change)));
    expect(() => store.upsert('ws-1', { a: 1 }, 's')).not.toThrow();
    expect(seen).toEqual(['ws-1']);
    expect(onError.mock.calls).toEqual([[failure, { operation: 'listener', workspaceId: 'ws-1' }]]);
    expect(store.getByWorkspaceId('ws-1')?.fields).toEqual({ a: 1 });
  });

  it('reports to its logger when it has no onError, as the host logs', () => {
    const logger = { error: vi.fn() };
    const store = createMemorySnapshotStore({ logger });
    const failure = new Error('listener');
    store.subscribe(() => {
      throw failure;
    });
    store.upsert('ws-1', { a: 1 }, 's');
    expect(logger.error.mock.calls).toEqual([
      [
        { operation: 'listener', workspaceId: 'ws-1', err: failure },
        'event-coalescer: snapshot store listener error',
      ],
    ]);
  });

  it('without onError or logger, prints one console line, no stack trace', () => {
    const printed = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const store = createMemorySnapshotStore();
      store.subscribe(() => {
        throw new TypeError('bad listener');
      });
      store.upsert('ws-1', { a: 1 }, 's');
      expect(printed.mock.calls).toEqual([
        ['event-coalescer: snapshot store listener error (ws-1): TypeError: bad listener'],
      ]);
    } finally {
      printed.mockRestore();
    }
  });

  it('refuses an unknown option with the one it likely meant', () => {
    expect(() =>
      createMemorySnapshotStore({ tombstoneTtl: 5 } as unknown as { tombstoneTtlMs: number }),
    ).toThrow(/Unknown option `options\.tombstoneTtl` \(did you mean `tombstoneTtlMs`\?\)/);
  });

  it('does not count a write as failed when only a listener threw', async () => {
    const store = createMemorySnapshotStore({ onError: () => {} });
    store.subscribe(() => {
      throw new Error('listener');
    });
    const onError = vi.fn();
    const coalescer = new EventCoalescer(store, { onError, canCreate: () => true });
    coalescer.enqueue('ws-1', { a: 1 }, 's', { immediate: true });
    await coalescer.close();
    expect(coalescer.stats()).toMatchObject({ flushed: 1, retried: 0, failed: 0 });
    expect(onError).not.toHaveBeenCalled();
  });

  it('goes on when onError itself throws', () => {
    const store = createMemorySnapshotStore({
      onError: () => {
        throw new Error('onError');
      },
    });
    store.subscribe(() => {
      throw new Error('listener');
    });
    expect(() => store.upsert('ws-1', { a: 1 }, 's')).not.toThrow();
  });
});
