/**
 * npm run bench [-- --quick] [--rounds N] [--only A,B,C] [--impls floor,naive,...] [--baseline REF,...] [--warm-heap]
 *
 * Measures every implementation in one process, several rounds in alternating order, and
 * prints medians (min–max) with ratios against the floor measured in the same process.
 * Full sizes exit non-zero when a target is missed; --quick is a smoke run that checks none.
 */
import { cpus } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { loadBaseline } from './baseline.js';
import {
  implementations as allImplementations,
  type Coalescing,
  eventCoalescerWith,
  type Implementation,
  type Patch,
} from './implementations.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    // No full collection before A and B: the heap as a running service has it, not just
    // collected (V8 then starts marking soon, which every store into an old object pays for).
    // B's bytes per key are not measured then.
    'warm-heap': { type: 'boolean', default: false },
    rounds: { type: 'string' },
    only: { type: 'string' },
    impls: { type: 'string' },
    baseline: { type: 'string' },
  },
});
const quick = values.quick === true;
const rounds = Number(values.rounds ?? (quick ? 2 : 5));
const only = new Set((values.only ?? 'A,B,C').split(','));
const chosen = values.impls === undefined ? undefined : new Set(values.impls.split(','));
const implementations = allImplementations.filter(
  (impl) => chosen === undefined || chosen.has(impl.name),
);
// The package as built from other commits (--baseline b603d8c,HEAD), measured beside today's
// in the same process.
for (const ref of values.baseline?.split(',') ?? []) {
  const baseline = await loadBaseline(ref);
  const { EventCoalescer } = baseline.module as { EventCoalescer: never };
  implementations.push(eventCoalescerWith(baseline.name, false, EventCoalescer));
}
const sizes = quick
  ? { hotEnqueues: 100_000, keys: 10_000, perKey: 10, churnKeys: 1_000 }
  : { hotEnqueues: 1_000_000, keys: 100_000, perKey: 10, churnKeys: 10_000 };

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  console.error('bench: run with node --expose-gc (npm run bench does)');
  process.exit(2);
}
const warmHeap = values['warm-heap'] === true;
const fullGc = (): void => {
  gc();
  gc();
};

// Patches and sources are made up front, so that no design pays for allocating them.
const PATCHES: Patch[] = Array.from({ length: 16 }, (_, i) => ({
  status: ['READY', 'RUNNING', 'IDLE', 'FAILED'][i % 4],
  isWorking: i % 2 === 0,
  prNumber: i % 3 === 0 ? null : 100 + i,
  ratchetState: i % 5 === 0 ? undefined : 'CHECKING',
}));
const SOURCES = [
  'event:workspace_state_changed',
  'event:workspace_active',
  'event:pr_snapshot_updated',
];
const noWrite = (): void => {};

const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};
const percentile = (sorted: number[], p: number): number =>
  sorted.length === 0
    ? 0
    : (sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number);
const liveTimeouts = (): number =>
  process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
const now = (): number => Number(process.hrtime.bigint()) / 1e6;

/**
 * Waits until the timers a previous run left behind have fired (lodash's `flush()` leaves its
 * timer running until the window ends), so that what they hold is not counted in the next run's
 * heap baseline.
 */
async function settle(timersAtStart: number): Promise<void> {
  const deadline = now() + 15_000;
  while (liveTimeouts() > timersAtStart && now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 100));
  fullGc();
}

/**
 * Every instance stays alive once drained, as a service keeps its coalescer for its life. An
 * instance let go dies in the next full collection, and with it the engine's hidden classes of
 * its objects; the next run's instances then get new ones, and the optimised code of every
 * class-based design is thrown away and rebuilt during that run (object literals, like the
 * floor's entries, keep theirs). Without this, the run after each collection measures that.
 */
const kept: Coalescing[] = [];
async function dispose(instance: Coalescing): Promise<void> {
  await instance.flushAll();
  kept.push(instance);
}

