/**
 * Two host replicas on one Redis, a Redis Cluster or one PostgreSQL database: each has its
 * own domain emitters, collector and store connection; a watcher prints the shared snapshot
 * converging through the change feed.
 *
 *   npx tsx examples/replicas.ts redis://127.0.0.1:6379
 *   npx tsx examples/replicas.ts cluster:127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002
 *   npx tsx examples/replicas.ts postgres://postgres@127.0.0.1:5433/postgres
 */
import { EventEmitter } from 'node:events';
import type { SnapshotChange, SnapshotEntry, SnapshotStore } from 'event-coalescer';
import { createEventCollector, type EventCollector } from 'event-coalescer/collector';
import { createPostgresSnapshotStore } from 'event-coalescer/postgres';
import { createRedisSnapshotStore } from 'event-coalescer/redis';
import { Cluster, Redis } from 'ioredis';
import pg from 'pg';

const url = process.argv[2] ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** What this example needs of a store: the contract, reading, the feed. */
interface SharedStore extends SnapshotStore {
  getAll(): Promise<SnapshotEntry[]>;
  subscribe(listener: (change: SnapshotChange) => void): (() => void) & { ready: Promise<void> };
}

/** A connection to the shared snapshot `url` names, and how to let go of it. */
async function openStore(): Promise<{ store: SharedStore; close(): Promise<void> }> {
  if (/^postgres(ql)?:/.test(url)) {
    const pool = new pg.Pool({ connectionString: url });
    const store = createPostgresSnapshotStore(pool, { table: 'replicas_demo' });
    await store.migrate();
    return { store, close: () => pool.end() };
  }
  const client = url.startsWith('cluster:')
    ? new Cluster(
        url
          .slice('cluster:'.length)
          .split(',')
          .map((node) => ({ host: node.split(':')[0], port: Number(node.split(':')[1]) })),
      )
    : new Redis(url);
  // The Redis store fails fast while its client is not connected: connect first.
  if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve));
  const store = createRedisSnapshotStore(client, { prefix: 'replicas-demo:' });
  return {
    store,
    async close() {
      await store.close();
      client.disconnect();
    },
  };
}

/** One replica: its own emitter, connection, store and collector. */
async function startReplica(name: string) {
  const { store, close } = await openStore();
  const domain = new EventEmitter();
  const collector: EventCollector = createEventCollector({
    store,
    timestamps: true, // per-field last write wins across replicas
    canCreate: () => true,
    sources: [
      {
        emitter: domain,
        event: 'changed',
        name: `${name}:changed`,
        map: (workspaceId: string, fields: Record<string, unknown>) => ({ workspaceId, fields }),
      },
    ],
  });
  return { name, domain, collector, close };
}

const watcher = await openStore();
for (const entry of await watcher.store.getAll()) await watcher.store.remove(entry.workspaceId);
const unsubscribe = watcher.store.subscribe((change) => {
  if (change.type === 'reset') return;
  const what = change.type === 'upsert' ? JSON.stringify(change.entry.fields) : 'removed';
  const by = change.type === 'upsert' ? change.entry.source : '';
  console.log(`${change.workspaceId}  ${what}  ${by}`);
});
await unsubscribe.ready;

const replicas = await Promise.all([startReplica('replica-a'), startReplica('replica-b')]);
// Both replicas receive bursts for the same workspaces, each about its own fields.
for (let round = 0; round < 5; round++) {
  for (const workspaceId of ['ws-1', 'ws-2', 'ws-3']) {
    replicas[0]?.domain.emit('changed', workspaceId, { status: `step-${round}` });
    replicas[1]?.domain.emit('changed', workspaceId, { isWorking: round % 2 === 0 });
    replicas[1]?.domain.emit('changed', workspaceId, { ciRuns: round });
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
}
for (const replica of replicas) {
  await replica.collector.stop();
  await replica.close();
}
await new Promise((resolve) => setTimeout(resolve, 100));
unsubscribe();
console.log('\nshared snapshot:');
for (const entry of await watcher.store.getAll())
  console.log(`${entry.workspaceId}  ${JSON.stringify(entry.fields)}  v${entry.version}`);
await watcher.close();
