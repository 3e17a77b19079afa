/**
 * The terminal demo: a simulated host whose five domain emitters produce realistic bursts for
 * N workspaces, wired through configureEventCollector + workspaceSnapshotSources + the memory
 * store (or Redis, with --redis URL, or PostgreSQL, with --postgres URL). Prints one line per store change and a summary on exit.
 */
import { EventEmitter } from 'node:events';
import type { SnapshotStore } from 'event-coalescer';
import {
  configureEventCollector,
  stopEventCollector,
  type WorkspaceSnapshotFields,
  workspaceSnapshotSources,
} from 'event-coalescer/collector';
import { createMemorySnapshotStore } from 'event-coalescer/memory';
import { createRedisSnapshotStore } from 'event-coalescer/redis';

import {
  clusterNodes,
  durationS,
  fail,
  flags,
  postgresUrl,
  quiet,
  rate,
  redisUrl,
  windowMs,
  workspaceCount,
} from './demo-options.js';
import { openPostgresStore } from './postgres-demo-store.js';
import { simulate } from './web/simulation.js';

// --- the host's domains: they emit, and know nothing of the snapshot ----------------------
const domains = {
  workspaceStateMachine: new EventEmitter(),
  prSnapshotService: new EventEmitter(),
  ratchetService: new EventEmitter(),
  runScriptStateMachine: new EventEmitter(),
  workspaceActivityService: new EventEmitter(),
};

// --- the snapshot and the collector ---------------------------------------------------------
/** ioredis, an optional peer: loaded only when the demo is asked to use Redis. */
async function loadIoredis() {
  try {
    const { Cluster, Redis } = await import('ioredis');
    return { Cluster, Redis };
  } catch {
    return fail('--redis and --redis-cluster need ioredis: npm install ioredis');
  }
}
const redis =
  clusterNodes === undefined && redisUrl === undefined
    ? undefined
    : await loadIoredis().then(({ Cluster, Redis }) =>
        clusterNodes !== undefined
          ? new Cluster(clusterNodes, { redisOptions: { maxRetriesPerRequest: 1 } })
          : new Redis(redisUrl as string, { maxRetriesPerRequest: 1 }),
      );
const postgres = postgresUrl === undefined ? undefined : await openPostgresStore(postgresUrl);
const store =
  postgres?.store ??
  (redis === undefined
    ? createMemorySnapshotStore<WorkspaceSnapshotFields>()
    : createRedisSnapshotStore<WorkspaceSnapshotFields>(redis, { prefix: 'demo:' }));
// The Redis store fails fast while its client is not connected: connect first.
if (redis !== undefined && redis.status !== 'ready') {
  await new Promise((resolve) => redis.once('ready', resolve));
}
// A fresh run starts from an empty snapshot.
for (const entry of await store.getAll()) await store.remove(entry.workspaceId);
/** Events emitted per workspace since its last write, and when the first of them came. */
const unwritten = new Map<string, { events: number; firstAt: number }>();
const latencies: number[] = [];
let eventsIn = 0;
let writesOut = 0;
let removals = 0;
let stopping = false;
let flushedAtShutdown = 0;

const format = (fields: object): string =>
  Object.entries(fields)
    .map(([key, value]) => `${key}=${JSON.stringify(value)}`)
    .join(' ');

/** What the collector writes goes through here first, to measure and print it. */
const observedStore: SnapshotStore<WorkspaceSnapshotFields> = {
  upsert(workspaceId, fields, source) {
    const pending = unwritten.get(workspaceId);
    unwritten.delete(workspaceId);
    const latencyMs = pending === undefined ? 0 : Date.now() - pending.firstAt;
    writesOut++;
    if (stopping) flushedAtShutdown++;
    latencies.push(latencyMs);
    if (!quiet) {
      console.log(
        `${workspaceId}  ${format(fields)}  ← ${source}  (${pending?.events ?? 0} events, ${latencyMs} ms)`,
      );
    }
    return store.upsert(workspaceId, fields, source);
  },
  getByWorkspaceId: (workspaceId) => store.getByWorkspaceId(workspaceId),
  remove(workspaceId) {
    unwritten.delete(workspaceId);
    removals++;
    if (!quiet) console.log(`${workspaceId}  removed (archived)`);
    return store.remove(workspaceId);
  },
};

configureEventCollector({
  store: observedStore,
  sources: workspaceSnapshotSources(domains),
  windowMs,
  logger: console,
});

// --- the simulation: bursts of related events, a few milliseconds apart ----------------------
const simulation = simulate(domains, {
  workspaces: workspaceCount,
  rate,
  // The host's reconciliation seeds a workspace; the collector then keeps it current.
  seed: (workspaceId) =>
    void store.upsert(
      workspaceId,
      { projectId: 'demo', status: 'NEW', isWorking: false },
      'reconcile',
    ),
  onEvent(workspaceId) {
    eventsIn++;
    const entry = unwritten.get(workspaceId);
    if (entry === undefined) unwritten.set(workspaceId, { events: 1, firstAt: Date.now() });
    else entry.events++;
  },
});

// --- shutdown: the host's stop hook ----------------------------------------------------------
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

async function shutdown(reason: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  simulation.stop();
  if (durationTimer !== undefined) clearTimeout(durationTimer);
  await stopEventCollector();
  const sorted = [...latencies].sort((a, b) => a - b);
  const where =
    postgresUrl !== undefined
      ? ' in PostgreSQL'
      : redis === undefined
        ? ''
        : ` in Redis (${redisUrl ?? `cluster ${flags['redis-cluster']}`})`;
  const ratio = writesOut === 0 ? 0 : eventsIn / (writesOut + removals);
  console.log(
    [
      '',
      `stopped (${reason}); flushed ${flushedAtShutdown} pending write(s) at shutdown`,
      `events in:        ${eventsIn}`,
      `writes out:       ${writesOut} (+ ${removals} removals)`,
      `coalescing ratio: ${ratio.toFixed(2)} events per write`,
      `latency (ms):     p50 ${percentile(sorted, 50)}  p99 ${percentile(sorted, 99)}  max ${sorted.at(-1) ?? 0}`,
      `snapshot:         ${(await store.getAll()).length} workspaces${where}`,
    ].join('\n'),
  );
  redis?.disconnect();
  await postgres?.close();
}

process.once('SIGINT', () => void shutdown('SIGINT'));
process.once('SIGTERM', () => void shutdown('SIGTERM'));
const durationTimer =
  durationS > 0
    ? setTimeout(() => void shutdown(`after ${durationS} s`), durationS * 1000)
    : undefined;
if (!quiet) {
  console.log(
    `simulating ${workspaceCount} workspaces at ~${rate} events/s, window ${windowMs} ms` +
      (durationS > 0 ? ` for ${durationS} s` : ' until Ctrl-C'),
  );
}
