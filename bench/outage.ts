/**
 * npm run bench:outage [-- --quick] [--workspaces N] [--seconds S]
 *
 * 10,000 workspaces wait through a 60 s store outage (real timers, the package's defaults),
 * events still arriving every 10 s (a quarter of the outage when shorter). Prints the CPU used while waiting (% of one core), heap
 * per waiting workspace, store calls per second while the store is away, and the time from
 * the store's return to the last write landed. Baselines from the same process: the same
 * workspaces merely pending (heap), and the same span idle (CPU).
 * --quick: 1,000 workspaces through 5 s, as a smoke run.
 */
import { parseArgs } from 'node:util';
import { EventCoalescer, type SnapshotStore } from 'event-coalescer';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    workspaces: { type: 'string' },
    seconds: { type: 'string' },
  },
});
const quick = values.quick === true;
const workspaces = Number(values.workspaces ?? (quick ? 1_000 : 10_000));
const outageMs = 1000 * Number(values.seconds ?? (quick ? 5 : 60));
const eventsEveryMs = Math.min(10_000, outageMs / 4);

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  console.error('bench:outage: run with node --expose-gc (npm run bench:outage does)');
  process.exit(2);
}
const heapAfterGc = (): number => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ids = Array.from({ length: workspaces }, (_, i) => `ws-${i}`);
const patch = (round: number) => ({ status: `S${round}`, isWorking: round % 2 === 0 });

/** A store answering on the next turn of the event loop; while away, it refuses at once. */
function flakyStore() {
  let away = false;
  let calls = 0;
  let callsWhileAway = 0;
  let lastLandedAt = 0;
  const landed = new Map<string, unknown>();
  const store: SnapshotStore = {
    upsert(workspaceId, fields) {
      calls++;
      if (away) {
        callsWhileAway++;
        return Promise.reject(new Error('ECONNREFUSED'));
      }
      return new Promise<void>((resolve) =>
        setImmediate(() => {
          landed.set(workspaceId, fields);
          lastLandedAt = performance.now();
          resolve();
        }),
      );
    },
    getByWorkspaceId: () => ({}),
    remove: () => {},
  };
  return {
    store,
    landed,
    setAway(value: boolean) {
      away = value;
    },
    get calls() {
      return calls;
    },
    get callsWhileAway() {
      return callsWhileAway;
    },
    get lastLandedAt() {
      return lastLandedAt;
    },
  };
}

/** CPU time (user + system, ms) over `ms` of waiting while `during` runs alongside. */
async function cpuOver(ms: number, during?: () => Promise<void>): Promise<number> {
  const start = process.cpuUsage();
  await Promise.all([sleep(ms), during?.()]);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

// Baseline 1: the same workspaces merely pending (a window longer than the run).
const before = heapAfterGc();
const idle = new EventCoalescer(flakyStore().store, { windowMs: 3_600_000, maxWaitMs: Infinity });
for (const id of ids) idle.enqueue(id, patch(0), 'event:change');
const pendingBytes = (heapAfterGc() - before) / workspaces;
idle.flushAll();
await idle.close();

// Baseline 2: the process idle for as long as the outage lasts.
const idleCpuMs = await cpuOver(outageMs);

// The outage.
const flaky = flakyStore();
const coalescer = new EventCoalescer(flaky.store, { canCreate: () => true, windowMs: 150 });
const heapBefore = heapAfterGc();
flaky.setAway(true);
for (const id of ids) coalescer.enqueue(id, patch(0), 'event:change');
let round = 0;
const events = async (): Promise<void> => {
  // Events keep coming during the outage: they merge into the waiting patches.
  for (let at = eventsEveryMs; at < outageMs - eventsEveryMs / 2; at += eventsEveryMs) {
    await sleep(eventsEveryMs);
    round++;
    for (const id of ids) coalescer.enqueue(id, patch(round), 'event:change');
  }
};
// The first 2 s take the first wave and the back-off's first steps; measured from there on.
await sleep(Math.min(2000, outageMs / 4));
const awayCallsAtStart = flaky.callsWhileAway;
const measuredMs = outageMs - Math.min(2000, outageMs / 4);
const waitingCpuMs = await cpuOver(measuredMs, events);
const awayCalls = flaky.callsWhileAway - awayCallsAtStart;
const stats = coalescer.stats();
const waitingBytes = (heapAfterGc() - heapBefore) / workspaces;
flaky.setAway(false);
const backAt = performance.now();
while (flaky.landed.size < workspaces) await sleep(5);
const drainMs = flaky.lastLandedAt - backAt;
await coalescer.close();
const last = coalescer.stats();

const pct = (cpuMs: number, ms: number) => `${((100 * cpuMs) / ms).toFixed(2)} %`;
const rows: Array<[string, string]> = [
  [
    'workspaces waiting',
    `${workspaces} (backlog ${stats.backlog}, store available: ${stats.storeAvailable})`,
  ],
  ['outage', `${outageMs / 1000} s, events every ${eventsEveryMs / 1000} s (${round} rounds)`],
  [
    'CPU while waiting',
    `${pct(waitingCpuMs, measuredMs)} of one core (idle process: ${pct(idleCpuMs, outageMs)})`,
  ],
  [
    'heap per waiting workspace',
    `${Math.round(waitingBytes)} B (pending, no outage: ${Math.round(pendingBytes)} B; ratio ${(waitingBytes / pendingBytes).toFixed(2)}×)`,
  ],
  [
    'store calls while away',
    `${(awayCalls / (measuredMs / 1000)).toFixed(2)} /s (${awayCalls} in ${measuredMs / 1000} s)`,
  ],
  ['return → last write landed', `${Math.round(drainMs)} ms for ${workspaces} writes`],
  ['given up', `${last.failed}`],
];
const width = Math.max(...rows.map(([name]) => name.length));
console.log(`outage benchmark (${quick ? 'quick' : 'full'}), Node ${process.version}`);
for (const [name, value] of rows) console.log(`  ${name.padEnd(width)}  ${value}`);
if (last.failed !== 0 || flaky.landed.size !== workspaces) {
  console.error('bench:outage: writes were lost');
  process.exit(1);
}
