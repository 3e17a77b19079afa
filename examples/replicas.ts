/**
 * Two host replicas on one Redis, or on a Redis Cluster: each has its own domain emitters,
 * collector and Redis store; a watcher prints the shared snapshot converging through the
 * change feed.
 *
 *   npx tsx examples/replicas.ts redis://127.0.0.1:6379
 *   npx tsx examples/replicas.ts cluster:127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002
 */
import { EventEmitter } from 'node:events';
import { createEventCollector, type EventCollector } from 'event-coalescer/collector';
import { createRedisSnapshotStore } from 'event-coalescer/redis';
import { Cluster, Redis } from 'ioredis';

const url = process.argv[2] ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = 'replicas-demo:';

/** A connection to the Redis or the cluster `url` names. */
const connect = (): Redis | Cluster =>
  url.startsWith('cluster:')
    ? new Cluster(
        url
          .slice('cluster:'.length)
          .split(',')
          .map((node) => ({ host: node.split(':')[0], port: Number(node.split(':')[1]) })),
      )
    : new Redis(url);

/** One replica: its own emitter, connection, store and collector. */
function startReplica(name: string) {
  const client = connect();
  const domain = new EventEmitter();
  const store = createRedisSnapshotStore(client, { prefix });
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
  return { name, domain, collector, client };
}

const watcherClient = connect();
// The Redis store fails fast while its client is not connected: connect first.
const ready = (client: Redis | Cluster) =>
  client.status === 'ready' ? undefined : new Promise((resolve) => client.once('ready', resolve));
await ready(watcherClient);
const watcher = createRedisSnapshotStore(watcherClient, { prefix });
for (const entry of await watcher.getAll()) await watcher.remove(entry.workspaceId);
const unsubscribe = watcher.subscribe((change) => {
  if (change.type === 'reset') return;
  const what = change.type === 'upsert' ? JSON.stringify(change.entry.fields) : 'removed';
  const by = change.type === 'upsert' ? change.entry.source : '';
  console.log(`${change.workspaceId}  ${what}  ${by}`);
});
await unsubscribe.ready;

const replicas = [startReplica('replica-a'), startReplica('replica-b')];
await Promise.all(replicas.map((replica) => ready(replica.client)));
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
  replica.client.disconnect();
}
await new Promise((resolve) => setTimeout(resolve, 100));
unsubscribe();
console.log('\nshared snapshot:');
for (const entry of await watcher.getAll())
  console.log(`${entry.workspaceId}  ${JSON.stringify(entry.fields)}  v${entry.version}`);
await watcher.close();
watcherClient.disconnect();
