/** A private redis-server for the Redis benchmarks: a free loopback port, and a client to it. */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

async function freePort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Starts `redis-server` on a free loopback port, persistence off; stop it with `kill`. */
export async function startLocalRedis(): Promise<{ port: number; server: ChildProcess }> {
  const port = await freePort();
  const server = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  return { port, server };
}

/** Connects once the server listens: a fresh client per attempt, so no attempt leaks. */
export async function connect(port: number, autoPipelining = false): Promise<Redis> {
  for (let attempt = 0; ; attempt++) {
    const candidate = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      retryStrategy: () => null,
      enableAutoPipelining: autoPipelining,
    });
    candidate.on('error', () => {});
    try {
      await candidate.connect();
      return candidate;
    } catch (error) {
      candidate.disconnect();
      if (attempt > 100) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