// --- A: one hot key ------------------------------------------------------------------------
async function hotKey(impl: Implementation): Promise<number> {
  const instance = impl.create(10_000, noWrite);
  const n = sizes.hotEnqueues;
  const started = now();
  for (let i = 0; i < n; i++)
    instance.enqueue('ws-hot', PATCHES[i & 15] as Patch, SOURCES[i % 3] as string);
  const elapsedMs = now() - started;
  await dispose(instance);
  return (elapsedMs * 1e6) / n;
}

// --- B: many keys, round-robin ---------------------------------------------------------------
const KEYS = Array.from({ length: 100_000 }, (_, i) => `ws-${i}`);
interface ManyKeys {
  nsPerEnqueue: number;
  bytesPerKey: number;
  flushAllMs: number;
  timersPerKey: number;
}
async function manyKeys(impl: Implementation): Promise<ManyKeys> {
  const keys = sizes.keys;
  const timersBefore = liveTimeouts();
  if (!warmHeap) fullGc();
  const heapBefore = process.memoryUsage().heapUsed;
  const instance = impl.create(10_000, noWrite);
  const started = now();
  for (let round = 0; round < sizes.perKey; round++) {
    for (let k = 0; k < keys; k++) {
      instance.enqueue(
        KEYS[k] as string,
        PATCHES[(k + round) & 15] as Patch,
        SOURCES[round % 3] as string,
      );
    }
  }
  const elapsedMs = now() - started;
  const timersPerKey = (liveTimeouts() - timersBefore) / keys;
  if (!warmHeap) fullGc();
  const bytesPerKey = (process.memoryUsage().heapUsed - heapBefore) / keys;
  if (instance.pendingCount !== keys)
    throw new Error(`${impl.name}: ${instance.pendingCount} pending, expected ${keys}`);
  const flushStarted = now();
  await dispose(instance);
  const flushAllMs = now() - flushStarted;
  return {
    nsPerEnqueue: (elapsedMs * 1e6) / (keys * sizes.perKey),
    bytesPerKey,
    flushAllMs,
    timersPerKey,
  };
}

// --- C: churn with real timers ------------------------------------------------------------------
interface Churn {
  events: number;
  writes: number;
  idealWrites: number;
  cpuMs: number;
  latencyP50: number;
  latencyP99: number;
  latencyMax: number;
  /** From the first event of a burst to the first write that carries it. */
  firstLatencyP50: number;
  firstLatencyP99: number;
  /** From every event to the write that carries it. */
  eventLatencyP50: number;
  eventLatencyP99: number;
  loopDelayP99: number;
  heapKeptBytes: number;
}
const CHURN_WINDOW_MS = 20;
const BURST = 5;
const BURST_GAP_MS = 2;
const BURSTS_PER_KEY = 4;
const ROUND_MS = 200;

interface ScheduledEvent {
  at: number;
  key: number;
  patch: number;
}
let builtSchedule: ScheduledEvent[] | undefined;
/**
 * Each key bursts once per round, at an offset spread over the round. Built once and kept, so
 * that collecting it never lands in a design's CPU time or heap figures.
 */
function churnSchedule(): ScheduledEvent[] {
  if (builtSchedule !== undefined) return builtSchedule;
  const keys = sizes.churnKeys;
  const built: ScheduledEvent[] = [];
  for (let round = 0; round < BURSTS_PER_KEY; round++) {
    for (let key = 0; key < keys; key++) {
      const start = round * ROUND_MS + (key * (ROUND_MS - 40)) / keys;
      for (let e = 0; e < BURST; e++) built.push({ at: start + e * BURST_GAP_MS, key, patch: e });
    }
  }
  built.sort((a, b) => a.at - b.at);
  builtSchedule = built;
  return built;
}

