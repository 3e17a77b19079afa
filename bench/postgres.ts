/**
 * npm run bench:postgres [-- --quick]
 *
 * The PostgreSQL store on a private cluster started here (initdb on a free loopback port):
 * - statements per write, counted at the pool, in a flush wave and under the demo's load;
 * - a flush wave: N fresh workspaces (2 fields each) enqueued, then `flushAll()`, as writes per
 *   second against the same machine's limit in the same run: the store's own upsert function,
 *   in batches of the same size, sent by a plain `pg` pool with as many in flight as it allows;
 * - write latency under the demo's load (20 workspaces, 200 events/s, window 150 ms): each store
 *   call's round trip, and each write's wait from its first event until it landed.
 */
import { parseArgs } from 'node:util';
import { EventCoalescer, type SnapshotStore } from 'event-coalescer';
import { createPostgresSnapshotStore } from 'event-coalescer/postgres';
import type pg from 'pg';
import { startPostgresServer } from '../test/support/postgres-server.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const WAVE = values.quick ? 5_000 : 50_000;
const LOAD_SECONDS = values.quick ? 1 : 10;
const POOL_SIZE = 10;
const BATCH = 100;

let tables = 0;

/** A store on fresh tables, and a count of the statements it sends. */
async function freshStore(pool: pg.Pool) {
  const counter = { statements: 0 };
  const counting = {
    query: (text: string, values?: unknown[]) => {
      counter.statements++;
      return pool.query(text, values);
    },
    connect: () => pool.connect(),
  };
  const table = `bench${++tables}`;
  const store = createPostgresSnapshotStore(counting, { table });
  await store.migrate();
  counter.statements = 0;
  return { store, counter, table };
}

/** The package: N fresh workspaces enqueued, then flushAll. Writes per second, statements. */
async function viaPackage(pool: pg.Pool, size: number, timestamps: boolean) {
  const { store, counter } = await freshStore(pool);
  const coalescer = new EventCoalescer(store, {
    canCreate: () => true,
    timestamps,
    windowMs: 60_000,
    maxWaitMs: Infinity,
    maxPending: size + 1,
    batchSize: BATCH,
    maxConcurrentWrites: POOL_SIZE,
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
  return { rate: size / seconds, statementsPerWrite: counter.statements / size };
}

/** The limit: the store's upsert function, batches of BATCH, POOL_SIZE in flight. */
async function limit(pool: pg.Pool, size: number, timestamps: boolean) {
  const { table } = await freshStore(pool);
  const batches: unknown[][] = [];
  for (let from = 0; from < size; from += BATCH) {
    const ids: string[] = [];
    const patches: string[] = [];
    const stamps: (number | null)[] = [];
    for (let i = from; i < Math.min(size, from + BATCH); i++) {
      ids.push(`ws-${i}`);
      patches.push(JSON.stringify({ status: 'READY', n: i }));
      stamps.push(timestamps ? Date.now() + i / 1000 : null);
    }
    const sources = ids.map(() => 'event:changed');
    const ats = stamps.map((stamp) => stamp ?? Date.now());
    batches.push([ids, patches, sources, stamps, ats, 10_000]);
  }
  const sql = `SELECT "public"."${table}_upsert"($1, $2, $3, $4, $5, $6)`;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: POOL_SIZE }, async () => {
      while (next < batches.length) await pool.query(sql, batches[next++]);
    }),
  );
  return size / ((performance.now() - started) / 1000);
}

const percentile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;

/** The demo's load for LOAD_SECONDS: store call round trips and first-event-to-landed waits. */
async function underLoad(pool: pg.Pool) {
  const { store, counter } = await freshStore(pool);
  const calls: number[] = [];
  const waits: number[] = [];
  const firstEvent = new Map<string, number>();
  let writes = 0;
  const timed = async <T>(call: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await call();
    } finally {
      calls.push(performance.now() - started);
    }
  };
  const landed = (workspaceId: string): void => {
    writes++;
    const first = firstEvent.get(workspaceId);
    firstEvent.delete(workspaceId);
    if (first !== undefined) waits.push(performance.now() - first);
  };
  const observed: SnapshotStore = {
    upsert: (workspaceId, fields, source, timestamp, call) =>
      timed(() => store.upsert(workspaceId, fields, source, timestamp, call)).then(() =>
        landed(workspaceId),
      ),
    upsertMany: (items) =>
      timed(() => store.upsertMany(items)).then((outcomes) => {
        for (const item of items) landed(item.workspaceId);
        return outcomes;
      }),
    getByWorkspaceId: (workspaceId, call) => store.getByWorkspaceId(workspaceId, call),
    remove: (workspaceId, timestamp, call) =>
      timed(() => store.remove(workspaceId, timestamp, call)),
  };
  const coalescer = new EventCoalescer(observed, { windowMs: 150, canCreate: () => true });
  const events = 200 * LOAD_SECONDS;
  for (let i = 0; i < events; i++) {
    const workspaceId = `ws-${Math.floor(Math.random() * 20)}`;
    if (!firstEvent.has(workspaceId)) firstEvent.set(workspaceId, performance.now());
    coalescer.enqueue(workspaceId, { status: `s${i % 4}`, n: i }, 'event:changed');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await coalescer.close();
  calls.sort((a, b) => a - b);
  waits.sort((a, b) => a - b);
  return { events, writes, statements: counter.statements, calls, waits };
}

const server = await startPostgresServer();
try {
  const pool = server.pool({ max: POOL_SIZE });
  const rows: string[] = [];
  let statementsPerWrite = 0;
  for (const timestamps of [false, true]) {
    const best = { pkg: 0, lim: 0 };
    // Best of three each, alternating, so both see the same machine.
    for (let round = 0; round < 3; round++) {
      best.lim = Math.max(best.lim, await limit(pool, WAVE, timestamps));
      const measured = await viaPackage(pool, WAVE, timestamps);
      best.pkg = Math.max(best.pkg, measured.rate);
      statementsPerWrite = measured.statementsPerWrite;
    }
    const label = timestamps ? 'event-coalescer, timestamps' : 'event-coalescer';
    rows.push(
      `| ${WAVE} | limit: the same function, batches of ${BATCH}, ${POOL_SIZE} in flight | ${Math.round(best.lim)} | 1.00 |`,
    );
    rows.push(
      `| ${WAVE} | ${label} | ${Math.round(best.pkg)} | ${(best.pkg / best.lim).toFixed(2)} |`,
    );
  }
  console.log(
    `PostgreSQL flush wave — Node ${process.version}, pool of ${POOL_SIZE}, batchSize ${BATCH}\n`,
  );
  console.log('| workspaces | writer | writes/s | ratio to limit |\n|---:|---|---:|---:|');
  for (const row of rows) console.log(row);
  console.log(`\nstatements per workspace write in the wave: ${statementsPerWrite.toFixed(3)}`);

  const load = await underLoad(pool);
  const ms = (value: number) => value.toFixed(1);
  console.log(
    [
      `\nunder the demo's load (20 workspaces, 200 events/s, window 150 ms, ${LOAD_SECONDS} s):`,
      `  ${load.events} events, ${load.writes} writes, ${(load.statements / load.writes).toFixed(2)} statements per write`,
      `  store call round trip: p50 ${ms(percentile(load.calls, 50))} ms, p99 ${ms(percentile(load.calls, 99))} ms`,
      `  first event to landed: p50 ${ms(percentile(load.waits, 50))} ms, p99 ${ms(percentile(load.waits, 99))} ms`,
    ].join('\n'),
  );
} finally {
  await server.stop();
}
