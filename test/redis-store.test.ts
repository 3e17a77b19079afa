import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { EventCoalescer } from '../src/index.js';
import { createRedisSnapshotStore, type RedisSnapshotStore } from '../src/stores/redis.js';
import { type RedisServer, startRedisServer } from './redis-server.js';
import { describeStoreContract, eventually } from './store-contract.js';

let server: RedisServer;
let stores: RedisSnapshotStore[] = [];
let prefixes = 0;

beforeAll(async () => {
  server = await startRedisServer();
}, 30_000);

afterAll(async () => {
  await Promise.all(stores.map((store) => store.close()));
  stores = [];
  await server?.stop();
});

/** A store on its own prefix and channel, so that tests never see each other's keys. */
async function freshStore(options: { tombstoneTtlMs?: number } = {}) {
  const prefix = `t${++prefixes}:`;
  const store = createRedisSnapshotStore(await server.client(), { prefix, ...options });
  stores.push(store);
  return { store, prefix };
}

describeStoreContract('Redis store', async () => (await freshStore()).store);

describe('createRedisSnapshotStore', () => {
  it('delivers a write made through one connection to a subscriber on another', async () => {
    const { prefix } = await freshStore();
    const writer = createRedisSnapshotStore(await server.client(), { prefix });
    const reader = createRedisSnapshotStore(await server.client(), { prefix });
    stores.push(writer, reader);
    const seen: string[] = [];
    const unsubscribe = reader.subscribe((change) =>
      seen.push(`${change.type} ${change.workspaceId}`),
    );
    await unsubscribe.ready;
    await writer.upsert('ws-1', { a: 1 }, 's');
    await writer.remove('ws-1');
    await eventually(() => expect(seen).toEqual(['upsert ws-1', 'remove ws-1']));
    unsubscribe();
  });

  it('lets a tombstone expire, after which a late write may create the workspace again', async () => {
    const { store } = await freshStore({ tombstoneTtlMs: 50 });
    await store.remove('ws-1', 100);
    await store.upsert('ws-1', { a: 1 }, 's', 90);
    expect(await store.getByWorkspaceId('ws-1')).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 120));
    await store.upsert('ws-1', { a: 1 }, 's', 90);
    expect((await store.getByWorkspaceId('ws-1'))?.fields).toEqual({ a: 1 });
  });

  it('lists many workspaces with SCAN', async () => {
    const { store } = await freshStore();
    await Promise.all(Array.from({ length: 450 }, (_, i) => store.upsert(`ws-${i}`, { i }, 's')));
    const all = await store.getAll();
    expect(all).toHaveLength(450);
  });

  it('keeps its change feed on a connection of its own, closed with the last listener', async () => {
    const { store } = await freshStore();
    const admin = await server.client();
    const connections = async () =>
      Number((await admin.info('clients')).match(/connected_clients:(\d+)/)?.[1]);
    const before = await connections();
    const first = store.subscribe(() => {});
    const second = store.subscribe(() => {});
    await Promise.all([first.ready, second.ready]);
    expect(await connections()).toBe(before + 1);
    first();
    expect(await connections()).toBe(before + 1);
    second();
    await eventually(async () => expect(await connections()).toBe(before));
  });

  it('rejects while Redis is down; the coalescer retries and reports, then writes land again', async () => {
    const { store } = await freshStore();
    const onError = vi.fn();
    const coalescer = new EventCoalescer(store, {
      canCreate: () => true,
      onError,
      retry: { attempts: 2, delayMs: 20 },
    });
    await server.down();
    coalescer.enqueue('ws-1', { during: 'outage' }, 's', { immediate: true });
    await eventually(() => expect(onError).toHaveBeenCalledTimes(1), 5000);
    expect(onError.mock.calls[0]?.[1]).toMatchObject({
      operation: 'upsert',
      fields: { during: 'outage' },
    });
    await server.up();
    // Once the client has reconnected, a write goes through.
    await eventually(() => store.upsert('probe', { up: true }, 's'), 5000);
    coalescer.enqueue('ws-1', { after: 'outage' }, 's', { immediate: true });
    await coalescer.close();
    await eventually(
      async () =>
        expect((await store.getByWorkspaceId('ws-1'))?.fields).toEqual({ after: 'outage' }),
      5000,
    );
    expect(coalescer.stats().failed).toBe(1);
  }, 20_000);
});