function churn(impl: Implementation): Promise<Churn> {
  const keys = sizes.churnKeys;
  const schedule = churnSchedule();
  fullGc();
  const heapBefore = process.memoryUsage().heapUsed;
  const lastEventAt = new Float64Array(keys);
  // The times of each key's events not written yet.
  const unwritten: number[][] = Array.from({ length: keys }, () => []);
  const burstStartedAt = new Float64Array(keys);
  const latencies: number[] = [];
  const firstLatencies: number[] = [];
  const eventLatencies: number[] = [];
  let writes = 0;
  const onWrite = (key: string): void => {
    writes++;
    const now = performance.now();
    const index = Number(key.slice(3));
    latencies.push(now - (lastEventAt[index] as number));
    if ((burstStartedAt[index] as number) > 0) {
      firstLatencies.push(now - (burstStartedAt[index] as number));
      burstStartedAt[index] = 0;
    }
    // Every event this write carries waited from its own time.
    const waiting = unwritten[index] as number[];
    for (const eventAt of waiting) eventLatencies.push(now - eventAt);
    waiting.length = 0;
  };
  const instance = impl.create(CHURN_WINDOW_MS, onWrite);
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  const cpuBefore = process.cpuUsage();
  loopDelay.enable();
  const started = performance.now();
  let next = 0;
  return new Promise((resolve) => {
    const tick = (): void => {
      const elapsed = performance.now() - started;
      for (; next < schedule.length && (schedule[next]?.at as number) <= elapsed; next++) {
        const item = schedule[next] as { key: number; patch: number };
        const at = performance.now();
        lastEventAt[item.key] = at;
        if (item.patch === 0) burstStartedAt[item.key] = at;
        (unwritten[item.key] as number[]).push(at);
        instance.enqueue(
          KEYS[item.key] as string,
          PATCHES[item.patch] as Patch,
          SOURCES[item.patch % 3] as string,
        );
      }
      if (next < schedule.length) {
        setTimeout(tick, 1);
        return;
      }
      // Let the last windows close, then measure.
      setTimeout(async () => {
        loopDelay.disable();
        const cpu = process.cpuUsage(cpuBefore);
        await dispose(instance);
        const sorted = latencies.sort((a, b) => a - b);
        const latencyP50 = percentile(sorted, 50);
        const latencyP99 = percentile(sorted, 99);
        const latencyMax = sorted.at(-1) ?? 0;
        const firstSorted = firstLatencies.sort((a, b) => a - b);
        const eventSorted = eventLatencies.sort((a, b) => a - b);
        const firstLatencyP50 = percentile(firstSorted, 50);
        const firstLatencyP99 = percentile(firstSorted, 99);
        const eventLatencyP50 = percentile(eventSorted, 50);
        const eventLatencyP99 = percentile(eventSorted, 99);
        firstLatencies.length = 0;
        eventLatencies.length = 0;
        unwritten.length = 0;
        // What the design still holds once drained; the latencies are let go first.
        latencies.length = 0;
        fullGc();
        const heapKeptBytes = process.memoryUsage().heapUsed - heapBefore;
        resolve({
          events: schedule.length,
          writes,
          idealWrites: keys * BURSTS_PER_KEY,
          cpuMs: (cpu.user + cpu.system) / 1000,
          latencyP50,
          latencyP99,
          latencyMax,
          firstLatencyP50,
          firstLatencyP99,
          eventLatencyP50,
          eventLatencyP99,
          loopDelayP99: loopDelay.percentile(99) / 1e6,
          heapKeptBytes,
        });
      }, CHURN_WINDOW_MS * 5);
    };
    setTimeout(tick, 1);
  });
}

// --- running and reporting ---------------------------------------------------------------------
type Samples = Record<string, number[]>;
const collect = (into: Map<string, Samples>, impl: string, metric: string, value: number): void => {
  const byMetric = into.get(impl) ?? {};
  into.set(impl, byMetric);
  const samples = byMetric[metric] ?? [];
  byMetric[metric] = samples;
  samples.push(value);
};

