import { execFile } from 'node:child_process';
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
});
