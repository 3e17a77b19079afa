/**
 * npm run bench:redis [-- --quick]
 *
 * Events in, Redis commands out: the same bursts written straight through (one store call
 * per event) and through the coalescer, against a private redis-server this script starts
 * on a free loopback port. The reduction in round trips is the number that matters.
 */
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createServer } from 'node:net';
import { parseArgs } from 'node:util';
import type { SnapshotStore } from 'event-coalescer';
import { createEventCollector } from 'event-coalescer/collector';
import { createRedisSnapshotStore } from 'event-coalescer/redis';
import { Redis } from 'ioredis';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const WORKSPACES = values.quick ? 100 : 1_000;
const BURSTS_PER_WORKSPACE = 4;
const BURST = 5;
const GAP_MS = 2;
const WINDOW_MS = 20;

const port = await new Promise<number>((resolve) => {
  const probe = createServer().listen(0, '127.0.0.1', () => {
    const address = probe.address();
    probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
  });
});
const server = spawn(
  'redis-server',
  ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
  {
    stdio: 'ignore',
  },
);
/** Connects once the server listens: a fresh client per attempt, so no attempt leaks. */
async function connect(): Promise<Redis> {
  for (let attempt = 0; ; attempt++) {
    const candidate = new Redis({
      port,
      host: '127.0.0.1',
      lazyConnect: true,
      retryStrategy: () => null,
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
const client = await connect();
/** Commands Redis executed (those inside scripts included) and round trips (script calls). */
async function counters(): Promise<{ commands: number; roundTrips: number }> {
  const stats = await client.info('commandstats');
  let commands = 0;
  let roundTrips = 0;
  for (const [, name, calls] of stats.matchAll(/cmdstat_(\w+):calls=(\d+)/g)) {
    if (name === 'info') continue;
    commands += Number(calls);
    if (name === 'evalsha' || name === 'eval') roundTrips += Number(calls);
  }
  return { commands, roundTrips };
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

async function measure(name: string, run: (store: SnapshotStore) => Promise<number>) {
  const store = createRedisSnapshotStore(client, { prefix: `${name}:` });
  const before = await counters();
  const started = performance.now();
  const events = await run(store);
  const elapsedMs = performance.now() - started;
  const after = await counters();
  return {
    name,
    events,
    roundTrips: after.roundTrips - before.roundTrips,
    commands: after.commands - before.commands,
    elapsedMs,
  };
}

const straight = await measure('straight-through', async (store) => {
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
});
const coalesced = await measure('event-coalescer', async (store) => {
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
});

console.log(
  `\n${values.quick ? 'QUICK — ' : ''}${WORKSPACES} workspaces × ${BURSTS_PER_WORKSPACE} bursts of ${BURST} events ${GAP_MS} ms apart, window ${WINDOW_MS} ms, Redis ${(await client.info('server')).match(/redis_version:(\S+)/)?.[1]}\n`,
);
console.log(
  '| path | events in | round trips (scripts) | round trips per event | Redis commands (inside scripts too) | wall ms |',
);
console.log('|---|---:|---:|---:|---:|---:|');
for (const row of [straight, coalesced]) {
  console.log(
    `| ${row.name} | ${row.events} | ${row.roundTrips} | ${(row.roundTrips / row.events).toFixed(3)} | ${row.commands} | ${row.elapsedMs.toFixed(0)} |`,
  );
}
console.log(
  `\n${(straight.roundTrips / coalesced.roundTrips).toFixed(1)}× fewer round trips, ${(straight.commands / coalesced.commands).toFixed(1)}× fewer Redis commands`,
);
client.disconnect();
server.kill('SIGKILL');
