import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createRedisSnapshotStore,
  type RedisSnapshotStore,
  type RedisStoreOptions,
} from '../src/stores/redis.js';
import { type RedisCluster, startRedisCluster } from './redis-cluster.js';
import { describeStoreContract, eventually } from './store-contract.js';

let cluster: RedisCluster;
let stores: RedisSnapshotStore[] = [];
let prefixes = 0;

beforeAll(async () => {
  cluster = await startRedisCluster();
}, 30_000);

afterAll(async () => {
  await Promise.all(stores.map((store) => store.close()));
  stores = [];
  await cluster?.stop();
});

async function freshStore(options: RedisStoreOptions = {}, client?: Cluster) {
  const prefix = `c${++prefixes}:`;
  const store = createRedisSnapshotStore(client ?? (await cluster.client()), {
    prefix,
    ...options,
  });
  stores.push(store);
  return { store, prefix };
}

describeStoreContract(
  'Redis store on a cluster',
  async (options) => (await freshStore(options)).store,
);

describe('the Redis store on a cluster', () => {
  it('spreads workspaces over the masters and lists them all', async () => {
    const { store, prefix } = await freshStore();
    const ids = Array.from({ length: 200 }, (_, i) => `ws-${i}`);
    await Promise.all(ids.map((id) => store.upsert(id, { id }, 's')));
    const all = await store.getAll();
    expect(all.map((entry) => entry.workspaceId).sort()).toEqual([...ids].sort());
    const perMaster = await Promise.all(
      cluster.ports.slice(0, 3).map(async (port) => {
        const node = await cluster.node(port);
        return (await node.keys(`${prefix}*`)).length;
      }),
    );
    expect(perMaster.filter((count) => count > 0).length).toBeGreaterThanOrEqual(2);
  });

  it('delivers every change to a subscriber on another connection, wherever the slot lives', async () => {
    const { store: writer, prefix } = await freshStore();
    const reader = createRedisSnapshotStore(await cluster.client(), { prefix });
    stores.push(reader);
    const seen: string[] = [];
    const unsubscribe = reader.subscribe((change) =>
      seen.push(`${change.type} ${change.workspaceId}`),
    );
    await unsubscribe.ready;
    const ids = Array.from({ length: 30 }, (_, i) => `ws-${i}`);
    for (const id of ids) await writer.upsert(id, { a: 1 }, 's');
    for (const id of ids.slice(0, 10)) await writer.remove(id);
    await eventually(() =>
      expect(seen.sort()).toEqual(
        [
          ...ids.map((id) => `upsert ${id}`),
          ...ids.slice(0, 10).map((id) => `remove ${id}`),
        ].sort(),
      ),
    );
    unsubscribe();
  });
});
