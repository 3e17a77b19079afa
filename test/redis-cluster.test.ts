import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventCoalescer } from '../src/index.js';
import {
  createRedisSnapshotStore,
  type RedisSnapshotStore,
  type RedisStoreOptions,
  redisAclRules,
} from '../src/stores/redis.js';
import { itResumesAfterItsConnectionIsKilled } from './support/feed-resume.js';
import { spawnFixture } from './support/fixture-process.js';
import { type RedisCluster, startRedisCluster } from './support/redis-cluster.js';
import { describeStoreContract, eventually, workspaceOf } from './support/store-contract.js';

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

describe('the change feed on a cluster', () => {
  itResumesAfterItsConnectionIsKilled(
    async () => {
      const { store: writer, prefix } = await freshStore();
      const reader = createRedisSnapshotStore(await cluster.client(), { prefix });
      stores.push(reader);
      return { reader, writer };
    },
    () => cluster.everyNode('CLIENT', 'KILL', 'TYPE', 'pubsub'),
  );

  it('marks, and claims the marks of a replica that is gone, across every master', async () => {
    const prefix = `c${++prefixes}:`;
    const replica = async (replicaId: string) => {
      const store = createRedisSnapshotStore(await cluster.client(), {
        prefix,
        replicaId,
        heartbeatMs: 50,
        replicaTimeoutMs: 200,
      });
      stores.push(store);
      return store;
    };
    const [gone, survivor] = [await replica('gone'), await replica('survivor')];
    const ids = Array.from({ length: 60 }, (_, i) => `ws-${i}`);
    await gone.markPending(ids);
    await survivor.markPending(ids.slice(0, 10));
    await gone.upsert('ws-0', { a: 1 }, 's');
    await gone.close();
    // ws-0 landed (its mark cleared); the survivor's own marks are not its to claim.
    expect((await survivor.claimOrphans()).sort()).toEqual(ids.slice(1).sort());
    expect(await survivor.claimOrphans()).toEqual([]);
  });

  it("keeps each workspace's keys in its feed shard's slot, and spreads the shards over the masters", async () => {
    const { store, prefix } = await freshStore();
    const ids = Array.from({ length: 200 }, (_, i) => `ws-${i}`);
    await Promise.all(ids.map((id) => store.upsert(id, { id }, 's', 10)));
    await Promise.all(ids.slice(0, 50).map((id) => store.remove(id, 20)));
    const admin = await cluster.node(cluster.ports[0] as number);
    const slot = async (key: string) => Number(await admin.call('CLUSTER', 'KEYSLOT', key));
    const streamsPerMaster: number[] = [];
    const masters = (await cluster.client()).nodes('master');
    for (const master of masters) {
      const keys = [
        ...(await master.keys(`${prefix}*`)),
        ...(await master.keys(`${prefix.slice(0, -1)}-removed:*`)),
      ];
      const streams = keys.filter((key) => key.endsWith('}'));
      streamsPerMaster.push(streams.length);
      for (const key of keys.filter((key) => !key.endsWith('}'))) {
        // A hash or a tombstone: in the same slot as its shard's stream, on the same master.
        const tag = key.slice(key.indexOf('{'), key.indexOf('}') + 1);
        expect(streams).toContain(`${prefix}${tag}`);
        expect(await slot(key)).toBe(await slot(`${prefix}${tag}`));
      }
    }
    // Sixteen shards over three masters: none holds fewer than four, or more than seven.
    expect(streamsPerMaster.reduce((a, b) => a + b)).toBe(16);
    for (const count of streamsPerMaster) {
      expect(count).toBeGreaterThanOrEqual(4);
      expect(count).toBeLessThanOrEqual(7);
    }
  });
});

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
      seen.push(`${change.type} ${workspaceOf(change)}`),
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