async function measure(): Promise<Map<string, Samples>> {
  const results = new Map<string, Samples>();
  const timersAtStart = liveTimeouts();
  // One workload at a time, so that one design's garbage or timers never land in another's
  // measurement; a full GC before each run for the same reason.
  for (const workload of ['A', 'B', 'C']) {
    if (!only.has(workload)) continue;
    for (let round = 0; round < rounds; round++) {
      // Alternate the order, so that no design always runs first or last.
      const order = round % 2 === 0 ? implementations : [...implementations].reverse();
      for (const impl of order) {
        // B and C measure the heap: start them from a settled one (not B with --warm-heap).
        if (workload === 'A') {
          if (!warmHeap) fullGc();
        } else if (!warmHeap || workload === 'C') await settle(timersAtStart);
        if (workload === 'A') collect(results, impl.name, 'A ns/enqueue', await hotKey(impl));
        if (workload === 'B') {
          const b = await manyKeys(impl);
          collect(results, impl.name, 'B ns/enqueue', b.nsPerEnqueue);
          if (!warmHeap) collect(results, impl.name, 'B bytes/key', b.bytesPerKey);
          collect(results, impl.name, 'B flushAll ms', b.flushAllMs);
          collect(results, impl.name, 'B timers/key', b.timersPerKey);
        }
        if (workload === 'C') {
          const c = await churn(impl);
          collect(results, impl.name, 'C writes/ideal', c.writes / c.idealWrites);
          collect(results, impl.name, 'C writes/event', c.writes / c.events);
          collect(results, impl.name, 'C cpu ms', c.cpuMs);
          collect(results, impl.name, 'C latency p50 ms', c.latencyP50);
          collect(results, impl.name, 'C latency p99 ms', c.latencyP99);
          collect(results, impl.name, 'C latency max ms', c.latencyMax);
          collect(results, impl.name, 'C first-event latency p50 ms', c.firstLatencyP50);
          collect(results, impl.name, 'C first-event latency p99 ms', c.firstLatencyP99);
          collect(results, impl.name, 'C event latency p50 ms', c.eventLatencyP50);
          collect(results, impl.name, 'C event latency p99 ms', c.eventLatencyP99);
          collect(results, impl.name, 'C loop delay p99 ms', c.loopDelayP99);
          collect(results, impl.name, 'C heap kept KB', c.heapKeptBytes / 1024);
        }
      }
    }
  }
  return results;
}

const fmt = (x: number): string =>
  Math.abs(x) >= 100
    ? x.toFixed(0)
    : Math.abs(x) >= 10
      ? x.toFixed(1)
      : Math.abs(x) >= 0.01
        ? x.toFixed(2)
        : x.toFixed(4);

