/**
 * npm run soak [-- --quick]
 *
 * Real timers, the full path (EventEmitter → collector → coalescer → memory store):
 * 1,000,000 events over 10,000 workspaces in bursts (--quick: 100,000 over 1,000).
 * Prints its figures, and exits 1 when a bound is broken: heap back within 10% of its
 * baseline once drained, no live timer after stop, maxPending respected at every moment.
 */
import { EventEmitter } from 'node:events';
import { parseArgs } from 'node:util';
import type { SnapshotStore } from 'event-coalescer';
import { createEventCollector } from 'event-coalescer/collector';
import { createMemorySnapshotStore } from 'event-coalescer/memory';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
const quick = values.quick === true;
const EVENTS = quick ? 100_000 : 1_000_000;
const WORKSPACES = quick ? 1_000 : 10_000;
/** Below the workspaces pending at steady state, so that the bound is exercised. */
const MAX_PENDING = Math.floor(WORKSPACES / 10);
const WINDOW_MS = 50;
const MAX_WAIT_MS = 200;
/** Events per millisecond: 1,000,000 events take about ten seconds. */
const RATE_PER_MS = 100;

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  console.error('soak: run with node --expose-gc (npm run soak does)');
  process.exit(2);
}
const heapAfterGc = (): number => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};
const liveTimers = (): number =>
  process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

// The store holds every workspace before and after, so the baseline includes it.
// The feed's ring of recent changes is bounded by feedLength, not the coalescer's to measure.
const memory = createMemorySnapshotStore({ feedLength: 0 });
const ids = Array.from({ length: WORKSPACES }, (_, i) => `ws-${i}`);
for (const id of ids) memory.upsert(id, { projectId: 'soak', n: 0, status: 'NEW' }, 'seed');
const firstEventAt = new Float64Array(WORKSPACES);
const latencies = new Float64Array(EVENTS);
let writes = 0;
const store: SnapshotStore = {
  upsert(id, fields, source) {
    const index = Number(id.slice(3));
    latencies[writes++] = performance.now() - (firstEventAt[index] as number);
    firstEventAt[index] = 0;
    memory.upsert(id, fields, source);
  },
  getByWorkspaceId: memory.getByWorkspaceId,
  remove: memory.remove,
};
const domain = new EventEmitter();
const timersBefore = liveTimers();
const heapBefore = heapAfterGc();

const collector = createEventCollector({
  store,
  windowMs: WINDOW_MS,
  maxWaitMs: MAX_WAIT_MS,
  maxPending: MAX_PENDING,
  sources: [
    {
      emitter: domain,
      event: 'changed',
      map: (index: number, n: number) => ({
        workspaceId: ids[index] as string,
        fields: { n, status: n % 2 ? 'RUNNING' : 'READY' },
      }),
    },
  ],
});

let emitted = 0;
let maxPendingSeen = 0;
const started = performance.now();
await new Promise<void>((done) => {
  const tick = (): void => {
    const due = Math.min(EVENTS, (performance.now() - started) * RATE_PER_MS);
    while (emitted < due) {
      // A burst: one workspace, a few events back to back.
      const index = Math.floor(Math.random() * WORKSPACES);
      const burst = 1 + Math.floor(Math.random() * 5);
      if (firstEventAt[index] === 0) firstEventAt[index] = performance.now();
      for (let b = 0; b < burst && emitted < EVENTS; b++) {
        domain.emit('changed', index, emitted++);
        const pending = collector.coalescer.pendingCount;
        if (pending > maxPendingSeen) maxPendingSeen = pending;
      }
    }
    if (emitted < EVENTS) setTimeout(tick, 1);
    else done();
  };
  tick();
});
const emitMs = performance.now() - started;
await new Promise((resolve) => setTimeout(resolve, MAX_WAIT_MS + 50));
await collector.stop();
const stats = collector.coalescer.stats();
const timersAfter = liveTimers() - timersBefore;
const heapAfter = heapAfterGc();

const sorted = latencies.subarray(0, writes).sort();
const at = (p: number): number =>
  sorted[Math.min(writes - 1, Math.ceil((p / 100) * writes) - 1)] ?? 0;
const heapChange = (heapAfter - heapBefore) / heapBefore;
const bounds = [
  { what: 'heap back within 10% of its baseline', ok: heapChange <= 0.1 },
  { what: 'no live timer after stop', ok: timersAfter <= 0 },
  {
    what: `maxPending (${MAX_PENDING}) respected at every moment`,
    ok: maxPendingSeen <= MAX_PENDING,
  },
  {
    what: 'every event accepted and every write landed',
    ok: stats.enqueued === EVENTS && stats.flushed === writes && stats.failed === 0,
  },
];

console.log(
  `soak${quick ? ' (quick)' : ''}: ${EVENTS} events over ${WORKSPACES} workspaces at ${RATE_PER_MS * 1000}/s, window ${WINDOW_MS} ms, maxWait ${MAX_WAIT_MS} ms, maxPending ${MAX_PENDING}`,
);
console.log(`events:           ${EVENTS} in ${emitMs.toFixed(0)} ms`);
console.log(`writes:           ${writes}`);
console.log(`coalescing ratio: ${(EVENTS / writes).toFixed(2)} events per write`);
console.log(
  `flush latency:    p50 ${at(50).toFixed(1)} ms  p99 ${at(99).toFixed(1)} ms  max ${(sorted[writes - 1] ?? 0).toFixed(1)} ms`,
);
console.log(
  `heap:             ${(heapBefore / 1e6).toFixed(1)} MB before, ${(heapAfter / 1e6).toFixed(1)} MB after (${(heapChange * 100).toFixed(1)}%)`,
);
console.log(`live timers:      ${timersAfter} after stop`);
console.log(`max pending seen: ${maxPendingSeen}`);
for (const bound of bounds) console.log(`${bound.ok ? 'ok  ' : 'FAIL'} ${bound.what}`);
if (bounds.some((bound) => !bound.ok)) process.exitCode = 1;
