/**
 * Outages of a real Redis while events flow: killed and restarted (append-only file),
 * frozen (SIGSTOP, SIGCONT), connections killed (CLIENT KILL), a command cut off mid-flight.
 * With the package's defaults nothing is given up, and the snapshot equals the model.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventCoalescer } from '../src/index.js';
import { createRedisSnapshotStore, type RedisSnapshotStore } from '../src/stores/redis.js';
import { type RedisServer, startRedisServer } from './support/redis-server.js';

let server: RedisServer;
const stores: RedisSnapshotStore[] = [];

beforeAll(async () => {
  server = await startRedisServer({ appendOnly: true });
});
afterAll(async () => {
  for (const store of stores) await store.close();
  await server?.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A store over a client that fails fast and never resends what a dropped connection cut. */
async function failFastStore(prefix: string) {
  const client = await server.client({ autoResendUnfulfilledCommands: false });
  const store = createRedisSnapshotStore(client, { prefix, onError: () => {} });
  stores.push(store);
  return { client, store };
}

/**
 * Events for 300 workspaces every 50 ms, with `disrupt` in the middle; then `close()`.
 * Returns what was given up, the model (every field's last value) and the snapshot.
 */
async function runThrough(prefix: string, disrupt: () => Promise<void>) {
  const { store } = await failFastStore(prefix);
  const givenUp: string[] = [];
  const coalescer = new EventCoalescer(store, {
    timestamps: true,
    canCreate: () => true,
    windowMs: 20,
    maxWaitMs: 100,
    onError: (error, context) => givenUp.push(`${context.operation}: ${String(error)}`),
  });
  const model: Record<string, Record<string, unknown>> = {};
  let flowing = true;
  const flow = (async () => {
    for (let round = 0; flowing; round++) {
      for (let i = 0; i < 300; i++) {
        const workspaceId = `ws-${i}`;
        const fields = { [`f${round % 4}`]: round };
        model[workspaceId] = { ...model[workspaceId], ...fields };
        coalescer.enqueue(workspaceId, fields, 'event:change');
      }
      await sleep(50);
    }
  })();
  await sleep(300);
  await disrupt();
  await sleep(300);
  flowing = false;
  await flow;
  await coalescer.close();
  const reader = (await failFastStore(prefix)).store;
  const snapshot = Object.fromEntries(
    (await reader.getAll()).map((entry) => [entry.workspaceId, entry.fields]),
  );
  return { givenUp, model, snapshot, stats: coalescer.stats() };
}

describe('a Redis outage while events flow, with the defaults', () => {
  it('killed and restarted with its append-only file: nothing is given up', async () => {
    const { givenUp, model, snapshot, stats } = await runThrough('killed:', async () => {
      await server.down();
      await sleep(2500);
      await server.up();
    });
    expect(givenUp).toEqual([]);
    expect(snapshot).toEqual(model);
    expect(stats.retried).toBeGreaterThan(0);
  }, 30_000);

  it('frozen with SIGSTOP for 3 s, then SIGCONT: nothing is given up', async () => {
    const { givenUp, model, snapshot } = await runThrough('frozen:', async () => {
      server.freeze();
      await sleep(3000);
      server.thaw();
    });
    expect(givenUp).toEqual([]);
    expect(snapshot).toEqual(model);
  }, 30_000);

  it('its connections killed again and again (CLIENT KILL): nothing is given up', async () => {
    const admin = await server.client();
    const { givenUp, model, snapshot, stats } = await runThrough('client-kill:', async () => {
      for (let i = 0; i < 10; i++) {
        await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
        await sleep(150);
      }
    });
    expect(givenUp).toEqual([]);
    expect(snapshot).toEqual(model);
    expect(stats.retried).toBeGreaterThan(0);
  }, 30_000);
});

describe('the Redis store when a connection drops', () => {
  it('fails a command cut off mid-flight with EC_CONNECTION_LOST instead of hanging', async () => {
    const { client, store } = await failFastStore('cut:');
    await store.upsert('ws-1', { a: 1 }, 's');
    server.freeze();
    const write = store.upsert('ws-1', { a: 2 }, 's').catch((error: unknown) => error);
    const read = store.getByWorkspaceId('ws-1').catch((error: unknown) => error);
    await sleep(100);
    // The server dies with the commands unanswered: the connection drops under them.
    await server.down();
    expect(await write).toMatchObject({ code: 'EC_CONNECTION_LOST' });
    expect(await read).toMatchObject({ code: 'EC_CONNECTION_LOST' });
    await server.up();
    await waitUntilReady(client);
  }, 20_000);

  it('fails reads at once while the client is not connected, as writes do', async () => {
    const { client, store } = await failFastStore('offline:');
    await server.down();
    // ioredis notices the closed connection on its next turn.
    for (let i = 0; i < 100 && client.status === 'ready'; i++) await sleep(10);
    try {
      await expect(store.getByWorkspaceId('ws-1')).rejects.toMatchObject({
        code: 'EC_NOT_CONNECTED',
      });
      await expect(store.getAll()).rejects.toMatchObject({ code: 'EC_NOT_CONNECTED' });
      await expect(store.upsert('ws-1', { a: 1 }, 's')).rejects.toMatchObject({
        code: 'EC_NOT_CONNECTED',
      });
    } finally {
      await server.up();
      await waitUntilReady(client);
    }
  }, 20_000);

  it('sends nothing for a call whose signal is already aborted', async () => {
    const { store } = await failFastStore('aborted:');
    const controller = new AbortController();
    controller.abort(new Error('given up'));
    await expect(store.upsert('ws-1', { a: 1 }, 's', undefined, controller)).rejects.toThrow(
      'given up',
    );
    expect(await store.getByWorkspaceId('ws-1')).toBeUndefined();
  });
});

async function waitUntilReady(client: Redis): Promise<void> {
  for (let i = 0; i < 100 && client.status !== 'ready'; i++) await sleep(50);
}
