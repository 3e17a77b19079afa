import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './free-port.js';

/**
 * A private PostgreSQL cluster: `initdb` in a temporary folder, `postgres` on a free loopback
 * port (never 5432), run as the `postgres` system user when the tests run as root (PostgreSQL
 * refuses root), stopped by PID.
 */
export interface PostgresServer {
  port: number;
  /** `postgres://postgres@127.0.0.1:<port>/postgres`, or for another role and database. */
  url(role?: string, database?: string): string;
  /** A pool on the server, ended by `stop`. */
  pool(options?: pg.PoolConfig): pg.Pool;
  /** Runs SQL as the superuser. */
  sql(text: string, values?: unknown[]): Promise<pg.QueryResult>;
  /** A new database, empty: one per store under test keeps them apart. */
  createDatabase(): Promise<string>;
  stop(): Promise<void>;
  /** Stops the server (an outage); `up` starts it again on the same port, data kept. */
  down(): Promise<void>;
  up(): Promise<void>;
}

/** Debian's server binaries: the newest `/usr/lib/postgresql/<major>/bin`. */
function binDir(): string {
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((name) => existsSync(join(root, name, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const major = majors[0];
  if (major === undefined) {
    throw new Error(
      'PostgreSQL is not installed: `apt-get install -y postgresql` (.ci/run does this when it is missing)',
    );
  }
  return join(root, major, 'bin');
}

/** The `postgres` system user's ids, when running as root; the current user otherwise. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

async function waitForServer(port: number, child: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null) throw new Error(`postgres exited with code ${child.exitCode}`);
    const client = new pg.Client({
      host: '127.0.0.1',
      port,
      user: 'postgres',
      database: 'postgres',
    });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('SELECT 1');
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      await client.end().catch(() => {});
    }
  }
  throw new Error(`postgres did not answer on port ${port}`);
}

export async function startPostgresServer(): Promise<PostgresServer> {
  const bin = binDir();
  const user = runAs();
  let port = await freePort();
  while (port === 5432) port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'event-coalescer-pg-'));
  if (user !== undefined) chownSync(dir, user.uid, user.gid);
  const data = join(dir, 'data');
  execFileSync(
    join(bin, 'initdb'),
    ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync'],
    { stdio: 'ignore', cwd: dir, ...user },
  );
  let child: ChildProcess | undefined;
  const pools = new Set<pg.Pool>();
  const launch = async (): Promise<void> => {
    const started = spawn(
      join(bin, 'postgres'),
      [
        '-D',
        data,
        '-p',
        String(port),
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        `unix_socket_directories=${dir}`,
        '-c',
        'fsync=off',
        '-c',
        'synchronous_commit=off',
        '-c',
        'max_connections=300',
      ],
      { stdio: 'ignore', cwd: dir, ...user },
    );
    child = started;
    await waitForServer(port, started);
  };
  const halt = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (running === undefined || running.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      running.once('exit', () => resolve());
      // Fast shutdown: connections are cut, the data stays.
      running.kill('SIGINT');
    });
  };
  const url = (role = 'postgres', database = 'postgres'): string =>
    `postgres://${role}@127.0.0.1:${port}/${database}`;
  const admin = new pg.Pool({ connectionString: url(), max: 2 });
  admin.on('error', () => {});
  await launch();
  let databases = 0;
  return {
    port,
    url,
    pool(options = {}) {
      const pool = new pg.Pool({ connectionString: url(), ...options });
      pool.on('error', () => {});
      pools.add(pool);
      return pool;
    },
    sql: (text, values) => admin.query(text, values),
    async createDatabase() {
      databases++;
      const name = `test_${process.pid}_${databases}`;
      await admin.query(`CREATE DATABASE ${name}`);
      return name;
    },
    async stop() {
      await Promise.allSettled([...pools].map((pool) => pool.end()));
      pools.clear();
      await admin.end().catch(() => {});
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
    down: halt,
    up: launch,
  };
}
