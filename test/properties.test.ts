/**
 * Model-based property tests: random command sequences against a reference model.
 * PROPERTY_RUNS=5000 npm test -- properties   runs more than the default 500 per property.
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EventCoalescer, type Fields, type Patch, type SnapshotStore } from '../src/index.js';
import { createMemorySnapshotStore } from '../src/stores/memory.js';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 300);
const WINDOW_MS = 100;
const MAX_WAIT_MS = 250;
const DRAIN_TIMEOUT_MS = 5000;
const CALL_TIMEOUT_MS = 1000;
const WORKSPACES = ['a', 'b', 'c'] as const;
const SOURCES = ['s1', 's2', 's3'] as const;

type Command =
  | {
      kind: 'enqueue';
      ws: string;
      fields: Patch;
      source: string;
      immediate: boolean;
      /** Windows of the enqueue's own; undefined: the coalescer's. */
      windowMs?: number | undefined;
      maxWaitMs?: number | undefined;
    }
  | { kind: 'remove'; ws: string }
  | { kind: 'flush'; ws: string }
  | { kind: 'flushAll' }
  | { kind: 'advance'; ms: number }
  | { kind: 'stepClock'; ms: number }
  | { kind: 'receipt'; ws: string }
  | { kind: 'settle'; call: number; ok: boolean }
  | { kind: 'throwNext' }
  | { kind: 'answerStyle'; style: AnswerStyle }
  | { kind: 'callbacksThrow'; on: boolean }
  | { kind: 'outage'; ms: number; mode: OutageMode };

/** How a store that is away answers: every call fails, hangs, or does one or the other. */
type OutageMode = 'fail' | 'hang' | 'both';

/** How the store's next answers come back: a native promise, or a thenable of some oddity. */
type AnswerStyle = 'promise' | 'thenable' | 'settlesTwice' | 'settlesBothWays' | 'thenThrows';
const ANSWER_STYLES: AnswerStyle[] = [
  'promise',
  'thenable',
  'settlesTwice',
  'settlesBothWays',
  'thenThrows',
];

const fieldValue = fc.oneof(
  fc.integer({ min: 0, max: 9 }),
  fc.constant(null),
  fc.constant(undefined),
);
const fieldsArb = fc.record(
  { x: fieldValue, y: fieldValue, z: fieldValue },
  { requiredKeys: [] },
) as fc.Arbitrary<Patch>;
const ws = fc.constantFrom(...WORKSPACES);

const enqueue = fc.record({
  kind: fc.constant('enqueue' as const),
  ws,
  fields: fieldsArb,
  source: fc.constantFrom(...SOURCES),
  immediate: fc.boolean(),
});
/** An enqueue with windows of its own, some of them the coalescer's own values. */
const timedEnqueue = fc.record({
  kind: fc.constant('enqueue' as const),
  ws,
  fields: fieldsArb,
  source: fc.constantFrom(...SOURCES),
  immediate: fc.boolean(),
  windowMs: fc.option(fc.constantFrom(0, 20, WINDOW_MS, 400), { nil: undefined }),
  maxWaitMs: fc.option(fc.constantFrom(0, 50, MAX_WAIT_MS, 1000, Infinity), { nil: undefined }),
});
const syncCommand: fc.Arbitrary<Command> = fc.oneof(
  { weight: 6, arbitrary: enqueue },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('remove' as const), ws }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('flush' as const), ws }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('flushAll' as const) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('advance' as const),
      ms: fc.integer({ min: 0, max: 300 }),
    }),
  },
  {
    // The wall clock steps either way (NTP, a resumed VM): by a few ms or by hours.
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('stepClock' as const),
      ms: fc.oneof(
        fc.integer({ min: -300, max: 300 }),
        fc.integer({ min: -86_400_000, max: 86_400_000 }),
      ),
    }),
  },
);
const timedSyncCommand: fc.Arbitrary<Command> = fc.oneof(
  { weight: 8, arbitrary: syncCommand },
  { weight: 6, arbitrary: timedEnqueue },
);
const asyncCommand: fc.Arbitrary<Command> = fc.oneof(
  { weight: 8, arbitrary: syncCommand },
  { weight: 2, arbitrary: timedEnqueue },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('settle' as const),
      call: fc.nat(5),
      ok: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('throwNext' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('receipt' as const), ws }) },
);
const outage = fc.record({
  kind: fc.constant('outage' as const),
  ms: fc.integer({ min: 0, max: 20_000 }),
  mode: fc.constantFrom<OutageMode>('fail', 'hang', 'both'),
});
/** The async commands, plus odd thenables from the store and callbacks that throw. */
const hostileCommand: fc.Arbitrary<Command> = fc.oneof(
  { weight: 1, arbitrary: outage },
  { weight: 12, arbitrary: asyncCommand },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('answerStyle' as const),
      style: fc.constantFrom(...ANSWER_STYLES),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('callbacksThrow' as const), on: fc.boolean() }),
  },
);

