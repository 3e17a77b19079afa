/**
 * The README's recipes, run as a new user would copy them: each snippet as it stands, with only
 * what it leaves to the host (its store, domains, server handler) given real values around it,
 * against a fresh store. Each must write.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PostgresServer, startPostgresServer } from './support/postgres-server.js';
import { type RedisServer, startRedisServer } from './support/redis-server.js';

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, '..');
const workDir = join(repo, '.tmp', 'readme-recipes');

const domainsPrelude = `
import { EventEmitter as HostEmitter } from 'node:events';
const domains = {
  workspaceStateMachine: new HostEmitter(),
  prSnapshotService: new HostEmitter(),
  ratchetService: new HostEmitter(),
  runScriptStateMachine: new HostEmitter(),
  workspaceActivityService: new HostEmitter(),
};
const stateChange = (extra: object = {}) =>
  domains.workspaceStateMachine.emit('workspace_state_changed', {
    workspaceId: 'ws-1', fromStatus: 'NEW', toStatus: 'READY', ...extra,
  });
`;
const memoryPrelude = `
import { createMemorySnapshotStore as freshMemoryStore } from 'event-coalescer';
const store = freshMemoryStore();
const printStore = async (s: { getAll(): unknown }) =>
  console.log(JSON.stringify((await s.getAll() as { workspaceId: string; fields: object }[])
    .map((entry) => [entry.workspaceId, entry.fields])));
`;

function snippet(readme: string, marker: string): string {
  const found = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)]
    .map((match) => match[1] as string)
    .filter((code) => code.includes(marker));
  expect(found, marker).toHaveLength(1);
  return found[0] as string;
}

/** Runs prelude + the snippet as it stands + postlude; answers what it printed, parsed. */
async function runRecipe(name: string, parts: string[], env: Record<string, string> = {}) {
  await mkdir(workDir, { recursive: true });
  const file = join(workDir, `${name}.ts`);
  await writeFile(file, `${parts.join('\n')}\nexport {};\n`);
  const { stdout } = await run('node', ['--import', 'tsx', file], {
    cwd: repo,
    env: { ...process.env, ...env },
    timeout: 20_000,
  });
  return JSON.parse(stdout.trim().split('\n').pop() as string) as unknown;
}

let readme: string;
let redis: RedisServer;
let postgres: PostgresServer;
beforeAll(async () => {
  readme = await readFile(join(repo, 'README.md'), 'utf8');
  [redis, postgres] = await Promise.all([startRedisServer(), startPostgresServer()]);
}, 60_000);
afterAll(async () => {
  await Promise.all([redis?.stop(), postgres?.stop()]);
});

describe('README recipes, run as they stand', () => {
  it('Host server hooks: writes once the server listens, flushed by SIGTERM', async () => {
    const code = snippet(readme, 'server.listen(');
    const written = await runRecipe(
      'host-hooks',
      [
        domainsPrelude,
        memoryPrelude,
        'const handler = (_request: unknown, response: { end(): void }) => response.end();',
        code,
        `await new Promise((ready) => server.once('listening', ready));
stateChange();
process.emit('SIGTERM');
await new Promise((closed) => server.once('close', closed));
await printStore(store);`,
      ],
      { PORT: '0' },
    );
    expect(written).toEqual([['ws-1', { status: 'READY' }]]);
  }, 30_000);

  it('Fastify hooks: the merged write lands before app.close() resolves', async () => {
    const code = snippet(readme, "app.addHook('preClose'");
    const written = await runRecipe('fastify-hooks', [
      memoryPrelude,
      `import Fastify from 'fastify';
import { configureEventCollector, stopEventCollector } from 'event-coalescer';
import { EventEmitter } from 'node:events';
const app = Fastify();
const emitter = new EventEmitter();
const sources = [{ emitter, event: 'changed',
  map: (workspaceId: string, n: number) => ({ workspaceId, fields: { n } }) }];`,
      code,
      `await app.ready();
for (let n = 1; n <= 3; n++) emitter.emit('changed', 'ws-1', n);
await app.close();
await printStore(store);`,
    ]);
    expect(written).toEqual([['ws-1', { n: 3 }]]);
  }, 30_000);

  it('the preset carrying projectId: creates the workspace under the default canCreate', async () => {
    const code = snippet(readme, 'projectId: event.projectId');
    const written = await runRecipe('preset', [
      domainsPrelude,
      memoryPrelude,
      `import { createEventCollector, workspaceSnapshotSources } from 'event-coalescer';
import type { PrSnapshotUpdatedEvent, WorkspaceSnapshotFields, WorkspaceStateChangedEvent } from 'event-coalescer';`,
      code,
      `const collector = createEventCollector({ store, sources });
stateChange({ projectId: 'p-1' });
await collector.stop();
await printStore(store);`,
    ]);
    expect(written).toEqual([['ws-1', { status: 'READY', projectId: 'p-1' }]]);
  }, 30_000);

  it('the Redis store: connects, waits for ready, and writes to a fresh Redis', async () => {
    const code = snippet(readme, 'createRedisSnapshotStore(client').replace(
      'redis://127.0.0.1:6379',
      redis.url,
    );
    const written = await runRecipe('redis', [
      domainsPrelude,
      `import { stopEventCollector } from 'event-coalescer';
const changes: unknown[] = [];
const broadcast = (change: unknown) => changes.push(change);`,
      code,
      `await stateChange();
await stopEventCollector();
const entry = await store.getByWorkspaceId('ws-1');
await store.close();
client.disconnect();
console.log(JSON.stringify([[entry?.workspaceId, entry?.fields]]));`,
    ]);
    expect(written).toEqual([['ws-1', { status: 'READY' }]]);
  }, 30_000);

  it('the PostgreSQL store: migrates a fresh database and writes to it', async () => {
    const code = snippet(readme, 'createPostgresSnapshotStore(pool').replace(
      'postgres://app@127.0.0.1:5432/app',
      postgres.url(),
    );
    const written = await runRecipe('postgres', [
      domainsPrelude,
      `import { stopEventCollector } from 'event-coalescer';
const changes: unknown[] = [];
const broadcast = (change: unknown) => changes.push(change);`,
      code,
      `await stateChange();
await stopEventCollector();
const entry = await store.getByWorkspaceId('ws-1');
// The subscriber's LISTEN connection goes back with close(), then the pool can end.
store.close();
await pool.end();
console.log(JSON.stringify([[entry?.workspaceId, entry?.fields]]));`,
    ]);
    expect(written).toEqual([['ws-1', { status: 'READY' }]]);
  }, 30_000);
});
