/**
 * npm run bench:wave [-- --quick]
 *
 * A wave of due workspaces into Redis: N fresh workspaces (2 fields each) enqueued, then
 * `flushAll()`, as a maxWait wave, a shutdown or the backlog after an outage does. Measured as
 * writes per second against the same machine's limit in the same run: the store's own upsert
 * script, sent by a plain ioredis client in pipelines of 1,000 (on the cluster, one pipeline per
 * node). On a private redis-server and a private three-master cluster, started here.
 */
import { parseArgs } from 'node:util';
import { EventCoalescer } from 'event-coalescer';
import { createRedisSnapshotStore, type RedisClient } from 'event-coalescer/redis';
import type { Cluster, Redis } from 'ioredis';
import { shardOf, shardTags, slotOf } from '../src/stores/redis-names.js';
import { UPSERT } from '../src/stores/redis-scripts.js';
import { startRedisCluster } from '../test/support/redis-cluster.js';
import { connect, startLocalRedis } from './local-redis.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const SIZES = values.quick ? [5_000, 20_000] : [50_000, 200_000];

let run = 0;

/** The package: enqueue N fresh workspaces, then flushAll. Writes per second. */
async function viaPackage(client: RedisClient, size: number, timestamps: boolean, batched = true) {
  const store = createRedisSnapshotStore(client, { prefix: `pkg${++run}:` });
  // Without upsertMany, each workspace's upsert is a call of its own.
  const { upsertMany: _batched, ...unbatched } = store;
  const writer = batched ? store : unbatched;
  const coalescer = new EventCoalescer(writer, {
    canCreate: () => true,
    timestamps,
    windowMs: 60_000,
    maxWaitMs: Infinity,
    maxPending: size + 1,
  });
  for (let i = 0; i < size; i++) {
    coalescer.enqueue(`ws-${i}`, { status: 'READY', n: i }, 'event:changed');
  }
  const started = performance.now();
  await coalescer.flushAll();
  const seconds = (performance.now() - started) / 1000;
  const { flushed, failed } = coalescer.stats();
  if (flushed !== size || failed !== 0) throw new Error(`flushed ${flushed}, failed ${failed}`);
  await coalescer.close();
  await store.close();
  return size / seconds;
}

/**
 * The limit: the same script with the same arguments, pipelined 1,000 at a time by a plain
 * client; `group` splits a cluster's items by slot. Writes per second.
 */
async function limit(
  client: Redis | Cluster,
  size: number,
  group: (i: number) => number | string,
  argsOf: (i: number) => string[],
) {
  const lists = Array.from({ length: size }, (_, i) => ({ group: group(i), args: argsOf(i) }));
  const byGroup = new Map<number | string, string[][]>();
  for (const { group: g, args } of lists) {
    if (!byGroup.has(g)) byGroup.set(g, []);
    byGroup.get(g)?.push(args);
  }
  // Loaded once, as the store's first call would.
  await client.eval(UPSERT.source, UPSERT.keys, argsOf(-1));
  const started = performance.now();
  await Promise.all(
    [...byGroup.values()].map(async (all) => {
      for (let from = 0; from < all.length; from += 1000) {
        const pipeline = client.pipeline();
        for (const args of all.slice(from, from + 1000))
          pipeline.evalsha(UPSERT.sha, UPSERT.keys, ...args);
        await pipeline.exec();
      }
    }),
  );
  return size / ((performance.now() - started) / 1000);
}

/** The store's upsert arguments for workspace `i` of a fresh prefix, as it would send them. */
function argsFor(prefix: string, shards: number, tags: string[], timestamps: boolean) {
  return (i: number): string[] => {
    const id = `ws-${i}`;
    const shard = shardOf(id, shards);
    const tag = `{${tags[shard]}}`;
    return [
      `${prefix}${tag}${id}`,
      `${prefix.slice(0, -1)}-removed:${tag}${id}`,
      `${prefix}${tag}`,
      id,
      'event:changed',
      timestamps ? String(Date.now() + i / 1000) : '',
      String(Date.now()),
      `${prefix}changes`,
      String(shard),
      '625',
      'limit',
      'status',
      '"READY"',
      'n',
      String(i),
    ];
  };
}

const tags = shardTags(16);
const rows: string[] = [];
const row = (target: string, size: number, what: string, rate: number, ratio: string) =>
  rows.push(`| ${target} | ${size} | ${what} | ${Math.round(rate)} | ${ratio} |`);

const { port, server } = await startLocalRedis();
try {
  const client = await connect(port);
  for (const size of SIZES) {
    for (const timestamps of [false, true]) {
      const best = { pkg: 0, lim: 0 };
      // Best of three each, alternating, so both see the same machine.
      for (let round = 0; round < 3; round++) {
        best.lim = Math.max(
          best.lim,
          await limit(client, size, () => 0, argsFor(`lim${++run}:`, 16, tags, timestamps)),
        );
        best.pkg = Math.max(best.pkg, await viaPackage(client, size, timestamps));
      }
      const label = timestamps ? 'event-coalescer, timestamps' : 'event-coalescer';
      row('one Redis', size, 'limit: the same script, pipelined', best.lim, '1.00');
      row('one Redis', size, label, best.pkg, (best.pkg / best.lim).toFixed(2));
      if (!timestamps && size === SIZES[0]) {
        let single = 0;
        for (let round = 0; round < 3; round++) {
          single = Math.max(single, await viaPackage(client, size, false, false));
        }
        const ratio = (single / best.lim).toFixed(2);
        row(
          'one Redis',
          size,
          'event-coalescer, a call per workspace (no upsertMany)',
          single,
          ratio,
        );
      }
    }
  }
  client.disconnect();
} finally {
  server.kill('SIGKILL');
}

const cluster = await startRedisCluster();
try {
  const client = await cluster.client({ enableOfflineQueue: true });
  const size = SIZES[0] as number;
  const best = { pkg: 0, lim: 0 };
  for (let round = 0; round < 3; round++) {
    best.lim = Math.max(
      best.lim,
      await limit(
        client,
        size,
        // Per node, as the slot map says: the best a plain client can pipeline.
        (i) => {
          const slot = slotOf(tags[shardOf(`ws-${i}`, 16)] as string);
          return client.slots[slot]?.[0] ?? '';
        },
        argsFor(`lim${++run}:`, 16, tags, false),
      ),
    );
    best.pkg = Math.max(best.pkg, await viaPackage(client, size, false));
  }
  row('cluster', size, 'limit: the same script, pipelined per node', best.lim, '1.00');
  row('cluster', size, 'event-coalescer', best.pkg, (best.pkg / best.lim).toFixed(2));
} finally {
  await cluster.stop();
}

console.log(
  `\n${values.quick ? 'QUICK — ' : ''}a flush wave of fresh workspaces (2 fields each), best of 3, loopback\n`,
);
console.log('| Redis | workspaces | path | writes/s | of the limit |');
console.log('|---|---:|---|---:|---:|');
for (const line of rows) console.log(line);