/** Resolves promise callbacks; fake timers do not touch microtasks. */
async function microtasks(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** Wraps a store call's promise in the answer style: what a hostile store may hand back. */
function answerAs(style: AnswerStyle, promise: Promise<void>): PromiseLike<void> {
  const thenable = (
    relay: (ok: () => void, fail: (error: unknown) => void) => void,
  ): PromiseLike<void> =>
    ({
      then(ok: () => void, fail: (error: unknown) => void) {
        relay(ok, fail);
      },
    }) as PromiseLike<void>;
  switch (style) {
    case 'thenable':
      return thenable((ok, fail) => void promise.then(ok, fail));
    case 'settlesTwice':
      return thenable(
        (ok, fail) =>
          void promise.then(
            () => {
              ok();
              ok();
            },
            (error) => {
              fail(error);
              fail(error);
            },
          ),
      );
    case 'settlesBothWays':
      return thenable(
        (ok, fail) =>
          void promise.then(
            () => {
              ok();
              fail(new Error('late rejection'));
            },
            (error) => {
              fail(error);
              ok();
            },
          ),
      );
    default:
      return promise;
  }
}

/** A memory store behind calls that stay in flight until a command settles them. */
function asyncFaultyStore() {
  const memory = createMemorySnapshotStore();
  const inFlight = new Map<string, number>();
  let overlap = false;
  let throwNext = false;
  let style: AnswerStyle = 'promise';
  let away: OutageMode | undefined;
  let awayCalls = 0;
  const calls: Array<{ settle(ok: boolean): void }> = [];
  const landed: Array<{ ws: string; fields: Patch }> = [];
  const call = (
    ws: string,
    apply: () => void,
    signal: AbortSignal | undefined,
    fields?: Patch,
  ): PromiseLike<void> => {
    if (away !== undefined) {
      const hang = away === 'hang' || (away === 'both' && awayCalls++ % 2 === 0);
      if (!hang) return Promise.reject(new Error('store away'));
      // A hung call holds its workspace at the store until the coalescer aborts it.
      inFlight.set(ws, (inFlight.get(ws) ?? 0) + 1);
      if ((inFlight.get(ws) ?? 0) > 1) overlap = true;
      return new Promise<void>((_resolve, reject) => {
        signal?.addEventListener('abort', () => {
          inFlight.set(ws, (inFlight.get(ws) ?? 1) - 1);
          reject(signal.reason);
        });
      });
    }
    if (throwNext) {
      throwNext = false;
      throw new Error('synchronous store failure');
    }
    // A then that throws is a failed call that never reached the data; like throwNext, it
    // is one call's fault, so that a patch can still land within its attempts.
    if (style === 'thenThrows') {
      style = 'promise';
      return {
        then() {
          throw new Error('then threw');
        },
      };
    }
    const now = (inFlight.get(ws) ?? 0) + 1;
    inFlight.set(ws, now);
    if (now > 1) overlap = true;
    const promise = new Promise<void>((resolve, reject) => {
      let settled = false;
      // The store honours the signal: a call the coalescer stopped waiting for never lands.
      signal?.addEventListener('abort', () => {
        if (settled) return;
        settled = true;
        inFlight.set(ws, (inFlight.get(ws) ?? 1) - 1);
        reject(signal.reason);
      });
      calls.push({
        settle(ok) {
          if (settled) return;
          settled = true;
          inFlight.set(ws, (inFlight.get(ws) ?? 1) - 1);
          if (ok) {
            apply();
            if (fields !== undefined) landed.push({ ws, fields });
            resolve();
          } else {
            reject(new Error('store failure'));
          }
        },
      });
    });
    return answerAs(style, promise);
  };
  const store: SnapshotStore = {
    upsert: (id, fields, source, _timestamp, options) =>
      call(id, () => memory.upsert(id, fields, source), options?.signal, { ...fields }),
    getByWorkspaceId: (id) => memory.getByWorkspaceId(id),
    remove: (id, _timestamp, options) => call(id, () => memory.remove(id), options?.signal),
  };
  return {
    store,
    memory,
    landed,
    get overlap() {
      return overlap;
    },
    throwNext() {
      throwNext = true;
    },
    answerStyle(next: AnswerStyle) {
      style = next;
    },
    /** The store goes away (`mode`) or comes back (`undefined`). */
    outage(mode: OutageMode | undefined) {
      away = mode;
    },
    settle(index: number, ok: boolean) {
      if (calls.length === 0) return;
      const [picked] = calls.splice(index % calls.length, 1);
      picked?.settle(ok);
    },
    settleAll() {
      for (const pending of calls.splice(0)) pending.settle(true);
    },
    get pendingCalls() {
      return calls.length;
    },
  };
}

/** Applies every accepted patch in acceptance order; removal clears. */
class Model {
  readonly state = new Map<string, Fields>();
  enqueue(ws: string, fields: Patch): void {
    const current = this.state.get(ws) ?? {};
    for (const [key, value] of Object.entries(fields))
      if (value !== undefined) current[key] = value;
    this.state.set(ws, current);
  }
  remove(ws: string): void {
    this.state.delete(ws);
  }
}

/** Runs commands against a coalescer over the async, faulty store. */
async function runAsync(
  commands: Command[],
  attempts: number,
  drain: 'settle' | 'hang' = 'settle',
  leading = false,
) {
  const faulty = asyncFaultyStore();
  const reported: Array<{ ws: string; fields: Patch }> = [];
  /** Workspaces whose removal failed every attempt: reported, so they may remain. */
  const removalsGivenUp = new Set<string>();
  // Callbacks that throw while `callbacksThrow` is on: the logger and onError always,
  // canCreate the first time it sees each merged patch (so that every patch can still land).
  let callbacksThrow = false;
  const seenByCanCreate = new WeakSet<object>();
  const throwIfHostile = (): void => {
    if (callbacksThrow) throw new Error('callback threw');
  };
  const logger = { debug: throwIfHostile, warn: throwIfHostile, error: throwIfHostile };
  const coalescer = new EventCoalescer(faulty.store, {
    windowMs: WINDOW_MS,
    maxWaitMs: MAX_WAIT_MS,
    canCreate: (fields) => {
      const firstLook = !seenByCanCreate.has(fields);
      seenByCanCreate.add(fields);
      if (callbacksThrow && firstLook) throw new Error('canCreate threw');
      return true;
    },
    retry: { attempts, delayMs: 50, maxDelayMs: 1000 },
    callTimeoutMs: CALL_TIMEOUT_MS,
    drainTimeoutMs: DRAIN_TIMEOUT_MS,
    leading,
    logger,
    onError: (_error, context) => {
      if (context.operation === 'upsert' || context.operation === 'canCreate')
        reported.push({ ws: context.workspaceId, fields: { ...context.fields } });
      if (context.operation === 'remove') removalsGivenUp.add(context.workspaceId);
      throwIfHostile();
    },
  });
  const model = new Model();
  const tags: Array<{ ws: string; tag: string; removedAfter: boolean }> = [];
  /** Each `settled` receipt: the tags it covers, and how it ended. */
  const receipts: Array<{
    ws: string;
    covers: string[];
    outcome: 'pending' | 'landed' | 'skipped' | 'rejected';
    /** Covered tags not landed when it resolved. */
    missing?: string[];
  }> = [];
  /** Tags that may no longer land: given up (reported) or dropped by a removal. */
  const ended = new Set<string>();
  let tag = 0;
  for (const command of commands) {
    switch (command.kind) {
      case 'enqueue': {
        const t = `t${tag++}`;
        tags.push({ ws: command.ws, tag: t, removedAfter: false });
        const fields = { ...command.fields, [t]: true };
        model.enqueue(command.ws, fields);
        coalescer.enqueue(command.ws, fields, command.source, enqueueOptions(command));
        break;
      }
      case 'remove':
        model.remove(command.ws);
        for (const entry of tags) if (entry.ws === command.ws) entry.removedAfter = true;
        void coalescer.remove(command.ws);
        break;
      case 'flush':
        void coalescer.flush(command.ws);
        break;
      case 'flushAll':
        void coalescer.flushAll();
        break;
      case 'advance':
        await vi.advanceTimersByTimeAsync(command.ms);
        break;
      case 'stepClock':
        vi.setSystemTime(Date.now() + command.ms);
        break;
      case 'receipt': {
        for (const report of reported) for (const t of Object.keys(report.fields)) ended.add(t);
        const covers = tags
          .filter(
            (entry) => entry.ws === command.ws && !entry.removedAfter && !ended.has(entry.tag),
          )
          .map((entry) => entry.tag);
        const receipt = {
          ws: command.ws,
          covers,
          outcome: 'pending' as const,
        } as (typeof receipts)[number];
        receipts.push(receipt);
        coalescer.settled(command.ws).then(
          (outcome) => {
            receipt.outcome = outcome;
            // Checked when it resolves: every field it covers has landed by then.
            receipt.missing = covers.filter(
              (t) => !faulty.landed.some((write) => write.ws === command.ws && t in write.fields),
            );
          },
          () => {
            receipt.outcome = 'rejected';
          },
        );
        break;
      }
      case 'settle':
        faulty.settle(command.call, command.ok);
        await microtasks();
        break;
      case 'throwNext':
        faulty.throwNext();
        break;
      case 'answerStyle':
        faulty.answerStyle(command.style);
        break;
      case 'callbacksThrow':
        callbacksThrow = command.on;
        break;
      case 'outage':
        faulty.outage(command.mode);
        await vi.advanceTimersByTimeAsync(command.ms);
        faulty.outage(undefined);
        break;
    }
  }
  // Drain: close() flushes and cuts every back-off short; every store call now answers (time
  // runs, so later retries come too), or (`hang`) none does, and only drainTimeoutMs ends it.
  let closed = false;
  const closing = coalescer.close().then(() => {
    closed = true;
  });
  if (drain === 'hang') {
    await vi.advanceTimersByTimeAsync(DRAIN_TIMEOUT_MS);
  } else {
    for (let round = 0; round < 1000 && !closed; round++) {
      faulty.settleAll();
      await microtasks();
      if (!closed) await vi.advanceTimersByTimeAsync(25);
    }
  }
  const closedInTime = closed;
  await closing;
  return {
    faulty,
    coalescer,
    model,
    reported,
    tags,
    receipts,
    closedInTime,
    removalsGivenUp,
    givenUp: coalescer.stats().failed,
  };
}

/** The enqueue options a command asks for, leaving out windows it does not set. */
function enqueueOptions(command: Extract<Command, { kind: 'enqueue' }>) {
  return {
    immediate: command.immediate,
    ...(command.windowMs === undefined ? {} : { windowMs: command.windowMs }),
    ...(command.maxWaitMs === undefined ? {} : { maxWaitMs: command.maxWaitMs }),
  };
}

interface TimingModel {
  firstAt: number;
  /** Each window asked for, and when it was last asked for. */
  windows: Map<number, number>;
  /** The earliest maxWaitMs deadline any enqueue set. */
  maxDueAt: number;
  sources: string[];
}

/** The earliest deadline any of the patch's enqueues demands. */
function dueOf(model: TimingModel): number {
  let due = model.maxDueAt;
  for (const [windowMs, lastAt] of model.windows) due = Math.min(due, lastAt + windowMs);
  return due;
}

/**
 * Runs commands against a synchronous store that never fails, checking every write's timing
 * in real elapsed time (`performance.now()`, which the fake timers drive and wall-clock
 * steps leave alone).
 */
function runSync(
  commands: Command[],
  { leading = false, maxWaitMs = MAX_WAIT_MS, longestWindowMs = WINDOW_MS } = {},
) {
  const violations: string[] = [];
  const pending = new Map<string, TimingModel>();
  let explicit = new Set<string>();
  const maxPending = 2;
  /** When each workspace's last write started: with a leading edge, what makes it quiet. */
  const lastWriteAt = new Map<string, number>();
  const store: SnapshotStore = {
    upsert(id, _fields, source) {
      if (id === 'warm-up') return;
      const now = performance.now();
      lastWriteAt.set(id, now);
      const model = pending.get(id);
      if (model === undefined) {
        violations.push(`write of ${id} at ${now} with nothing pending`);
        return;
      }
      const due = dueOf(model);
      if (!explicit.has(id) && now !== due)
        violations.push(`write of ${id} at ${now}, due at ${due}`);
      const expectedLabel = [...new Set(model.sources)].join('+');
      if (source !== expectedLabel)
        violations.push(`label of ${id} was ${source}, expected ${expectedLabel}`);
      pending.delete(id);
    },
    getByWorkspaceId: () => ({}),
    remove: () => {},
  };
  const coalescer = new EventCoalescer(store, {
    windowMs: WINDOW_MS,
    maxWaitMs,
    maxPending,
    leading,
    canCreate: () => true,
  });
  // A leading edge remembers writes for the longest window asked for so far: ask for it once.
  if (longestWindowMs > WINDOW_MS) {
    coalescer.enqueue('warm-up', {}, 's', { windowMs: longestWindowMs, immediate: true });
  }
  const expectWritesOf = (ids: Iterable<string>, act: () => void): void => {
    explicit = new Set(ids);
    act();
    explicit = new Set();
  };
  for (const command of commands) {
    const now = performance.now();
    switch (command.kind) {
      case 'enqueue': {
        const windowMs = command.windowMs ?? WINDOW_MS;
        let model = pending.get(command.ws);
        const evicted: string[] = [];
        const lastWrite = lastWriteAt.get(command.ws);
        const quiet =
          model === undefined && (lastWrite === undefined || now - lastWrite >= windowMs);
        if (model === undefined) {
          model = { firstAt: now, windows: new Map(), maxDueAt: Infinity, sources: [] };
          pending.set(command.ws, model);
          // maxPending writes the oldest: to the millisecond, any first enqueued then.
          if (pending.size > maxPending) {
            const oldest = Math.min(...[...pending.values()].map((m) => m.firstAt));
            for (const [id, m] of pending) if (m.firstAt === oldest) evicted.push(id);
          }
        }
        model.windows.set(windowMs, now);
        model.maxDueAt = Math.min(model.maxDueAt, now + (command.maxWaitMs ?? maxWaitMs));
        model.sources.push(command.source);
        if (command.immediate || (leading && quiet)) evicted.push(command.ws);
        expectWritesOf(evicted, () =>
          coalescer.enqueue(command.ws, command.fields, command.source, enqueueOptions(command)),
        );
        break;
      }
      case 'stepClock':
        vi.setSystemTime(Date.now() + command.ms);
        break;
      case 'remove':
        pending.delete(command.ws);
        void coalescer.remove(command.ws);
        break;
      case 'flush':
        expectWritesOf([command.ws], () => void coalescer.flush(command.ws));
        break;
      case 'flushAll':
        expectWritesOf(pending.keys(), () => void coalescer.flushAll());
        break;
      case 'advance': {
        vi.advanceTimersByTime(command.ms);
        const at = performance.now();
        for (const [id, model] of pending) {
          const due = dueOf(model);
          if (due <= at) violations.push(`${id} due at ${due} still pending at ${at}`);
        }
        break;
      }
      default:
        break;
    }
    if (pending.size !== coalescer.pendingCount) {
      violations.push(`model has ${pending.size} pending, coalescer ${coalescer.pendingCount}`);
    }
  }
  return violations;
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const commandsOf = (arbitrary: fc.Arbitrary<Command>) => fc.array(arbitrary, { maxLength: 40 });

describe('EventCoalescer properties', () => {
  it('1. once drained, the store equals the model for every workspace', async () => {
    await fc.assert(
      fc.asyncProperty(commandsOf(hostileCommand), async (commands) => {
        const { faulty, model, givenUp } = await runAsync(commands, Infinity);
        for (const id of WORKSPACES) {
          expect(faulty.memory.getByWorkspaceId(id)?.fields).toEqual(model.state.get(id));
        }
        // Outages of any length, failing or hanging: with no bound set, nothing is given up.
        expect(givenUp).toBe(0);
      }),
      { numRuns: RUNS },
    );
  });

  it('2. never has two store calls in flight for one workspace', async () => {
    await fc.assert(
      fc.asyncProperty(commandsOf(hostileCommand), async (commands) => {
        const { faulty } = await runAsync(commands, 3);
        expect(faulty.overlap).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });

  it('3. every accepted patch lands or is reported once, never both, never neither', async () => {
    await fc.assert(
      fc.asyncProperty(commandsOf(hostileCommand), async (commands) => {
        const { faulty, reported, tags } = await runAsync(commands, 2);
        for (const { ws: id, tag, removedAfter } of tags) {
          const landed = faulty.landed.filter(
            (write) => write.ws === id && tag in write.fields,
          ).length;
          const given = reported.filter(
            (report) => report.ws === id && tag in report.fields,
          ).length;
          if (removedAfter) expect(landed + given, `${tag} of ${id}`).toBeLessThanOrEqual(1);
          else expect(landed + given, `${tag} of ${id}`).toBe(1);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('4. with a synchronous store, writes every patch exactly when it is due', () => {
    fc.assert(
      fc.property(commandsOf(syncCommand), (commands) => {
        expect(runSync(commands)).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  });

  it('5. never resurrects a removed workspace with a write pending or in flight at its removal', async () => {
    await fc.assert(
      fc.asyncProperty(commandsOf(hostileCommand), async (commands) => {
        const { faulty, removalsGivenUp } = await runAsync(commands, 3);
        const lastEnqueue = new Map<string, number>();
        const lastRemove = new Map<string, number>();
        commands.forEach((command, index) => {
          if (command.kind === 'enqueue') lastEnqueue.set(command.ws, index);
          if (command.kind === 'remove') lastRemove.set(command.ws, index);
        });
        for (const id of WORKSPACES) {
          if (removalsGivenUp.has(id)) continue;
          if ((lastRemove.get(id) ?? -1) > (lastEnqueue.get(id) ?? -1) && lastRemove.has(id)) {
            expect(faulty.memory.getByWorkspaceId(id)).toBeUndefined();
          }
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('6. writes source labels without duplicates, in first-seen order', () => {
    // runSync checks every label against the first-seen order of the sources since the last write.
    fc.assert(
      fc.property(commandsOf(syncCommand), (commands) => {
        const labels = runSync(commands).filter((violation) => violation.startsWith('label'));
        expect(labels).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  });

  it('7. close() settles within drainTimeoutMs, whatever the store and the callbacks do', async () => {
    await fc.assert(
      fc.asyncProperty(commandsOf(hostileCommand), async (commands) => {
        const { closedInTime, coalescer } = await runAsync(commands, 3, 'hang');
        expect(closedInTime).toBe(true);
        expect(coalescer.stats().inFlight).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: RUNS },
    );
  });

  it('8. counts each store call once, whatever thenable answers it', async () => {
    await fc.assert(
      fc.asyncProperty(commandsOf(hostileCommand), async (commands) => {
        const { faulty, coalescer } = await runAsync(commands, 3);
        const stats = coalescer.stats();
        expect(stats.inFlight).toBe(0);
        expect(stats.flushed).toBe(faulty.landed.length);
      }),
      { numRuns: RUNS },
    );
  });

  it('9. with a leading edge, once drained the store equals the model for every workspace', async () => {
    await fc.assert(
      fc.asyncProperty(commandsOf(hostileCommand), async (commands) => {
        const { faulty, model } = await runAsync(commands, Infinity, 'settle', true);
        for (const id of WORKSPACES) {
          expect(faulty.memory.getByWorkspaceId(id)?.fields).toEqual(model.state.get(id));
        }
        expect(faulty.overlap).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });

  it('10. with a leading edge and a synchronous store, writes every patch exactly when due', () => {
    // Due: at once for the first event after a quiet spell, otherwise as in property 4.
    fc.assert(
      fc.property(commandsOf(syncCommand), (commands) => {
        expect(runSync(commands, { leading: true })).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  });

  it('11. with a leading edge and maxWaitMs below windowMs, writes every patch exactly when due', () => {
    // The timer kept for the leading edge's bookkeeping must not delay a maxWaitMs deadline.
    fc.assert(
      fc.property(commandsOf(syncCommand), (commands) => {
        expect(runSync(commands, { leading: true, maxWaitMs: 30 })).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  });

  it('13. with windows of their own per enqueue, writes every patch at its earliest deadline', () => {
    fc.assert(
      fc.property(commandsOf(timedSyncCommand), (commands) => {
        expect(runSync(commands)).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  });

  it('14. with windows of their own and a leading edge, writes every patch exactly when due', () => {
    fc.assert(
      fc.property(commandsOf(timedSyncCommand), (commands) => {
        expect(runSync(commands, { leading: true, longestWindowMs: 400 })).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  });

  it('12. settles every receipt, and a receipt that resolved "landed" covers fields that landed', async () => {
    await fc.assert(
      fc.asyncProperty(commandsOf(hostileCommand), async (commands) => {
        const { receipts } = await runAsync(commands, 3);
        await microtasks();
        for (const receipt of receipts) {
          expect(receipt.outcome).not.toBe('pending');
          if (receipt.outcome === 'landed') expect(receipt.missing, receipt.ws).toEqual([]);
        }
      }),
      { numRuns: RUNS },
    );
  });
});
