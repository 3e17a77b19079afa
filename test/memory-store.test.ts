import { describe, expect, it, vi } from 'vitest';
import { createMemorySnapshotStore, type SnapshotChange } from '../src/index.js';

describe('createMemorySnapshotStore', () => {
  it('creates an entry on first write with version 1', () => {
    const store = createMemorySnapshotStore();
    store.upsert('ws-1', { status: 'READY' }, 'event:a', 1234);
    expect(store.getByWorkspaceId('ws-1')).toEqual({
      workspaceId: 'ws-1',
      fields: { status: 'READY' },
      version: 1,
      source: 'event:a',
      updatedAt: 1234,
    });
    expect(store.size).toBe(1);
  });

  it('merges like the coalescer: undefined skipped, null kept', () => {
    const store = createMemorySnapshotStore();
    store.upsert('ws-1', { a: 1, b: 2 }, 's');
    store.upsert('ws-1', { a: undefined, b: null, c: 3 }, 's');
    expect(store.getByWorkspaceId('ws-1')?.fields).toEqual({ a: 1, b: null, c: 3 });
    expect(store.getByWorkspaceId('ws-1')?.version).toBe(2);
  });

  it('returns a read-only copy, never the live entry', () => {
    const store = createMemorySnapshotStore();
    store.upsert('ws-1', { a: 1 }, 's');
    const before = store.getByWorkspaceId('ws-1');
    store.upsert('ws-1', { a: 2 }, 's');
    expect(before?.fields).toEqual({ a: 1 });
    expect(Object.isFrozen(before)).toBe(true);
    expect(Object.isFrozen(before?.fields)).toBe(true);
    expect(store.getByWorkspaceId('ws-1')?.fields).toEqual({ a: 2 });
  });

  it('emits nothing and keeps the version for a write that changes nothing', () => {
    const store = createMemorySnapshotStore();
    const listener = vi.fn();
    store.upsert('ws-1', { a: 1, b: null }, 's');
    store.subscribe(listener);
    store.upsert('ws-1', { a: 1, b: null, c: undefined }, 'other');
    expect(listener).not.toHaveBeenCalled();
    expect(store.getByWorkspaceId('ws-1')).toMatchObject({ version: 1, source: 's' });
  });

  it('emits upserts with the changed fields and removals with the previous entry', () => {
    const store = createMemorySnapshotStore();
    const changes: SnapshotChange[] = [];
    const unsubscribe = store.subscribe((change) => changes.push(change));
    store.upsert('ws-1', { a: 1, b: 1 }, 's');
    store.upsert('ws-1', { a: 1, b: 2 }, 's');
    store.remove('ws-1');
    unsubscribe();
    store.upsert('ws-2', { a: 1 }, 's');
    expect(changes.map((c) => c.type)).toEqual(['upsert', 'upsert', 'remove']);
    expect(changes[1]).toMatchObject({ type: 'upsert', changed: ['b'], entry: { version: 2 } });
    expect(changes[2]).toMatchObject({ type: 'remove', previous: { fields: { a: 1, b: 2 } } });
  });

  it('removes silently when the workspace is unknown', () => {
    const store = createMemorySnapshotStore();
    const listener = vi.fn();
    store.subscribe(listener);
    store.remove('nope');
    expect(listener).not.toHaveBeenCalled();
  });

  it('lists every entry with getAll', () => {
    const store = createMemorySnapshotStore();
    store.upsert('ws-1', { a: 1 }, 's');
    store.upsert('ws-2', { a: 2 }, 's');
    expect(store.getAll().map((e) => [e.workspaceId, e.fields])).toEqual([
      ['ws-1', { a: 1 }],
      ['ws-2', { a: 2 }],
    ]);
  });

  it('keeps prototype keys as plain data', () => {
    const store = createMemorySnapshotStore();
    store.upsert('ws-1', JSON.parse('{"__proto__": {"x": 1}, "constructor": 2}'), 's');
    const fields = store.getByWorkspaceId('ws-1')?.fields as Record<string, unknown>;
    expect(Object.getPrototypeOf(fields)).toBe(Object.prototype);
    expect(Object.keys(fields)).toEqual(['__proto__', 'constructor']);
  });

  describe('with timestamps', () => {
    it('overwrites a field only with a newer write', () => {
      const store = createMemorySnapshotStore();
      store.upsert('ws-1', { a: 'new', b: 'new' }, 's', 20);
      store.upsert('ws-1', { a: 'old', c: 'only-old' }, 's', 10);
      expect(store.getByWorkspaceId('ws-1')?.fields).toEqual({
        a: 'new',
        b: 'new',
        c: 'only-old',
      });
    });

    it('keeps both writers’ fields', () => {
      const store = createMemorySnapshotStore();
      store.upsert('ws-1', { status: 'READY' }, 'replica-a', 10);
      store.upsert('ws-1', { isWorking: true }, 'replica-b', 11);
      expect(store.getByWorkspaceId('ws-1')?.fields).toEqual({ status: 'READY', isWorking: true });
    });

    it('ignores a write not newer than the removal', () => {
      const store = createMemorySnapshotStore();
      store.upsert('ws-1', { a: 1 }, 's', 10);
      store.remove('ws-1', 20);
      store.upsert('ws-1', { a: 2 }, 's', 15);
      store.upsert('ws-1', { a: 3 }, 's', 20);
      expect(store.getByWorkspaceId('ws-1')).toBeUndefined();
      store.upsert('ws-1', { a: 4 }, 's', 21);
      expect(store.getByWorkspaceId('ws-1')?.fields).toEqual({ a: 4 });
    });
  });
});
