/**
 * npm run bench:redis [-- --quick]
 *
 * Events in, Redis work out: the same bursts written straight through (one store call per
 * event) and through the coalescer, against a private redis-server and a private
 * three-master Redis Cluster this script starts on free loopback ports. For each: scripts
 * and Redis commands per event (those inside scripts included, as INFO commandstats counts
 * them), commands per write (every command, feed reads and marks included, over upserts), Redis CPU per event (INFO used_cpu_user + used_cpu_sys over
 * every master), and wall time. A change feed subscriber on its own connection runs
 * throughout, as a replica that pushes to its pages has. The coalesced path also runs with ioredis's
 * `enableAutoPipelining`, which sends the scripts of one tick together.
 */
import { EventEmitter } from 'node:events';
import { parseArgs } from 'node:util';
import { createEventCollector, type SnapshotStore } from 'event-coalescer';
import { createRedisSnapshotStore, type RedisClient } from 'event-coalescer/redis';
import { Cluster, type Redis } from 'ioredis';
import { startRedisCluster } from '../test/support/redis-cluster.js';
import { connect, startLocalRedis } from './local-redis.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const WORKSPACES = values.quick ? 100 : 1_000;
const BURSTS_PER_WORKSPACE = 4;
const BURST = 5;
const GAP_MS = 2;
const WINDOW_MS = 20;

interface Counters {
  commands: number;
  scripts: number;
  cpuSeconds: number;
}

/** Commands (those inside scripts too), script calls and CPU, summed over `nodes`. */
async function counters(nodes: Redis[]): Promise<Counters> {
  const total: Counters = { commands: 0, scripts: 0, cpuSeconds: 0 };
  for (const node of nodes) {
    const stats = await node.info('commandstats');
    for (const [, name, calls] of stats.matchAll(/cmdstat_([\w|]+):calls=(\d+)/g)) {
      // The bench's own and the client's housekeeping are not the store's work.
      if (/^(info|cluster|ping|client|config|command|hello|select)/.test(name as string)) continue;
      total.commands += Number(calls);
      if (name === 'evalsha' || name === 'eval') total.scripts += Number(calls);
    }
    const cpu = await node.info('cpu');
    total.cpuSeconds +=
      Number(cpu.match(/used_cpu_user:([\d.]+)/)?.[1]) +
      Number(cpu.match(/used_cpu_sys:([\d.]+)/)?.[1]);
  }
  return total;
}

/** Emits every workspace's bursts, spread over rounds, through `emit`. */
async function drive(emit: (workspaceId: string, n: number) => void): Promise<number> {
  let events = 0;
  for (let round = 0; round < BURSTS_PER_WORKSPACE; round++) {
    for (let step = 0; step < BURST; step++) {
      for (let w = 0; w < WORKSPACES; w++) emit(`ws-${w}`, events++);
      await new Promise((resolve) => setTimeout(resolve, GAP_MS));
    }
    await new Promise((resolve) => setTimeout(resolve, WINDOW_MS * 3));
  }
  return events;
}

const straightThrough = async (store: SnapshotStore): Promise<number> => {
  const writes: Array<Promise<unknown>> = [];
  const events = await drive((workspaceId, n) => {
    writes.push(
      Promise.resolve(
        store.upsert(workspaceId, { n, status: n % 2 ? 'RUNNING' : 'READY' }, 'event:changed'),
      ),
    );
  });
  await Promise.all(writes);
  return events;
};

const coalesced = async (store: SnapshotStore): Promise<number> => {
  const domain = new EventEmitter();
  const collector = createEventCollector({
    store,
    windowMs: WINDOW_MS,
    canCreate: () => true,
    sources: [
      {
        emitter: domain,
        event: 'changed',
        map: (workspaceId: string, n: number) => ({
          workspaceId,
          fields: { n, status: n % 2 ? 'RUNNING' : 'READY' },
        }),
      },
    ],
  });
  const events = await drive((workspaceId, n) => domain.emit('changed', workspaceId, n));
  await collector.stop();
  return events;
};

interface Row {
  target: string;
  path: string;
  events: number;
  scripts: number;
  commands: number;
  cpuSeconds: number;
  elapsedMs: number;
  /** Changes the feed subscriber received. */
  changes: number;
  /** Upserts the store was asked for. */
  writes: number;
}