function table(results: Map<string, Samples>): string {
  const metrics = [...new Set([...results.values()].flatMap((samples) => Object.keys(samples)))];
  const names = implementations.map((impl) => impl.name);
  const ratioMetrics = new Set(['A ns/enqueue', 'B ns/enqueue', 'B bytes/key']);
  const lines = [`| metric | ${names.join(' | ')} |`, `|---|${names.map(() => '---:').join('|')}|`];
  for (const metric of metrics) {
    const floorMedian = median(results.get('floor')?.[metric] ?? [0]);
    const cells = names.map((name) => {
      const xs = results.get(name)?.[metric] ?? [];
      const m = median(xs);
      const range = xs.length > 1 ? ` (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})` : '';
      const ratio =
        ratioMetrics.has(metric) && name !== 'floor' && floorMedian > 0
          ? ` **${(m / floorMedian).toFixed(2)}×**`
          : '';
      return `${fmt(m)}${range}${ratio}`;
    });
    lines.push(`| ${metric} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

/**
 * event-coalescer against each other design, round by round: the designs of one round ran
 * back to back, so a ratio within a round is not swayed by what the machine did in another.
 */
function roundRatios(results: Map<string, Samples>): string {
  const ours = results.get('event-coalescer');
  if (ours === undefined) return '';
  const others = implementations.map((impl) => impl.name).filter((n) => n !== 'event-coalescer');
  const metrics = ['A ns/enqueue', 'B ns/enqueue'].filter((metric) => ours[metric] !== undefined);
  const lines = [
    `| event-coalescer ÷ | ${others.join(' | ')} |`,
    `|---|${others.map(() => '---:').join('|')}|`,
  ];
  for (const metric of metrics) {
    const cells = others.map((name) => {
      const theirs = results.get(name)?.[metric] ?? [];
      const ratios = (ours[metric] ?? []).map((x, round) => x / (theirs[round] ?? Number.NaN));
      return `${fmt(median(ratios))} (${fmt(Math.min(...ratios))}–${fmt(Math.max(...ratios))})`;
    });
    lines.push(`| ${metric} | ${cells.join(' | ')} |`);
  }
  return `\nPer-round ratios, median (min–max):\n\n${lines.join('\n')}`;
}

function checkTargets(results: Map<string, Samples>): string[] {
  const m = (name: string, metric: string): number =>
    median(results.get(name)?.[metric] ?? [Number.NaN]);
  const misses: string[] = [];
  const expectAtMost = (what: string, value: number, limit: number): void => {
    if (!(value <= limit)) misses.push(`${what}: ${fmt(value)} > ${fmt(limit)}`);
  };
  const ours = 'event-coalescer';
  // Peers left out with --impls are not compared against.
  const peers = ['naive', 'lodash', 'rxjs'].filter((peer) => results.has(peer));
  if (only.has('A')) {
    expectAtMost('A ratio to floor', m(ours, 'A ns/enqueue') / m('floor', 'A ns/enqueue'), 2.0);
    for (const peer of peers)
      expectAtMost(`A faster than ${peer}`, m(ours, 'A ns/enqueue'), m(peer, 'A ns/enqueue'));
  }
  if (only.has('B')) {
    expectAtMost('B ratio to floor', m(ours, 'B ns/enqueue') / m('floor', 'B ns/enqueue'), 2.0);
    expectAtMost(
      'B memory ratio to floor',
      m(ours, 'B bytes/key') / m('floor', 'B bytes/key'),
      1.25,
    );
    expectAtMost('B live timers per key', m(ours, 'B timers/key'), 0.001);
    for (const peer of peers) {
      expectAtMost(`B faster than ${peer}`, m(ours, 'B ns/enqueue'), m(peer, 'B ns/enqueue'));
      expectAtMost(`B leaner than ${peer}`, m(ours, 'B bytes/key'), m(peer, 'B bytes/key'));
    }
  }
  if (only.has('C')) {
    expectAtMost('C writes within 1% of ideal', Math.abs(m(ours, 'C writes/ideal') - 1), 0.01);
    expectAtMost(
      'C latency p99 ≤ window + 10 ms',
      m(ours, 'C latency p99 ms'),
      CHURN_WINDOW_MS + 10,
    );
    expectAtMost('C cpu no worse than naive', m(ours, 'C cpu ms'), m('naive', 'C cpu ms'));
    expectAtMost(
      'C loop delay p99 no worse than naive',
      m(ours, 'C loop delay p99 ms'),
      m('naive', 'C loop delay p99 ms'),
    );
  }
  return misses;
}

const results = await measure();
const cpu = cpus()[0]?.model ?? 'unknown CPU';
console.log(
  `\n${quick ? 'QUICK (smoke run: reduced sizes shift every ratio)' : 'FULL'} — Node ${process.version}, ${cpus().length} × ${cpu}, ${rounds} rounds, medians (min–max), **ratio to floor**\n`,
);
console.log(table(results));
console.log(roundRatios(results));
if (quick || warmHeap || !implementations.some((impl) => impl.name === 'event-coalescer')) {
  const why = quick ? 'quick mode' : warmHeap ? '--warm-heap' : 'event-coalescer not measured';
  console.log(`\n${why}: targets not checked`);
} else {
  const misses = checkTargets(results);
  if (misses.length === 0) {
    console.log('\nall targets met');
  } else {
    console.log(`\ntargets missed:\n${misses.map((miss) => `- ${miss}`).join('\n')}`);
    process.exitCode = 1;
  }
}
