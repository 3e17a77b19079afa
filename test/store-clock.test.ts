import { describe, expect, it } from 'vitest';
import { EventCoalescer, type Patch } from '../src/index.js';
import { createMemorySnapshotStore } from '../src/stores/memory.js';

// Real timers, in a file of its own: the store clock is shared by the whole process, and
// fake clocks set elsewhere would have moved it.
describe('the store clock, in real time', () => {
  it('stays within 1 ms of the wall clock through 10,000 writes in one tick, in real time', async () => {
    const ahead: number[] = [];
    const store = createMemorySnapshotStore();
    const recording = {
      upsert(id: string, fields: Patch, source: string, timestamp?: number) {
        ahead.push((timestamp as number) - Date.now());
        store.upsert(id, fields, source, timestamp);
      },
      getByWorkspaceId: store.getByWorkspaceId,
      remove: store.remove,
    };
    const busy = new EventCoalescer(recording, { timestamps: true, canCreate: () => true });
    for (let i = 0; i < 10_000; i++) busy.enqueue(`ws-${i}`, { status: 'busy' }, 'a');
    await busy.flushAll();
    const other = new EventCoalescer(store, { timestamps: true, canCreate: () => true });
    other.enqueue('ws-9999', { status: 'other' }, 'b', { immediate: true });
    expect(ahead).toHaveLength(10_000);
    expect(Math.max(...ahead)).toBeLessThanOrEqual(1);
    expect(store.getByWorkspaceId('ws-9999')?.fields.status).toBe('other');
  });
});
