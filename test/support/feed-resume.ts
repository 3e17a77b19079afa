import { expect, it } from 'vitest';
import type { SnapshotChange } from '../../src/index.js';
import { type ContractStore, eventually, seenOf } from './store-contract.js';

/**
 * A store's feed resumes by itself: `replicas` gives two stores of one keyspace on
 * connections of their own, `killFeeds` cuts every feed connection (Redis `CLIENT KILL`,
 * PostgreSQL `pg_terminate_backend`).
 */
export function itResumesAfterItsConnectionIsKilled(
  replicas: () => Promise<{ reader: ContractStore; writer: ContractStore }>,
  killFeeds: () => Promise<void>,
): void {
  it('resumes after its feed connection is killed while another replica writes: no gap, no duplicate, no reset', async () => {
    const { reader, writer } = await replicas();
    const seen: SnapshotChange[] = [];
    const unsubscribe = reader.subscribe((change) => seen.push(change));
    await unsubscribe.ready;
    const expected: string[] = [];
    for (let i = 0; i < 300; i++) {
      const workspaceId = `ws-${i % 30}`;
      await writer.upsert(workspaceId, { i }, 's');
      expected.push(`${workspaceId}@${Math.floor(i / 30) + 1}`);
      // The last kill comes before the last writes: no later wake-up brings those in.
      if (i === 100 || i === 200 || i === 290) await killFeeds();
    }
    await eventually(() => expect(seen.length).toBeGreaterThanOrEqual(300), 10_000);
    // Let anything delivered twice arrive.
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect(seenOf(seen).sort()).toEqual(expected.sort());
    for (let w = 0; w < 30; w++) {
      const versions = seenOf(seen).filter((entry) => entry.startsWith(`ws-${w}@`));
      expect(versions).toEqual(Array.from({ length: 10 }, (_, v) => `ws-${w}@${v + 1}`));
    }
    unsubscribe();
  }, 30_000);
}
