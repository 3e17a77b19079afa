import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisSnapshotStore } from '../src/stores/redis.js';
import { spawnFixture } from './support/fixture-process.js';
import { type RedisServer, startRedisServer } from './support/redis-server.js';

let server: RedisServer;

beforeAll(async () => {
  server = await startRedisServer();
}, 30_000);
afterAll(async () => {
  await server?.stop();
});

describe('two replicas on one Redis', () => {
  it('converge on one snapshot, and a third process sees every change', async () => {
    const prefix = 'replicas:';
    const workspaces = Array.from({ length: 20 }, (_, i) => `ws-${i}`);
    const watcher = spawnFixture('subscriber.ts', [server.url, prefix]);
    const a = spawnFixture('replica.ts', [server.url, 'a', prefix]);
    const b = spawnFixture('replica.ts', [server.url, 'b', prefix]);
    await Promise.all([watcher.next('ready'), a.next('ready'), b.next('ready')]);

    // Phase 1: interleaved events for overlapping workspaces; A archives five of them.
    const ranA = a.next('ran');
    const ranB = b.next('ran');
    a.send({ type: 'run', workspaces, events: 300, archive: workspaces.slice(0, 5) });
    b.send({ type: 'run', workspaces: workspaces.slice(5), events: 300 });
    await Promise.all([ranA, ranB]);
    // Phase 2: both write again, B now also to an archived workspace, which comes back.
    const again = [a.next('ran'), b.next('ran')];
    a.send({ type: 'run', workspaces: workspaces.slice(5, 15), events: 100 });
    b.send({ type: 'run', workspaces: ['ws-0', ...workspaces.slice(10)], events: 100 });
    await Promise.all(again);

    const stoppedA = a.next('stopped');
    const stoppedB = b.next('stopped');
    a.send({ type: 'stop' });
    b.send({ type: 'stop' });
    const [lastA, lastB] = (await Promise.all([stoppedA, stoppedB])).map(
      (message) => message.last as Record<string, Record<string, unknown>>,
    );

    // The model: each replica owns its fields; archived workspaces lost A's fields.
    const model: Record<string, Record<string, unknown>> = {};
    for (const last of [lastA, lastB]) {
      for (const [id, fields] of Object.entries(last ?? {}))
        model[id] = { ...model[id], ...fields };
    }
    const client = await server.client();
    const reader = createRedisSnapshotStore(client, { prefix });
    const snapshot = Object.fromEntries(
      (await reader.getAll()).map((entry) => [entry.workspaceId, entry.fields]),
    );
    expect(snapshot).toEqual(model);
    expect(Object.keys(snapshot)).not.toContain('ws-1');
    expect(Object.keys(snapshot)).toContain('ws-0');

    const stoppedWatcher = watcher.next('stopped');
    watcher.send({ type: 'stop' });
    const seen = await stoppedWatcher;
    expect(seen.state).toEqual(snapshot);
    expect(seen.changes as number).toBeGreaterThan(20);
    await reader.close();
    client.disconnect();
  }, 60_000);
});

describe('a replica killed in the middle of a burst', () => {
  it("leaves its pending patches to a survivor, which re-reads them: the snapshot equals the domain's state", async () => {
    // With refresh sources that read the domain's truth, as a host's reconciliation does.
    const prefix = 'crash:';
    const workspaces = Array.from({ length: 40 }, (_, i) => `ws-${i}`);
    const dying = spawnFixture('crashing-replica.ts', [server.url, prefix, 'dying']);
    const survivor = spawnFixture('crashing-replica.ts', [server.url, prefix, 'survivor']);
    await Promise.all([dying.next('ready'), survivor.next('ready')]);
    // Overlapping workspaces, each replica its own field, two rounds each.
    for (const round of [1, 2]) {
      const bursts = [dying.next('burst-done'), survivor.next('burst-done')];
      dying.send({ type: 'burst', workspaces: workspaces.slice(0, 30), field: 'a', round });
      survivor.send({ type: 'burst', workspaces: workspaces.slice(10), field: 'b', round });
      const [ofDying] = await Promise.all(bursts);
      expect(ofDying?.pending).toBe(30);
    }
    // A third burst, SIGKILLed after 15 of its 30 workspaces, with 30 patches pending (a window
    // of 5 s): nothing of them was written.
    const exited = new Promise((resolve) => dying.child.once('exit', resolve));
    dying.send({
      type: 'burst',
      workspaces: workspaces.slice(0, 30),
      field: 'a',
      round: 3,
      killAfter: 15,
    });
    await exited;
    const client = await server.client();
    const reader = createRedisSnapshotStore(client, { prefix });
    expect(await reader.getAll()).toEqual([]);
    // Its heartbeat expires (500 ms); the survivor recovers and writes what it holds.
    await new Promise((resolve) => setTimeout(resolve, 700));
    const recovered = survivor.next('recovered');
    survivor.send({ type: 'recover' });

    expect(((await recovered).recovered as string[]).sort()).toEqual(
      workspaces.slice(0, 30).sort(),
    );
    const truth = Object.fromEntries(
      await Promise.all(
        workspaces.map(async (id) => [id, await client.hgetall(`truth:${prefix}${id}`)] as const),
      ),
    );
    const snapshot = Object.fromEntries(
      (await reader.getAll()).map((entry) => [entry.workspaceId, entry.fields]),
    );
    expect(snapshot).toEqual(truth);
    expect(snapshot['ws-0']).toEqual({ a: 'dying-3' });
    expect(snapshot['ws-14']).toEqual({ a: 'dying-3', b: 'survivor-2' });
    expect(snapshot['ws-15']).toEqual({ a: 'dying-2', b: 'survivor-2' });
    const stopped = survivor.next('stopped');
    survivor.send({ type: 'stop' });
    await stopped;
    await reader.close();
    client.disconnect();
  }, 60_000);
});

describe('the demo against Redis (npm start -- --redis URL)', () => {
  it('keeps the snapshot in Redis and exits 0 with a summary', async () => {
    const { stdout } = await promisify(execFile)(
      'node',
      [
        '--import',
        'tsx',
        'examples/demo.ts',
        '--redis',
        server.url,
        '--duration',
        '1',
        '--workspaces',
        '4',
        '--quiet',
      ],
      { timeout: 30_000 },
    );
    expect(stdout).toMatch(/snapshot: +\d+ workspaces in Redis/);
    const client = await server.client();
    const reader = createRedisSnapshotStore(client, { prefix: 'demo:' });
    expect((await reader.getAll()).length).toBeGreaterThanOrEqual(4);
    client.disconnect();
  }, 30_000);
});
