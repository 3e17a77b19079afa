import { createClient, createCluster } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventCoalescer } from '../src/index.js';
import { createRedisSnapshotStore, type RedisSnapshotStore } from '../src/stores/redis.js';
import { type RedisServer, startRedisServer } from './support/redis-server.js';
import { describeStoreContract, eventually, workspaceOf } from './support/store-contract.js';

let server: RedisServer;
const clients: Array<{ isOpen: boolean; close(): Promise<unknown> }> = [];
const stores: RedisSnapshotStore[] = [];
let prefixes = 0;

beforeAll(async () => {
  server = await startRedisServer();
}, 30_000);

afterAll(async () => {
  await Promise.all(stores.map((store) => store.close()));
  await Promise.all(clients.map((client) => (client.isOpen ? client.close() : undefined)));
  await server?.stop();
});

/** A connected node-redis client: commands fail at once while it is not connected. */
async function nodeClient() {
  const client = createClient({ url: server.url, disableOfflineQueue: true });
  client.on('error', () => {});
  clients.push(client);
  await client.connect();
  return client;
}

async function freshStore(
  options: { feedLength?: number; onError?: never } = {},
  prefix = `n${++prefixes}:`,
) {
  const store = createRedisSnapshotStore(await nodeClient(), { prefix, ...options });
  stores.push(store);
  return store;
}

describeStoreContract('Redis store on node-redis', async (options) => freshStore(options as never));

describe('the Redis store on a node-redis client', () => {
  it('delivers a write made through one client to a subscriber on another', async () => {
    const prefix = `n${++prefixes}:`;
    const writer = await freshStore({}, prefix);
    const reader = await freshStore({}, prefix);
    const seen: string[] = [];
    const unsubscribe = reader.subscribe((change) =>
      seen.push(`${change.type} ${workspaceOf(change)}`),
    );
    await unsubscribe.ready;
    await writer.upsert('ws-1', { a: 1 }, 's');
    await writer.remove('ws-1');
    await eventually(() => expect(seen).toEqual(['upsert ws-1', 'remove ws-1']));
    unsubscribe();
  });

  it('fails fast while the client is not connected, then works once it is back', async () => {
    const client = await nodeClient();
    const store = createRedisSnapshotStore(client, { prefix: `n${++prefixes}:` });
    stores.push(store);
    await store.upsert('ws-1', { a: 1 }, 's');
    await server.down();
    await eventually(() => expect(client.isReady).toBe(false));
    await expect(store.upsert('ws-1', { a: 2 }, 's')).rejects.toMatchObject({
      code: 'EC_NOT_CONNECTED',
    });
    await expect(store.getByWorkspaceId('ws-1')).rejects.toMatchObject({
      code: 'EC_NOT_CONNECTED',
    });
    await server.up();
    await eventually(() => expect(client.isReady).toBe(true), 10_000);
    await store.upsert('ws-2', { a: 1 }, 's');
    expect((await store.getByWorkspaceId('ws-2'))?.fields).toEqual({ a: 1 });
  }, 30_000);

  it('takes a coalescer’s batched wave in pipelines', async () => {
    const store = await freshStore();
    const coalescer = new EventCoalescer(store, { canCreate: () => true, timestamps: true });
    for (let i = 0; i < 500; i++) coalescer.enqueue(`ws-${i}`, { i }, 'event:a');
    await coalescer.close();
    expect(coalescer.stats()).toMatchObject({ flushed: 500, failed: 0 });
    expect(await store.getAll()).toHaveLength(500);
  });
});