describe('the Redis store on a cluster under least-privilege ACL users', () => {
  it('works with only its rules, and keeps another prefix’s user out', async () => {
    await cluster.everyNode(
      'ACL',
      'SETUSER',
      'own',
      'on',
      '>own-secret',
      ...redisAclRules({ prefix: 'acl-own:', cluster: true }),
    );
    await cluster.everyNode(
      'ACL',
      'SETUSER',
      'other',
      'on',
      '>other-secret',
      ...redisAclRules({ prefix: 'acl-other:', cluster: true }),
    );
    const store = createRedisSnapshotStore(
      await cluster.client({ username: 'own', password: 'own-secret' }),
      { prefix: 'acl-own:' },
    );
    stores.push(store);
    const seen: string[] = [];
    const unsubscribe = store.subscribe((change) => seen.push(workspaceOf(change)));
    await unsubscribe.ready;
    const ids = Array.from({ length: 20 }, (_, i) => `ws-${i}`);
    for (const id of ids) await store.upsert(id, { id }, 's', 10);
    await store.remove('ws-0', 20);
    expect((await store.getAll()).length).toBe(19);
    await eventually(() => expect(seen).toHaveLength(21));
    unsubscribe();

    const intruder = createRedisSnapshotStore(
      await cluster.client({ username: 'other', password: 'other-secret' }),
      { prefix: 'acl-own:', onError: () => {} },
    );
    stores.push(intruder);
    await expect(intruder.getByWorkspaceId('ws-1')).rejects.toThrow(/refused getByWorkspaceId/);
    const reported: unknown[] = [];
    const coalescer = new EventCoalescer(intruder, {
      canCreate: () => true,
      onError: (error) => reported.push(error),
      retry: { attempts: 2, delayMs: 10, jitter: 0 },
    });
    coalescer.enqueue('ws-1', { id: 'stolen' }, 's', { immediate: true });
    await coalescer.close();
    expect(reported.map(String)).toEqual([expect.stringMatching(/refused upsert/)]);
    expect((await store.getByWorkspaceId('ws-1'))?.fields).toEqual({ id: 'ws-1' });
  });
});

