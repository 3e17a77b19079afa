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
