/** The demo's snapshot in PostgreSQL (`--postgres URL`): pg loaded only when asked for. */
import type { WorkspaceSnapshotFields } from 'event-coalescer';
import { createPostgresSnapshotStore } from 'event-coalescer/postgres';
import { fail } from './demo-options.js';

export async function openPostgresStore(url: string) {
  let pg: typeof import('pg').default;
  try {
    pg = (await import('pg')).default;
  } catch {
    return fail('--postgres needs pg: npm install pg');
  }
  const pool = new pg.Pool({ connectionString: url });
  pool.on('error', () => {});
  const store = createPostgresSnapshotStore<WorkspaceSnapshotFields>(pool, {
    table: 'event_coalescer_demo',
  });
  await store.migrate();
  // A fresh run starts from an empty snapshot.
  for (const entry of await store.getAll()) await store.remove(entry.workspaceId);
  return {
    store,
    async close() {
      store.close();
      await pool.end();
    },
  };
}
