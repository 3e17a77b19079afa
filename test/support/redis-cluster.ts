import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';

const run = promisify(execFile);

/**
 * A private Redis Cluster: three masters and a replica each, `redis-server` processes with
 * `--cluster-enabled yes` on free loopback ports, persistence off, stopped by PID. A node's
 * bus port is its port + 10000, so both stay below 32768, the start of the ephemeral range.
 */
export interface RedisCluster {
  /** The ports of every node, masters first as `redis-cli --cluster create` made them. */
  ports: number[];
  /** A connected cluster client. */
  client(options?: {
    enableOfflineQueue?: boolean;
    username?: string;
    password?: string;
  }): Promise<Cluster>;
  /** A plain connection to one node, for admin commands. */
  node(port: number): Promise<Redis>;
  /** Kills the node on `port` (SIGKILL), as a crashed machine. */
  kill(port: number): Promise<void>;
  /** Starts the killed node again: it rejoins, as a replica of whoever took its place. */
  restart(port: number): Promise<void>;
  /** Resolves once every live node says the cluster is ok. */
  healthy(): Promise<void>;
  /** Runs a command on every node still alive (ACL SETUSER and the like). */
  everyNode(...args: string[]): Promise<void>;
  stop(): Promise<void>;
}

const NODE_TIMEOUT_MS = 1000;

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Six consecutive ports from 20000 to 22767, each free together with its bus port. */
async function freePorts(count: number): Promise<number[]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const first = 20_000 + Math.floor(Math.random() * (2_767 - count));
    const ports = Array.from({ length: count }, (_, i) => first + i);
    const checks = await Promise.all(
      ports.flatMap((port) => [isFree(port), isFree(port + 10_000)]),
    );
    if (checks.every(Boolean)) return ports;
  }
  throw new Error('no free ports for a Redis Cluster below 22768');
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`Redis Cluster: ${what} within ${timeoutMs} ms`);
}

export async function startRedisCluster(): Promise<RedisCluster> {
  const ports = await freePorts(6);
  const dir = await mkdtemp(join(tmpdir(), 'event-coalescer-cluster-'));
  const children = new Map<number, ChildProcess>();
  const admins = new Set<Redis>();
  const clients = new Set<Cluster>();
  const launch = (port: number): void => {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout',
        String(NODE_TIMEOUT_MS),
        '--save',
        '',
        '--appendonly',
        'no',
        '--logfile',
        join(dir, `log-${port}.txt`),
        // Replicas sync at once, not after the default 5 s wait for more replicas.
        '--repl-diskless-sync-delay',
        '0',
        '--dir',
        dir,
      ],
      { stdio: 'ignore' },
    );
    children.set(port, child);
  };
  for (const port of ports) launch(port);
  const alive = (port: number): boolean =>
    children.get(port)?.exitCode === null && children.get(port)?.signalCode === null;
  const node = async (port: number): Promise<Redis> => {
    const admin = new Redis({
      port,
      host: '127.0.0.1',
      retryStrategy: () => null,
      lazyConnect: true,
    });
    admin.on('error', () => {});
    await admin.connect();
    admins.add(admin);
    return admin;
  };
  const stop = async (): Promise<void> => {
    for (const client of clients) client.disconnect();
    for (const admin of admins) admin.disconnect();
    await Promise.all(
      [...children.values()].map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (const port of ports) {
      await waitFor(async () => {
        const probe = await node(port);
        const pong = await probe.ping();
        probe.disconnect();
        admins.delete(probe);
        return pong === 'PONG';
      }, `node ${port} did not start`);
    }
    await run('redis-cli', [
      '--cluster',
      'create',
      ...ports.map((port) => `127.0.0.1:${port}`),
      '--cluster-replicas',
      '1',
      '--cluster-yes',
    ]);
    const admin = await node(ports[0] as number);
    await waitFor(
      async () => (await admin.cluster('INFO')).includes('cluster_state:ok'),
      'the cluster did not become ready',
    );
    // A replica that has not synced cannot take over: wait until every one has.
    for (const port of ports) {
      const each = await node(port);
      await waitFor(async () => {
        const replication = await each.info('replication');
        return replication.includes('role:master') || replication.includes('master_link_status:up');
      }, `replica ${port} did not sync`);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    ports,
    async client(options = {}) {
      const cluster = new Cluster(
        ports.slice(0, 3).map((port) => ({ host: '127.0.0.1', port })),
        {
          enableOfflineQueue: options.enableOfflineQueue ?? false,
          clusterRetryStrategy: (times) => Math.min(times * 100, 1000),
          redisOptions: {
            maxRetriesPerRequest: 1,
            ...(options.username === undefined
              ? {}
              : { username: options.username, password: options.password }),
          },
        },
      );
      cluster.on('error', () => {});
      clients.add(cluster);
      if (cluster.status !== 'ready') {
        await new Promise<void>((resolve, reject) => {
          cluster.once('ready', () => resolve());
          cluster.once('end', () => reject(new Error('cluster client ended before ready')));
        });
      }
      return cluster;
    },
    node,
    async kill(port) {
      const child = children.get(port);
      if (child === undefined || !alive(port)) return;
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      });
    },
    async restart(port) {
      launch(port);
      await waitFor(async () => {
        const probe = await node(port);
        return (await probe.ping()) === 'PONG';
      }, `node ${port} did not restart`);
    },
    async healthy() {
      // Ok on every live node, and no master left that is down or serves slots while failed.
      for (const port of ports.filter(alive)) {
        const admin = await node(port);
        await waitFor(
          async () => {
            const info = await admin.cluster('INFO');
            const nodes = String(await admin.cluster('NODES'));
            const failedMasters = nodes
              .split('\n')
              .filter((line) => /master,fail\b/.test(line) && line.split(' ').length > 8);
            return info.includes('cluster_state:ok') && failedMasters.length === 0;
          },
          `node ${port} did not see the cluster ok`,
          30_000,
        );
      }
    },
    async everyNode(...args) {
      await Promise.all(
        ports.filter(alive).map(async (port) => {
          const admin = await node(port);
          await admin.call(...(args as [string, ...string[]]));
        }),
      );
    },
    stop,
  };
}
