import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './free-port.js';

/** A private `redis-server` on a free loopback port, persistence off unless asked. */
export interface RedisServer {
  port: number;
  url: string;
  /**
   * A connected client with fast failure (no offline queue, one retry per request), unless
   * `options` say otherwise.
   */
  client(options?: {
    enableOfflineQueue?: boolean;
    maxRetriesPerRequest?: number | null;
    autoResendUnfulfilledCommands?: boolean;
    db?: number;
    username?: string;
    password?: string;
  }): Promise<Redis>;
  stop(): Promise<void>;
  /** Kills the server (an outage); `up` starts it again on the same port. */
  down(): Promise<void>;
  up(): Promise<void>;
  /** Freezes the server (SIGSTOP): connections stay open, nothing answers. */
  freeze(): void;
  /** Lets a frozen server go on (SIGCONT). */
  thaw(): void;
}

export interface RedisServerOptions {
  /** An append-only file in a private folder, fsynced at every write: restarts keep the data. */
  appendOnly?: boolean;
}

function assertInstalled(): void {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error(
      'redis-server is not installed: `apt-get install -y redis-server` (.ci/run does this when it is missing)',
    );
  }
}

async function waitForPing(port: number): Promise<void> {
  const probe = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on('error', () => {});
  try {
    for (let attempt = 0; attempt < 100; attempt++) {
      try {
        await probe.connect();
        await probe.ping();
        return;
      } catch {
        probe.disconnect();
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    throw new Error(`redis-server did not answer on port ${port}`);
  } finally {
    probe.disconnect();
  }
}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  assertInstalled();
  const port = await freePort();
  const dir = options.appendOnly
    ? mkdtempSync(join(tmpdir(), 'event-coalescer-redis-'))
    : undefined;
  const persistence =
    dir === undefined
      ? ['--appendonly', 'no']
      : ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir];
  let child: ChildProcess | undefined;
  const clients = new Set<Redis>();
  const launch = async (): Promise<void> => {
    child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        ...persistence,
        '--protected-mode',
        'yes',
      ],
      { stdio: 'ignore' },
    );
    await waitForPing(port);
  };
  const halt = async (): Promise<void> => {
    const running = child;
    child = undefined;
    if (running === undefined || running.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      running.once('exit', () => resolve());
      running.kill('SIGKILL');
    });
  };
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async client(options = {}) {
      const client = new Redis({
        port,
        host: '127.0.0.1',
        maxRetriesPerRequest: 1,
        enableOfflineQueue: false,
        retryStrategy: (times) => Math.min(times * 50, 500),
        ...options,
      });
      client.on('error', () => {});
      clients.add(client);
      if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve));
      return client;
    },
    async stop() {
      for (const client of clients) client.disconnect();
      clients.clear();
      await halt();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    },
    down: halt,
    up: launch,
    freeze() {
      child?.kill('SIGSTOP');
    },
    thaw() {
      child?.kill('SIGCONT');
    },
  };
}
