import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { EventCoalescer } from '../src/index.js';
import {
  createRedisSnapshotStore,
  type RedisSnapshotStore,
  type RedisStoreOptions,
  redisAclRules,
} from '../src/stores/redis.js';
import { itResumesAfterItsConnectionIsKilled } from './support/feed-resume.js';
import { type RedisServer, startRedisServer } from './support/redis-server.js';
import { describeStoreContract, eventually, workspaceOf } from './support/store-contract.js';

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
async function freshStore(options: RedisStoreOptions = {}, client?: Redis) {
  const prefix = `t${++prefixes}:`;
  const store = createRedisSnapshotStore(client ?? (await server.client()), {
    prefix,
    ...options,
  });
  stores.push(store);
  return { store, prefix };
}

describeStoreContract('Redis store', async (options) => (await freshStore(options)).store);

describe('createRedisSnapshotStore', () => {
  it('delivers a write made through one connection to a subscriber on another', async () => {
    const { prefix } = await freshStore();
    const writer = createRedisSnapshotStore(await server.client(), { prefix });
    const reader = createRedisSnapshotStore(await server.client(), { prefix });
    stores.push(writer, reader);
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
      retry: { attempts: 2, delayMs: 20, jitter: 0 },
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

describe('the Redis key layout and its cost', () => {
  it('keeps a workspace in one hash-tagged hash and its removal in one tagged tombstone', async () => {
    const { store, prefix } = await freshStore();
    await store.upsert('ws-1', { a: 1 }, 's', 10);
    await store.upsert('ws-2', { a: 1 }, 's', 10);
    await store.remove('ws-2', 20);
    const admin = await server.client();
    const keys = await admin.keys(`t${prefix.slice(1, -1)}*`);
    const tag = '\\{\\d+\\.\\d+\\}';
    const hash = keys.find((key) => new RegExp(`^${prefix}${tag}ws-1$`).test(key)) as string;
    const tombstone = keys.find((key) =>
      new RegExp(`^${prefix.slice(0, -1)}-removed:${tag}ws-2$`).test(key),
    ) as string;
    // Each workspace's feed shard: a stream under the prefix, with the shard's tag and no id.
    const streams = keys.filter((key) => new RegExp(`^${prefix}${tag}$`).test(key));
    expect(keys.sort()).toEqual([hash, tombstone, ...streams].sort());
    expect(streams.length).toBeGreaterThanOrEqual(1);
    for (const stream of streams) expect(await admin.type(stream)).toBe('stream');
    // A workspace's keys and its feed shard share the tag, so a cluster keeps them in one slot.
    expect(streams).toContain(hash.slice(0, hash.indexOf('}') + 1));
    expect(streams).toContain(
      `${prefix}${tombstone.slice(tombstone.indexOf('{'), tombstone.indexOf('}') + 1)}`,
    );
    expect(await admin.hgetall(hash)).toEqual({
      'f:a': '1',
      't:a': '10',
      version: '1',
      source: 's',
      updatedAt: '10',
    });
  });

  /** Commands Redis ran for one upsert of `fields` fields, all of them changed. */
  async function commandsOfUpsert(fields: number, timestamps: boolean): Promise<number> {
    const { store } = await freshStore();
    const patch = (value: number) =>
      Object.fromEntries(Array.from({ length: fields }, (_, i) => [`f${i}`, value]));
    await store.upsert('ws-1', patch(1), 's', timestamps ? 10 : undefined);
    const admin = await server.client();
    const count = async () => {
      const stats = await admin.info('commandstats');
      let total = 0;
      for (const [, name, calls] of stats.matchAll(/cmdstat_([\w|]+):calls=(\d+)/g)) {
        if (!/^(info|config)/.test(name as string)) total += Number(calls);
      }
      return total;
    };
    await admin.config('RESETSTAT');
    const before = await count();
    await store.upsert('ws-1', patch(2), 's', timestamps ? 20 : undefined);
    const commands = (await count()) - before;
    expect((await store.getByWorkspaceId('ws-1'))?.fields).toEqual(patch(2));
    return commands;
  }

  it('costs Redis at most six commands for a write of two fields', async () => {
    expect(await commandsOfUpsert(2, true)).toBe(6);
    expect(await commandsOfUpsert(2, false)).toBe(5);
  });

  it.each([
    // fields, timestamps, commands: the script, GET of the tombstone (with timestamps),
    // one HMGET and one HSET per 4,000 arguments, XADD, PUBLISH
    [998, true, 6],
    [999, true, 7],
    [5000, true, 13],
    [1997, false, 5],
    [1998, false, 6],
  ])(
    'costs Redis as the README says for %i fields (timestamps: %s): %i commands',
    async (fields, timestamps, commands) => {
      expect(await commandsOfUpsert(fields, timestamps)).toBe(commands);
    },
  );
});

describe('createRedisSnapshotStore under hostile input', () => {
  it('removes with the largest tombstoneTtlMs it accepts', async () => {
    const { store } = await freshStore({ tombstoneTtlMs: Number.MAX_SAFE_INTEGER });
    await store.upsert('ws-1', { a: 1 }, 's', 10);
    await store.remove('ws-1', 20);
    await store.upsert('ws-1', { a: 2 }, 's', 15);
    expect(await store.getByWorkspaceId('ws-1')).toBeUndefined();
  });

  it.each([
    ['tombstoneTtlMs', 0],
    ['tombstoneTtlMs', -1],
    ['tombstoneTtlMs', 1.5],
    ['tombstoneTtlMs', Number.NaN],
    ['tombstoneTtlMs', 1e19],
    ['tombstoneTtlMs', 1e21],
    ['tombstoneTtlMs', '600000'],
  ])('refuses a %s of %s at creation, naming it and its range', async (name, value) => {
    const client = await server.client();
    expect(() => createRedisSnapshotStore(client, { [name]: value })).toThrow(RangeError);
    expect(() => createRedisSnapshotStore(client, { [name]: value })).toThrow(
      /Expected `tombstoneTtlMs` to be a whole number from 1 to 9007199254740991/,
    );
  });

  it.each([
    ['prefix', 7, TypeError],
    ['prefix', 'app{1}:', TypeError],
    ['tombstonePrefix', 'gone}:', TypeError],
    ['tombstonePrefix', null, TypeError],
    ['channel', {}, TypeError],
    ['onError', 'log', TypeError],
    ['logger', 'console', TypeError],
  ])('refuses a %s of the wrong type, naming it', async (name, value, kind) => {
    const client = await server.client();
    const create = () => createRedisSnapshotStore(client, { [name]: value } as never);
    expect(create).toThrow(kind);
    expect(create).toThrow(new RegExp(`Expected \`${name}\``));
  });

  it('refuses a misspelled option with the one it likely meant', async () => {
    const client = await server.client();
    expect(() => createRedisSnapshotStore(client, { prefx: 'app:' } as never)).toThrow(
      /Unknown option `options\.prefx` \(did you mean `prefix`\?\)/,
    );
  });

  it('reports through its logger when it has no onError', async () => {
    const logger = { error: vi.fn() };
    const { store } = await freshStore({ logger });
    const unsubscribe = store.subscribe(() => {
      throw new Error('listener');
    });
    await unsubscribe.ready;
    await store.upsert('ws-1', { a: 1 }, 's');
    await eventually(() =>
      expect(logger.error.mock.calls[0]?.[1]).toBe(
        'event-coalescer: snapshot store listener error',
      ),
    );
    unsubscribe();
  });

  it('reports a stored field it cannot decode, and every other read still works', async () => {
    const onError = vi.fn();
    const { store, prefix } = await freshStore({ onError });
    await store.upsert('good', { a: 1 }, 's');
    await store.upsert('poisoned', { a: 1, b: 2 }, 's');
    const admin = await server.client();
    const [poisoned] = await admin.keys(`${prefix}{*}poisoned`);
    await admin.hset(poisoned as string, 'f:b', '{not json');
    expect((await store.getByWorkspaceId('good'))?.fields).toEqual({ a: 1 });
    expect((await store.getByWorkspaceId('poisoned'))?.fields).toEqual({ a: 1 });
    const all = await store.getAll();
    expect(all.map((entry) => entry.workspaceId).sort()).toEqual(['good', 'poisoned']);
    expect(onError).toHaveBeenCalledWith(expect.any(SyntaxError), {
      operation: 'decode',
      workspaceId: 'poisoned',
      field: 'b',
    });
  });

  it('lists the workspaces of a prefix with glob characters', async () => {
    const suffix = ++prefixes;
    const store = createRedisSnapshotStore(await server.client(), { prefix: `app[${suffix}]*?:` });
    stores.push(store);
    await store.upsert('ws-1', { a: 1 }, 's');
    await store.upsert('ws-2', { a: 2 }, 's');
    const all = await store.getAll();
    expect(all.map((entry) => entry.workspaceId).sort()).toEqual(['ws-1', 'ws-2']);
  });

  it('writes a patch of 150,000 fields and reads it back', async () => {
    const { store } = await freshStore();
    const fields = Object.fromEntries(Array.from({ length: 150_000 }, (_, i) => [`f${i}`, i]));
    await store.upsert('ws-big', fields, 's');
    const entry = await store.getByWorkspaceId('ws-big');
    expect(Object.keys(entry?.fields ?? {})).toHaveLength(150_000);
    expect(entry?.fields.f149999).toBe(149_999);
  }, 30_000);
});

describe('the Redis change feed resumes', () => {
  itResumesAfterItsConnectionIsKilled(
    async () => {
      const { store: writer, prefix } = await freshStore();
      const reader = createRedisSnapshotStore(await server.client(), { prefix });
      stores.push(reader);
      return { reader, writer };
    },
    async () => {
      const admin = await server.client();
      await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    },
  );

  it("delivers at once while a host's tests fake the timers", async () => {
    const { store } = await freshStore();
    const seen: string[] = [];
    const realSetTimeout = globalThis.setTimeout;
    // Faked before it subscribes: its poll never fires, only a wake-up can deliver.
    vi.useFakeTimers({ toFake: ['setTimeout', 'setInterval', 'setImmediate', 'Date'] });
    const unsubscribe = store.subscribe((change) => seen.push(workspaceOf(change)));
    try {
      await unsubscribe.ready;
      await store.upsert('ws-1', { a: 1 }, 's');
      for (let waited = 0; seen.length === 0 && waited < 2000; waited += 10) {
        await new Promise((resolve) => realSetTimeout(resolve, 10));
      }
      expect(seen).toEqual(['ws-1']);
    } finally {
      vi.useRealTimers();
      unsubscribe();
    }
  });

  it('delivers an entry whose wake-up was lost, on its next poll', async () => {
    const { store, prefix } = await freshStore();
    const seen: string[] = [];
    const unsubscribe = store.subscribe((change) => seen.push(workspaceOf(change)));
    await unsubscribe.ready;
    await store.upsert('ws-1', { a: 1 }, 's');
    await eventually(() => expect(seen).toEqual(['ws-1']));
    const admin = await server.client();
    const [hash] = await admin.keys(`${prefix}{*}ws-1`);
    const stream = (hash as string).slice(0, (hash as string).indexOf('}') + 1);
    // An entry as a write appends it, but no PUBLISH: as a wake-up lost on a cluster's bus.
    await admin.xadd(stream, '*', 'c', JSON.stringify(['upsert', 'ws-1', ['a', '2'], 2, 's', 1]));
    await eventually(() => expect(seen).toEqual(['ws-1', 'ws-1']), 2500);
    unsubscribe();
  });

  it('follows the feed of a store whose data was flushed with a reset, not silence', async () => {
    const { store } = await freshStore();
    await store.upsert('ws-1', { a: 1 }, 's');
    const since = await store.position();
    const admin = await server.client();
    await admin.flushdb();
    await store.upsert('ws-2', { a: 1 }, 's');
    const seen: string[] = [];
    const unsubscribe = store.subscribe((change) => seen.push(workspaceOf(change)), { since });
    await unsubscribe.ready;
    await eventually(() => expect(seen).toEqual(['reset']));
    unsubscribe();
  });
});

describe('crash recovery in the Redis store', () => {
  const replica = async (prefix: string, replicaId: string) => {
    const client = await server.client();
    const store = createRedisSnapshotStore(client, {
      prefix,
      replicaId,
      heartbeatMs: 50,
      replicaTimeoutMs: 200,
      onError: () => {},
    });
    stores.push(store);
    return { store, client };
  };
  /** The replica's mark on the workspace: '1' set, '' cleared by a write, null none. */
  const markOf = async (prefix: string, workspaceId: string, replicaId: string) => {
    const admin = await server.client();
    const [key] = await admin.keys(`${prefix}{*}${workspaceId}`);
    return key === undefined ? undefined : admin.hget(key, `p:${replicaId}`);
  };
  const claimAll = (stores: RedisSnapshotStore[]) =>
    Promise.all(stores.map((store) => store.claimOrphans()));

  it('gives the marks of a replica whose heartbeat expired to exactly one survivor', async () => {
    const prefix = `rec${++prefixes}:`;
    const { store: dying, client } = await replica(prefix, 'dying');
    await dying.upsert('ws-written', { a: 1 }, 's');
    await dying.markPending(['ws-new', 'ws-written', 'ws-landed']);
    expect(await markOf(prefix, 'ws-new', 'dying')).toBe('1');
    // The write that lands a patch clears its mark, in its own script.
    await dying.upsert('ws-landed', { a: 1 }, 's');
    expect(await markOf(prefix, 'ws-landed', 'dying')).toBe('');
    // A mark alone is no workspace: not read, not listed.
    expect(await dying.getByWorkspaceId('ws-new')).toBeUndefined();
    expect((await dying.getAll()).map((entry) => entry.workspaceId).sort()).toEqual([
      'ws-landed',
      'ws-written',
    ]);
    const survivors = [(await replica(prefix, 'a')).store, (await replica(prefix, 'b')).store];
    // Alive: nothing to claim.
    expect(await claimAll(survivors)).toEqual([[], []]);
    // Its connection gone (as a process killed), its heartbeat stops and expires.
    client.disconnect();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const claimed = await claimAll(survivors);
    expect(claimed.flat().sort()).toEqual(['ws-new', 'ws-written']);
    const owner = (await markOf(prefix, 'ws-new', 'a')) === '1' ? 0 : 1;
    expect(claimed[owner]).toContain('ws-new');
    expect(await markOf(prefix, 'ws-new', owner === 0 ? 'b' : 'a')).toBeNull();
    // The claimed replica's marks are swept.
    expect(await markOf(prefix, 'ws-new', 'dying')).toBeNull();
    // Claimed once: a second look finds nothing, and the survivor's own mark is not taken.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await claimAll(survivors)).toEqual([[], []]);
  });

  it('leaves the registry on close: what it still marks is claimable at once', async () => {
    const prefix = `rec${++prefixes}:`;
    const { store: leaving } = await replica(prefix, 'leaving');
    const { store: survivor } = await replica(prefix, 'survivor');
    await leaving.markPending(['ws-1']);
    await leaving.close();
    expect(await survivor.claimOrphans()).toEqual(['ws-1']);
    expect(await markOf(prefix, 'ws-1', 'survivor')).toBe('1');
  });

  it('unmarks: its own marks only, and a hash that was nothing but a mark goes', async () => {
    const prefix = `rec${++prefixes}:`;
    const { store: one } = await replica(prefix, 'one');
    const { store: two } = await replica(prefix, 'two');
    await one.upsert('ws-known', { a: 1 }, 's');
    await one.markPending(['ws-known', 'ws-unknown']);
    await two.unmarkPending(['ws-known']);
    expect(await markOf(prefix, 'ws-known', 'one')).toBe('1');
    await one.unmarkPending(['ws-known', 'ws-unknown']);
    expect(await markOf(prefix, 'ws-known', 'one')).toBeNull();
    expect(await markOf(prefix, 'ws-unknown', 'one')).toBeUndefined();
    expect((await one.getByWorkspaceId('ws-known'))?.fields).toEqual({ a: 1 });
    await one.close();
    expect(await two.claimOrphans()).toEqual([]);
  });

  it("keeps another replica's mark through a removal: a patch it accepted after is its own", async () => {
    const prefix = `rec${++prefixes}:`;
    const { store: remover } = await replica(prefix, 'remover');
    const { store: other } = await replica(prefix, 'other');
    await remover.upsert('ws-1', { a: 1 }, 's');
    await remover.markPending(['ws-1']);
    await other.markPending(['ws-1']);
    await remover.remove('ws-1');
    expect(await remover.getByWorkspaceId('ws-1')).toBeUndefined();
    expect(await markOf(prefix, 'ws-1', 'other')).toBe('1');
    expect(await markOf(prefix, 'ws-1', 'remover')).toBeNull();
  });

  it('removes a marked workspace with its mark, telling the feed only of real workspaces', async () => {
    const prefix = `rec${++prefixes}:`;
    const { store } = await replica(prefix, 'r');
    const seen: string[] = [];
    const unsubscribe = store.subscribe((change) =>
      seen.push(`${change.type} ${workspaceOf(change)}`),
    );
    await unsubscribe.ready;
    await store.markPending(['ws-only-marked']);
    await store.remove('ws-only-marked');
    await store.upsert('ws-real', { a: 1 }, 's');
    await store.remove('ws-real');
    await eventually(() => expect(seen).toEqual(['upsert ws-real', 'remove ws-real']));
    expect(await markOf(prefix, 'ws-only-marked', 'r')).toBeUndefined();
    unsubscribe();
  });

  it.each([
    [{ replicaId: '' }, /`replicaId` to be a non-empty string without commas/],
    [{ replicaId: 'a,b' }, /`replicaId`/],
    [{ heartbeatMs: 0 }, /`heartbeatMs`/],
    [
      { heartbeatMs: 5000, replicaTimeoutMs: 5000 },
      /`replicaTimeoutMs` to be more than heartbeatMs \(5000\)/,
    ],
  ])('refuses %j, naming it', async (options, message) => {
    const client = await server.client();
    expect(() => createRedisSnapshotStore(client, options)).toThrow(message);
  });

  it('refuses marks that are not an array of workspace ids', async () => {
    const { store } = await freshStore();
    await expect(store.markPending('ws-1' as never)).rejects.toThrow(
      /`workspaceIds` to be an array/,
    );
    await expect(store.markPending([''])).rejects.toThrow(/`workspaceId`/);
  });
});

describe('the Redis change feed under hostile input', () => {
  it('reports a message it cannot decode and keeps delivering', async () => {
    const onError = vi.fn();
    const { store, prefix } = await freshStore({ onError });
    const seen: string[] = [];
    const unsubscribe = store.subscribe((change) => seen.push(workspaceOf(change)));
    await unsubscribe.ready;
    const admin = await server.client();
    await store.upsert('ws-1', { a: 1 }, 's');
    await eventually(() => expect(seen).toEqual(['ws-1']));
    // Entries no store wrote, in ws-1's feed shard, and wake-ups for no shard at all.
    const [hash] = await admin.keys(`${prefix}{*}ws-1`);
    const stream = (hash as string).slice(0, (hash as string).indexOf('}') + 1);
    await admin.xadd(stream, '*', 'c', 'not json at all');
    await admin.xadd(stream, '*', 'c', '["upsert"]');
    await admin.xadd(stream, '*', 'other', 'field');
    for (const message of ['99', '-1', 'x', '0']) await admin.publish(`${prefix}changes`, message);
    await store.upsert('ws-1', { a: 2 }, 's');
    await eventually(() => expect(seen).toEqual(['ws-1', 'ws-1']));
    expect(onError.mock.calls.map(([, context]) => context.operation)).toContain('decode');
    unsubscribe();
  });

  it('reports a connection error of its own feed instead of leaving it unhandled', async () => {
    const onError = vi.fn();
    const { store } = await freshStore({ onError });
    const printed = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      const unsubscribe = store.subscribe(() => {});
      await unsubscribe.ready;
      await server.down();
      await eventually(
        () =>
          expect(onError.mock.calls.map(([, context]) => context.operation)).toContain(
            'connection',
          ),
        5000,
      );
      expect(printed.mock.calls.flat().join(' ')).not.toMatch(/Unhandled error event/);
      unsubscribe();
    } finally {
      await server.up();
      printed.mockRestore();
    }
  }, 20_000);
});

describe('the Redis store while its client is not connected', () => {
  it('fails fast, so a write the coalescer gave up never lands later from the offline queue', async () => {
    // A client as ioredis makes it by default: offline queue on, retrying for ever.
    const client = await server.client({ enableOfflineQueue: true, maxRetriesPerRequest: null });
    const { store } = await freshStore({}, client);
    const onError = vi.fn();
    const coalescer = new EventCoalescer(store, {
      canCreate: () => true,
      onError,
      retry: { attempts: 2, delayMs: 20, jitter: 0 },
      drainTimeoutMs: 300,
    });
    await server.down();
    await eventually(() => expect(client.status).not.toBe('ready'), 5000);
    coalescer.enqueue('ws-late', { during: 'outage' }, 's');
    await coalescer.close();
    expect(onError).toHaveBeenCalledTimes(1);
    expect(onError.mock.calls[0]?.[0]).toBeInstanceOf(Error);
    expect(String(onError.mock.calls[0]?.[0])).toMatch(/not connected/);
    await server.up();
    await eventually(() => expect(client.status).toBe('ready'), 5000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await store.getByWorkspaceId('ws-late')).toBeUndefined();
  }, 20_000);
});

describe('the Redis store under a least-privilege ACL user', () => {
  it('does everything it promises with only the rules redisAclRules gives', async () => {
    const admin = await server.client();
    await admin.call(
      'ACL',
      'SETUSER',
      'acl-a',
      'on',
      '>a-secret',
      ...redisAclRules({ prefix: 'acl-a:' }),
    );
    const client = await server.client({ username: 'acl-a', password: 'a-secret' });
    const store = createRedisSnapshotStore(client, { prefix: 'acl-a:' });
    stores.push(store);
    const seen: string[] = [];
    const unsubscribe = store.subscribe((change) =>
      seen.push(`${change.type} ${workspaceOf(change)}`),
    );
    await unsubscribe.ready;
    await store.upsert('ws-1', { a: 1 }, 's', 10);
    await store.upsert('ws-2', { a: 2 }, 's', 10);
    await store.remove('ws-2', 20);
    await store.upsert('ws-2', { a: 3 }, 's', 15);
    expect((await store.getByWorkspaceId('ws-1'))?.fields).toEqual({ a: 1 });
    expect((await store.getAll()).map((entry) => entry.workspaceId)).toEqual(['ws-1']);
    await eventually(() => expect(seen).toEqual(['upsert ws-1', 'upsert ws-2', 'remove ws-2']));
    unsubscribe();
  });

  it('keeps another prefix’s user out of its keys and feed, saying which and never retrying for ever', async () => {
    const admin = await server.client();
    await admin.call(
      'ACL',
      'SETUSER',
      'acl-b',
      'on',
      '>b-secret',
      ...redisAclRules({ prefix: 'acl-b:' }),
    );
    const owner = createRedisSnapshotStore(await server.client(), { prefix: 'acl-c:' });
    stores.push(owner);
    await owner.upsert('ws-1', { secret: 1 }, 's');
    const onError = vi.fn();
    const intruder = createRedisSnapshotStore(
      await server.client({ username: 'acl-b', password: 'b-secret' }),
      { prefix: 'acl-c:', onError },
    );
    stores.push(intruder);
    await expect(intruder.getByWorkspaceId('ws-1')).rejects.toThrow(
      /refused getByWorkspaceId for this user \(keys acl-c:\{[\d.]+\}ws-1, .*NOPERM/,
    );
    await expect(intruder.upsert('ws-1', { secret: 2 }, 's')).rejects.toThrow(
      /refused upsert for this user \(keys acl-c:\{([\d.]+)\}ws-1, acl-c-removed:\{\1\}ws-1, acl-c:\{\1\}, channel acl-c:changes\)/,
    );
    await expect(intruder.subscribe(() => {}).ready).rejects.toThrow(/refused subscribe/);
    expect(onError).toHaveBeenCalledWith(expect.any(Error), { operation: 'connection' });
    const reported = vi.fn();
    const coalescer = new EventCoalescer(intruder, {
      canCreate: () => true,
      onError: reported,
      retry: { attempts: 2, delayMs: 10, jitter: 0 },
    });
    coalescer.enqueue('ws-1', { secret: 3 }, 's', { immediate: true });
    await coalescer.close();
    expect(reported).toHaveBeenCalledTimes(1);
    expect(String(reported.mock.calls[0]?.[0])).toMatch(/refused upsert/);
    expect((await owner.getByWorkspaceId('ws-1'))?.fields).toEqual({ secret: 1 });
  });
});

describe('Redis store names that could overlap', () => {
  it('lets another prefix’s user list the key names (SCAN is not restricted by key pattern), and no more', async () => {
    const admin = await server.client();
    await admin.call(
      'ACL',
      'SETUSER',
      'scan-b',
      'on',
      '>b',
      ...redisAclRules({ prefix: 'scan-b:' }),
    );
    const owner = createRedisSnapshotStore(await server.client(), { prefix: 'scan-a:' });
    stores.push(owner);
    await owner.upsert('ws-private', { secret: 1 }, 's');
    const other = await server.client({ username: 'scan-b', password: 'b' });
    const [, names] = await other.scan('0', 'MATCH', 'scan-a:*', 'COUNT', 10_000);
    const name = names.find((key) => key.endsWith('}ws-private'));
    expect(name).toMatch(/^scan-a:\{[\d.]+\}ws-private$/);
    await expect(other.hgetall(name as string)).rejects.toThrow(/NOPERM/);
  });

  it('refuses a prefix that another store in the process uses for its tombstones, until that store closes', async () => {
    const client = await server.client();
    const first = createRedisSnapshotStore(client, { prefix: 'ov-a:' });
    expect(() => createRedisSnapshotStore(client, { prefix: 'ov-a-removed:' })).toThrow(
      /prefix "ov-a-removed:" overlaps the names of another Redis store in this process \(prefix "ov-a:", tombstonePrefix "ov-a-removed:"\)/,
    );
    expect(() =>
      createRedisSnapshotStore(client, { prefix: 'ov-z:', tombstonePrefix: 'ov-a:' }),
    ).toThrow(/tombstonePrefix "ov-a:" overlaps/);
    expect(() =>
      createRedisSnapshotStore(client, { prefix: 'ov-a:', tombstonePrefix: 'ov-a-gone:' }),
    ).toThrow(/prefix "ov-a:" overlaps/);
    // Replicas of one store share its names.
    const replica = createRedisSnapshotStore(client, { prefix: 'ov-a:' });
    await replica.close();
    await first.close();
    const later = createRedisSnapshotStore(client, { prefix: 'ov-a-removed:' });
    stores.push(later);
    expect(later).toBeDefined();
  });

  it('refuses a tombstonePrefix equal to its own prefix', async () => {
    const client = await server.client();
    expect(() =>
      createRedisSnapshotStore(client, { prefix: 'same:', tombstonePrefix: 'same:' }),
    ).toThrow(
      'Expected `tombstonePrefix` to be a prefix other than prefix ("same:"), got `"same:"`',
    );
  });
});

describe('the rules redisAclRules gives', () => {
  /** Everything the store promises, on database 3, as `user`; throws (or times out) if refused. */
  const promises = async (user: string, prefix: string): Promise<void> => {
    const client = await server.client({ username: user, password: 'secret', db: 3 });
    const store = createRedisSnapshotStore(client, { prefix, onError: () => {} });
    stores.push(store);
    const seen: string[] = [];
    const unsubscribe = store.subscribe((change) => seen.push(change.type));
    await unsubscribe.ready;
    await store.upsert('ws-1', { a: 1 }, 's', 10);
    await store.upsert('ws-2', { a: 2 }, 's', 10);
    await store.remove('ws-2', 20);
    await store.upsert('ws-2', { a: 3 }, 's', 15);
    expect((await store.getByWorkspaceId('ws-1'))?.fields).toEqual({ a: 1 });
    expect((await store.getAll()).map((entry) => entry.workspaceId)).toEqual(['ws-1']);
    await eventually(() => expect(seen).toEqual(['upsert', 'upsert', 'remove']), 1000);
    unsubscribe();
    // Crash recovery: a replica that marks and leaves, and a survivor that claims its marks.
    const gone = createRedisSnapshotStore(
      await server.client({ username: user, password: 'secret', db: 3 }),
      { prefix, replicaId: `${user}-gone`, onError: () => {} },
    );
    await gone.markPending(['ws-3']);
    await gone.close();
    expect(await store.claimOrphans()).toEqual(['ws-3']);
    await store.unmarkPending(['ws-3']);
    // In the database the client asked for, not silently in database 0.
    const database3 = await server.client({ db: 3 });
    expect(await database3.keys(`${prefix}{*}ws-1`)).toHaveLength(1);
  };
  const within = <T>(promise: Promise<T>, ms: number): Promise<T> =>
    Promise.race([
      promise,
      new Promise<T>((_, reject) => setTimeout(() => reject(new Error('timed out')), ms)),
    ]);

  it('are exactly what the store needs: without any one of them, a promise fails', async () => {
    const admin = await server.client();
    let run = 0;
    const asUser = async (rules: string[]) => {
      const prefix = `exact-${++run}:`;
      const user = `exact-${run}`;
      await admin.call(
        'ACL',
        'SETUSER',
        user,
        'on',
        '>secret',
        ...rules.map((rule) => rule.replaceAll('placeholder', user)),
      );
      // Fresh scripts: EVAL is needed exactly when Redis does not know them yet.
      await admin.call('SCRIPT', 'FLUSH');
      return { prefix, user };
    };
    const template = redisAclRules({ prefix: 'placeholder:' });
    const everything = await asUser(template);
    await within(promises(everything.user, everything.prefix), 5000);
    for (const missing of template) {
      const { prefix, user } = await asUser(template.filter((rule) => rule !== missing));
      if (missing === '+info') {
        // Without INFO, ioredis cannot tell a Redis still loading its data from a ready one:
        // it skips its ready check and says so, and the first writes meet LOADING errors.
        const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
        try {
          await within(promises(user, prefix), 3000);
          expect(warn).toHaveBeenCalledWith(expect.stringMatching(/Skipping the ready check/));
        } finally {
          warn.mockRestore();
        }
        continue;
      }
      const outcome = await within(promises(user, prefix), 3000).then(
        () => `works without ${missing}`,
        () => 'fails',
      );
      expect(outcome).toBe('fails');
    }
  }, 120_000);

  it('name the operation and keys when a command inside a script is refused', async () => {
    const admin = await server.client();
    const rules = redisAclRules({ prefix: 'no-hset:' }).filter((rule) => rule !== '+hset');
    await admin.call('ACL', 'SETUSER', 'no-hset', 'on', '>secret', ...rules);
    const client = await server.client({ username: 'no-hset', password: 'secret' });
    const store = createRedisSnapshotStore(client, { prefix: 'no-hset:' });
    stores.push(store);
    const write = store.upsert('ws-1', { a: 1 }, 's');
    await expect(write).rejects.toMatchObject({ code: 'EC_ACL_REFUSED' });
    await expect(write).rejects.toThrow(
      /refused upsert for this user \(keys no-hset:\{[\d.]+\}ws-1/,
    );
  });
});

describe('waitForReplicas', () => {
  it('fails a write that no replica acknowledged in time, saying so', async () => {
    const { store } = await freshStore({ waitForReplicas: { count: 1, timeoutMs: 50 } });
    await expect(store.upsert('ws-1', { a: 1 }, 's')).rejects.toThrow(
      /0 of 1 replicas acknowledged the write within 50 ms/,
    );
  });

  it.each([
    [{ count: -1 }, /`waitForReplicas.count`/],
    [{ count: 1, timeoutMs: 0 }, /`waitForReplicas.timeoutMs`/],
    ['yes', /`waitForReplicas` to be an object/],
  ])('refuses %j, naming it', async (value, message) => {
    const client = await server.client();
    expect(() => createRedisSnapshotStore(client, { waitForReplicas: value as never })).toThrow(
      message,
    );
  });
});
