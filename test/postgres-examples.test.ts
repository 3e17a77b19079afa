import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresSnapshotStore } from '../src/stores/postgres.js';
import { type PostgresServer, startPostgresServer } from './support/postgres-server.js';

const run = promisify(execFile);
let server: PostgresServer;

beforeAll(async () => {
  server = await startPostgresServer();
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

describe('the examples on PostgreSQL', () => {
  it('runs the demo with --postgres, keeping the snapshot in the database', async () => {
    const { stdout } = await run(
      'node',
      [
        '--import',
        'tsx',
        'examples/demo.ts',
        '--duration',
        '1',
        '--workspaces',
        '5',
        '--postgres',
        server.url(),
      ],
      { timeout: 30_000 },
    );
    expect(stdout).toMatch(/^ws-\d+ .*← event:/m);
    expect(stdout).toMatch(/snapshot: +\d+ workspaces in PostgreSQL/);
    const pool = server.pool({ max: 2 });
    const reader = createPostgresSnapshotStore(pool, { table: 'event_coalescer_demo' });
    expect((await reader.getAll()).length).toBeGreaterThanOrEqual(4);
    await pool.end();
  }, 30_000);

  it('refuses a --postgres that is not a postgres:// URL, in one line', async () => {
    const failure = await run('node', [
      '--import',
      'tsx',
      'examples/demo.ts',
      '--postgres',
      'localhost',
    ]).catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: 2 });
    expect((failure as { stderr: string }).stderr.trim()).toMatch(
      /^demo: --postgres expects a URL/,
    );
  });

  it('runs the replicas example: two replicas on one database converge, field by field', async () => {
    const { stdout } = await run(
      'node',
      ['--import', 'tsx', 'examples/replicas.ts', server.url()],
      {
        timeout: 30_000,
      },
    );
    const shared = stdout.split('shared snapshot:\n')[1] ?? '';
    const lines = shared.trim().split('\n');
    expect(lines).toHaveLength(3);
    for (const [i, line] of lines.entries()) {
      const [workspaceId, fields] = line.split('  ');
      expect(workspaceId).toBe(`ws-${i + 1}`);
      // The last write of each replica, each field kept: neither overwrote the other.
      expect(JSON.parse(fields as string)).toEqual({
        status: 'step-4',
        isWorking: true,
        ciRuns: 4,
      });
    }
  }, 30_000);

  it('serves the live page from PostgreSQL with --web --postgres: the snapshot, then changes', async () => {
    const child = spawn(
      'node',
      [
        '--import',
        'tsx',
        'examples/demo.ts',
        '--web',
        '--port',
        '0',
        '--rate',
        '100',
        '--duration',
        '6',
        '--postgres',
        server.url(),
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    try {
      const [line] = (await once(child.stdout, 'data')) as [Buffer];
      const url = line.toString().trim();
      const response = await fetch(`${url}events`);
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      let text = '';
      const decoder = new TextDecoder();
      while (!/event: change[\s\S]*event: change/.test(text)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value);
      }
      await reader.cancel();
      // First the whole snapshot, with its feed position as the SSE id; then each change, with its own.
      expect(text).toMatch(/^id: [0-9a-f]{12}-\d+\nevent: snapshot\n/m);
      expect(text.match(/^id: [0-9a-f]{12}-\d+\nevent: change\n/gm)?.length).toBeGreaterThanOrEqual(
        2,
      );
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  }, 30_000);
});