describe('the examples on a cluster', () => {
  const nodes = () =>
    cluster.ports
      .slice(0, 3)
      .map((port) => `127.0.0.1:${port}`)
      .join(',');

  it('runs the demo with --redis-cluster', async () => {
    const { stdout } = await promisify(execFile)(
      'node',
      [
        '--import',
        'tsx',
        'examples/demo.ts',
        '--redis-cluster',
        nodes(),
        '--duration',
        '1',
        '--workspaces',
        '4',
        '--quiet',
      ],
      { timeout: 30_000 },
    );
    expect(stdout).toMatch(/snapshot: +\d+ workspaces in Redis \(cluster /);
    const reader = createRedisSnapshotStore(await cluster.client(), { prefix: 'demo:' });
    stores.push(reader);
    expect((await reader.getAll()).length).toBeGreaterThanOrEqual(4);
  }, 30_000);

  it('runs the replicas example on the cluster', async () => {
    const { stdout } = await promisify(execFile)(
      'node',
      ['--import', 'tsx', 'examples/replicas.ts', `cluster:${nodes()}`],
      { timeout: 30_000 },
    );
    expect(stdout).toMatch(/shared snapshot:\nws-\d/);
    expect(stdout.match(/^ws-\d .*v\d+$/gm)).toHaveLength(3);
  }, 30_000);
});

/** The workspaces of one failover run, and what each replica last gave each field. */
async function runThroughFailover(
  prefix: string,
  options: { attempts?: number; delayMs?: number; waitForReplicas?: number },
  victim: number,
) {
  const url = `cluster:${cluster.ports
    .slice(0, 3)
    .map((port) => `127.0.0.1:${port}`)
    .join(',')}`;
  const workspaces = Array.from({ length: 40 }, (_, i) => `ws-${i}`);
  const a = spawnFixture('replica.ts', [url, 'a', prefix, JSON.stringify(options)]);
  const b = spawnFixture('replica.ts', [url, 'b', prefix, JSON.stringify(options)]);
  await Promise.all([a.next('ready'), b.next('ready')]);
  const ran = [a.next('ran'), b.next('ran')];
  a.send({ type: 'run', workspaces, events: 1500 });
  b.send({ type: 'run', workspaces, events: 1500 });
  // In the middle of the run, a master dies.
  await new Promise((resolve) => setTimeout(resolve, 150));
  await cluster.kill(victim);
  await Promise.all(ran);
  const stopped = [a.next('stopped'), b.next('stopped')];
  a.send({ type: 'stop' });
  b.send({ type: 'stop' });
  const results = await Promise.all(stopped);
  const model: Record<string, Record<string, unknown>> = {};
  const reported: Array<{ workspaceId: string; fields: Record<string, unknown>; error: string }> =
    [];
  for (const result of results) {
    for (const [id, fields] of Object.entries(
      result.last as Record<string, Record<string, unknown>>,
    )) {
      model[id] = { ...model[id], ...fields };
    }
    reported.push(...(result.reported as typeof reported));
  }
  await cluster.healthy();
  const reader = createRedisSnapshotStore(await cluster.client(), { prefix });
  stores.push(reader);
  const snapshot = Object.fromEntries(
    (await reader.getAll()).map((entry) => [entry.workspaceId, entry.fields]),
  );
  return { model, snapshot, reported };
}

describe('a master killed (SIGKILL) in the middle of a run of two replica hosts', () => {
  it('loses nothing with the default retry rule: the snapshot equals the model', async () => {
    const victim = cluster.ports[1] as number;
    const restarting = (async () => {
      // Back as a replica of its successor once the failover happened, so that writes
      // waiting for a replica of that master can be acknowledged again.
      await new Promise((resolve) => setTimeout(resolve, 4000));
      await cluster.restart(victim);
    })();
    const { model, snapshot, reported } = await runThroughFailover(
      'failover-a:',
      { waitForReplicas: 1 },
      victim,
    );
    await restarting;
    expect(reported.map((report) => report.error)).toEqual([]);
    expect(snapshot).toEqual(model);
  }, 90_000);

  it('reports every patch that did not land when the budget does not cover it', async () => {
    const victim = cluster.ports[2] as number;
    const { model, snapshot, reported } = await runThroughFailover(
      'failover-b:',
      { attempts: 1, delayMs: 10 },
      victim,
    );
    // Nothing lost silently: each field's last value landed, or a report carries it.
    for (const [id, fields] of Object.entries(model)) {
      for (const [field, value] of Object.entries(fields)) {
        const landed = snapshot[id]?.[field] === value;
        const given = reported.some(
          (report) => report.workspaceId === id && report.fields[field] === value,
        );
        expect(landed || given, `${id}.${field} = ${String(value)}`).toBe(true);
      }
    }
  }, 90_000);
});

describe('one master down, before its failover', () => {
  it('keeps landing the workspaces of the other masters', async () => {
    const client = await cluster.client();
    const { store, prefix } = await freshStore({}, client);
    const coalescer = new EventCoalescer(store, {
      timestamps: true,
      canCreate: () => true,
      windowMs: 10,
    });
    const victim = cluster.ports[0] as number;
    const workspaces = Array.from({ length: 60 }, (_, i) => `ws-${i}`);
    for (const workspaceId of workspaces) await store.upsert(workspaceId, { n: 0 }, 's', 1);
    // The workspaces whose keys the victim holds.
    const victimNode = await cluster.node(victim);
    const held = await victimNode.keys(`${prefix}{*}ws-*`);
    const onVictim = new Set(held.map((key) => key.slice(key.indexOf('}') + 1)));
    victimNode.disconnect();
    expect(onVictim.size).toBeGreaterThan(0);
    expect(onVictim.size).toBeLessThan(workspaces.length);
    await cluster.kill(victim);
    const killedAt = Date.now();
    for (const workspaceId of workspaces) coalescer.enqueue(workspaceId, { n: 1 }, 's');
    // Within the node timeout (1 s), before any failover: the live masters' workspaces land.
    await eventually(async () => {
      for (const workspaceId of workspaces) {
        if (onVictim.has(workspaceId)) continue;
        expect((await store.getByWorkspaceId(workspaceId))?.fields).toEqual({ n: 1 });
      }
    }, 900);
    expect(Date.now() - killedAt).toBeLessThan(1000);
    expect(coalescer.stats().failed).toBe(0);
    // The dead master's workspaces wait, and land once its replica took over.
    await cluster.restart(victim);
    await cluster.healthy();
    await coalescer.close();
    expect(coalescer.stats().failed).toBe(0);
    for (const workspaceId of onVictim) {
      expect((await store.getByWorkspaceId(workspaceId))?.fields).toEqual({ n: 1 });
    }
  }, 60_000);
});
