import { describe, expect, it } from 'vitest';
import { createMemorySnapshotStore } from '../src/stores/memory.js';
import { describeStoreContract } from './store-contract.js';

describeStoreContract('memory store', async () => createMemorySnapshotStore());

describe('createMemorySnapshotStore', () => {
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
