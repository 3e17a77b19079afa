import { createClient, createCluster } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventCoalescer } from '../src/index.js';
import {
  createRedisSnapshotStore,
  type RedisSnapshotStore,
  redisAclRules,
} from '../src/stores/redis.js';
import { itResumesAfterItsConnectionIsKilled } from './support/feed-resume.js';
import { type RedisCluster, startRedisCluster } from './support/redis-cluster.js';
import { type RedisServer, startRedisServer } from './support/redis-server.js';
import { describeStoreContract, eventually, workspaceOf } from './support/store-contract.js';

let server: RedisServer;
let cluster: RedisCluster;
const clients: Array<{ isOpen: boolean; close(): Promise<unknown> }> = [];
const stores: RedisSnapshotStore[] = [];
let prefixes = 0;

beforeAll(async () => {
  [server, cluster] = await Promise.all([startRedisServer(), startRedisCluster()]);
}, 60_000);

afterAll(async () => {
  await Promise.all(stores.map((store) => store.close()));
  await Promise.all(clients.map((client) => (client.isOpen ? client.close() : undefined)));
  await Promise.all([server?.stop(), cluster?.stop()]);
});

/** A connected node-redis client: commands fail at once while it is not connected. */
async function nodeClient(credentials: { username?: string; password?: string } = {}) {
  const client = createClient({ url: server.url, disableOfflineQueue: true, ...credentials });
  client.on('error', () => {});
  clients.push(client);
  await client.connect();
  return client;
}

async function freshStore(
  options: { feedLength?: number; onError?: () => void } = {},
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

describe('the Redis store on node-redis: feed and ACL', () => {
  itResumesAfterItsConnectionIsKilled(
    async () => {
      const prefix = `n${++prefixes}:`;
      const quiet = { onError: () => {} };
      return { writer: await freshStore(quiet, prefix), reader: await freshStore(quiet, prefix) };
    },
    async () => {
      const admin = await server.client();
      await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    },
  );

  it('does everything it promises with only the rules redisAclRules gives', async () => {
    const admin = await server.client();
    await admin.call(
      'ACL',
      'SETUSER',
      'node-acl',
      'on',
      '>secret',
      ...redisAclRules({ prefix: 'node-acl:' }),
    );
    const client = await nodeClient({ username: 'node-acl', password: 'secret' });
    const store = createRedisSnapshotStore(client, { prefix: 'node-acl:' });
    stores.push(store);
    const seen: string[] = [];
    const unsubscribe = store.subscribe((change) =>
      seen.push(`${change.type} ${workspaceOf(change)}`),
    );
    await unsubscribe.ready;
    await store.upsert('ws-1', { a: 1 }, 's', 10);
    await store.upsertMany([
      {
        workspaceId: 'ws-2',
        fields: { a: 2 },
        source: 's',
        timestamp: 10,
        call: { signal: new AbortController().signal },
      },
    ]);
    await store.remove('ws-2', 20);
    expect((await store.getAll()).map((entry) => entry.workspaceId)).toEqual(['ws-1']);
    await eventually(() => expect(seen).toEqual(['upsert ws-1', 'upsert ws-2', 'remove ws-2']));
    unsubscribe();
    // Another prefix's keys stay out of reach, named.
    const other = createRedisSnapshotStore(client, { prefix: 'someone-else:' });
    stores.push(other);
    await expect(other.upsert('ws-1', { a: 1 }, 's')).rejects.toMatchObject({
      code: 'EC_ACL_REFUSED',
    });
  });
});

/** A connected node-redis cluster client on the test cluster. */
async function nodeCluster() {
  const client = createCluster({
    rootNodes: cluster.ports.slice(0, 3).map((port) => ({ url: `redis://127.0.0.1:${port}` })),
    defaults: { disableOfflineQueue: true },
  });
  client.on('error', () => {});
  clients.push(client);
  await client.connect();
  return client;
}

describeStoreContract('Redis store on a node-redis cluster', async (options) => {
  const store = createRedisSnapshotStore(await nodeCluster(), {
    prefix: `nc${++prefixes}:`,
    ...options,
  });
  stores.push(store);
  return store;
});

describe('the Redis store on a node-redis cluster', () => {
  it('takes a coalescer’s batched wave, one pipeline per node, every workspace landed', async () => {
    const store = createRedisSnapshotStore(await nodeCluster(), { prefix: `nc${++prefixes}:` });
    stores.push(store);
    const coalescer = new EventCoalescer(store, { canCreate: () => true, timestamps: true });
    for (let i = 0; i < 500; i++) coalescer.enqueue(`ws-${i}`, { i }, 'event:a');
    await coalescer.close();
    expect(coalescer.stats()).toMatchObject({ flushed: 500, failed: 0 });
    expect(await store.getAll()).toHaveLength(500);
  });

  itResumesAfterItsConnectionIsKilled(
    async () => {
      const prefix = `nc${++prefixes}:`;
      const writer = createRedisSnapshotStore(await nodeCluster(), { prefix, onError: () => {} });
      const reader = createRedisSnapshotStore(await nodeCluster(), { prefix, onError: () => {} });
      stores.push(writer, reader);
      return { writer, reader };
    },
    () => cluster.everyNode('CLIENT', 'KILL', 'TYPE', 'pubsub'),
  );
});