async function measure(
  target: string,
  path: string,
  client: RedisClient,
  nodes: Redis[],
  run: (store: SnapshotStore) => Promise<number>,
): Promise<Row> {
  const store = createRedisSnapshotStore(client, { prefix: `${path}:` });
  // A replica's change feed, as a host that pushes to its pages has: its reads count too.
  const feedClient = (client as unknown as Redis).duplicate({ lazyConnect: false });
  await new Promise((resolve) => feedClient.once('ready', resolve));
  const feed = createRedisSnapshotStore(feedClient as unknown as RedisClient, {
    prefix: `${path}:`,
  });
  let changes = 0;
  const unsubscribe = feed.subscribe(() => changes++);
  await unsubscribe.ready;
  let writes = 0;
  const counted: SnapshotStore = {
    ...store,
    upsert(...args) {
      writes++;
      return store.upsert(...args);
    },
  };
  const before = await counters(nodes);
  const started = performance.now();
  const events = await run(counted);
  const elapsedMs = performance.now() - started;
  // Every change reaches the feed before the counters are read: it is quiet for 300 ms.
  for (let seen = -1, quiet = 0; quiet < 300; quiet = changes === seen ? quiet + 20 : 0) {
    seen = changes;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const after = await counters(nodes);
  unsubscribe();
  await Promise.all([store.close(), feed.close()]);
  feedClient.disconnect();
  return {
    target,
    path,
    events,
    scripts: after.scripts - before.scripts,
    commands: after.commands - before.commands,
    cpuSeconds: after.cpuSeconds - before.cpuSeconds,
    elapsedMs,
    changes,
    writes,
  };
}

const rows: Row[] = [];

// One Redis.
const { port, server } = await startLocalRedis();
const single = await connect(port);
const singlePipelined = await connect(port, true);
rows.push(await measure('one Redis', 'straight-through', single, [single], straightThrough));
rows.push(await measure('one Redis', 'event-coalescer', single, [single], coalesced));
rows.push(
  await measure(
    'one Redis',
    'event-coalescer, auto-pipelined',
    singlePipelined,
    [single],
    coalesced,
  ),
);
const version = (await single.info('server')).match(/redis_version:(\S+)/)?.[1];
single.disconnect();
singlePipelined.disconnect();
server.kill('SIGKILL');

// A cluster of three masters, a replica each.
const cluster = await startRedisCluster();
try {
  const masters = await Promise.all(cluster.ports.slice(0, 3).map((p) => cluster.node(p)));
  const startup = cluster.ports.slice(0, 3).map((p) => ({ host: '127.0.0.1', port: p }));
  const plain = await cluster.client({ enableOfflineQueue: true });
  const pipelined = new Cluster(startup, { enableAutoPipelining: true });
  await new Promise((resolve) => pipelined.once('ready', resolve));
  rows.push(await measure('cluster', 'straight-through', plain, masters, straightThrough));
  rows.push(await measure('cluster', 'event-coalescer', plain, masters, coalesced));
  rows.push(
    await measure('cluster', 'event-coalescer, auto-pipelined', pipelined, masters, coalesced),
  );
  pipelined.disconnect();
} finally {
  await cluster.stop();
}

console.log(
  `\n${values.quick ? 'QUICK — ' : ''}${WORKSPACES} workspaces × ${BURSTS_PER_WORKSPACE} bursts of ${BURST} events ${GAP_MS} ms apart, window ${WINDOW_MS} ms, Redis ${version}, loopback\n`,
);
console.log(
  '| Redis | path | events | scripts per event | commands per event | commands per write | Redis CPU µs per event | wall ms | feed changes |',
);
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|');
for (const row of rows) {
  console.log(
    `| ${row.target} | ${row.path} | ${row.events} | ${(row.scripts / row.events).toFixed(3)} | ${(row.commands / row.events).toFixed(2)} | ${(row.commands / row.writes).toFixed(2)} | ${((row.cpuSeconds * 1e6) / row.events).toFixed(1)} | ${row.elapsedMs.toFixed(0)} | ${row.changes} |`,
  );
}
for (const target of ['one Redis', 'cluster']) {
  const straight = rows.find((row) => row.target === target && row.path === 'straight-through');
  const ours = rows.find((row) => row.target === target && row.path === 'event-coalescer');
  if (straight === undefined || ours === undefined) continue;
  console.log(
    `\n${target}: ${(straight.scripts / ours.scripts).toFixed(1)}× fewer scripts, ${(straight.commands / ours.commands).toFixed(1)}× fewer Redis commands, Redis CPU per event ${(ours.cpuSeconds / straight.cpuSeconds).toFixed(2)}× of straight-through`,
  );
}
