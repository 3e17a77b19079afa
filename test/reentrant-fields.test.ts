import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EventCoalescer } from '../src/index.js';
import { createMemorySnapshotStore } from '../src/stores/memory.js';
import { syncStore } from './support/helpers.js';
import { storeArgs } from './support/store-matchers.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** Fields `{ ...before, [name]: value, ...after }` whose `name` getter runs `call` first. */
function fieldsCalling(
  before: Record<string, unknown>,
  name: string,
  value: unknown,
  call: () => void,
  after: Record<string, unknown> = {},
): Record<string, unknown> {
  const fields: Record<string, unknown> = { ...before };
  Object.defineProperty(fields, name, {
    enumerable: true,
    get() {
      call();
      return value;
    },
  });
  return Object.assign(fields, after);
}

describe('EventCoalescer fields whose getters call the coalescer', () => {
  it('lands an enqueue made by a getter before the fields that carry the getter', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { a: 0, b: 0 }, 's0');
    const fields = fieldsCalling({ a: 1 }, 'b', 1, () => {
      expect(coalescer.peek('ws-1')).toEqual({ a: 0, b: 0 });
      coalescer.enqueue('ws-1', { a: 2, b: 2, c: 2 }, 'inner');
    });
    coalescer.enqueue('ws-1', fields, 'outer');
    expect(coalescer.peek('ws-1')).toEqual({ a: 1, b: 1, c: 2 });
    vi.advanceTimersByTime(150);
    expect(storeArgs(store.upsert)).toEqual([['ws-1', { a: 1, b: 1, c: 2 }, 's0+inner+outer']]);
    expect(coalescer.stats()).toMatchObject({ enqueued: 3, pending: 0 });
  });

  it('lets a getter see the pending patch as it was before the enqueue, on a new workspace too', () => {
    const coalescer = new EventCoalescer(syncStore());
    const seen: unknown[] = [];
    const fields = fieldsCalling({ a: 1 }, 'b', 1, () => {
      seen.push(coalescer.peek('ws-1'), coalescer.isPending('ws-1'), coalescer.pendingCount);
    });
    coalescer.enqueue('ws-1', fields, 's');
    expect(seen).toEqual([undefined, false, 0]);
    expect(coalescer.peek('ws-1')).toEqual({ a: 1, b: 1 });
  });

  it('never writes part of an enqueue whose getter flushes the workspace', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { a: 0 }, 's0');
    const fields = fieldsCalling({ a: 1 }, 'b', 1, () => void coalescer.flush('ws-1'), { c: 1 });
    coalescer.enqueue('ws-1', fields, 'outer');
    expect(storeArgs(store.upsert)).toEqual([['ws-1', { a: 0 }, 's0']]);
    vi.advanceTimersByTime(150);
    expect(storeArgs(store.upsert)).toEqual([
      ['ws-1', { a: 0 }, 's0'],
      ['ws-1', { a: 1, b: 1, c: 1 }, 'outer'],
    ]);
  });

  it('keeps every field of an enqueue whose getter removes the workspace, after the removal', async () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { a: 0 }, 's0');
    let removal: Promise<void> | undefined;
    const fields = fieldsCalling({ a: 1 }, 'b', 1, () => {
      removal = coalescer.remove('ws-1');
    });
    coalescer.enqueue('ws-1', fields, 'outer');
    await removal;
    expect(store.remove).toHaveBeenCalledTimes(1);
    expect(coalescer.peek('ws-1')).toEqual({ a: 1, b: 1 });
  });

  it('merges nothing of an enqueue whose getter called the coalescer and a later getter threw', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { a: 0 }, 's0');
    const fields = fieldsCalling({ a: 1 }, 'b', 1, () =>
      coalescer.enqueue('ws-1', { d: 4 }, 'inner'),
    );
    Object.defineProperty(fields, 'c', {
      enumerable: true,
      get() {
        throw new Error('getter');
      },
    });
    expect(() => coalescer.enqueue('ws-1', fields, 'outer')).toThrow('getter');
    expect(coalescer.peek('ws-1')).toEqual({ a: 0, d: 4 });
    expect(coalescer.stats()).toMatchObject({ enqueued: 2 });
    // The next pass starts clean.
    coalescer.enqueue('ws-1', { e: 5 }, 'next');
    expect(coalescer.peek('ws-1')).toEqual({ a: 0, d: 4, e: 5 });
  });

  it('merges nothing when the getter that called the coalescer throws itself', () => {
    const coalescer = new EventCoalescer(syncStore());
    coalescer.enqueue('ws-1', { a: 0 }, 's0');
    const fields = fieldsCalling({ a: 1 }, 'b', 1, () => {
      coalescer.enqueue('ws-1', { d: 4 }, 'inner');
      throw new Error('getter');
    });
    expect(() => coalescer.enqueue('ws-1', fields, 'outer')).toThrow('getter');
    expect(coalescer.peek('ws-1')).toEqual({ a: 0, d: 4 });
    coalescer.enqueue('ws-1', { e: 5 }, 'next');
    expect(coalescer.peek('ws-1')).toEqual({ a: 0, d: 4, e: 5 });
  });

  it('puts back a patch whose fifth field needs a record when a later getter throws', () => {
    const coalescer = new EventCoalescer(syncStore());
    coalescer.enqueue('ws-1', { a: 0, b: 0, c: 0 }, 's0');
    const fields: Record<string, unknown> = { a: 1, d: 1, e: 1 };
    Object.defineProperty(fields, 'f', {
      enumerable: true,
      get() {
        throw new Error('getter');
      },
    });
    expect(() => coalescer.enqueue('ws-1', fields, 'outer')).toThrow('getter');
    expect(coalescer.peek('ws-1')).toEqual({ a: 0, b: 0, c: 0 });
    coalescer.enqueue('ws-1', { a: 1, d: 1, e: 1 }, 'outer');
    expect(coalescer.peek('ws-1')).toEqual({ a: 1, b: 0, c: 0, d: 1, e: 1 });
  });

  it('drops an enqueue whose getter closed the coalescer, and strands nothing', async () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    let closing: Promise<void> | undefined;
    const fields = fieldsCalling({ a: 1 }, 'b', 1, () => {
      closing = coalescer.close();
    });
    coalescer.enqueue('ws-1', fields, 'outer');
    await closing;
    expect(coalescer.stats()).toMatchObject({ enqueued: 0, dropped: 1, pending: 0 });
    expect(store.upsert).not.toHaveBeenCalled();
  });

  it('nests: a getter of an enqueue made by a getter calls the coalescer too', () => {
    const store = syncStore();
    const coalescer = new EventCoalescer(store);
    coalescer.enqueue('ws-1', { a: 0, b: 0 }, 's0');
    const innermost = () => coalescer.enqueue('ws-1', { a: 3, b: 3, c: 3 }, 'innermost');
    const inner = () =>
      coalescer.enqueue('ws-1', fieldsCalling({ a: 2 }, 'b', 2, innermost, { d: 2 }), 'inner');
    coalescer.enqueue('ws-1', fieldsCalling({ a: 1 }, 'b', 1, inner), 'outer');
    expect(coalescer.peek('ws-1')).toEqual({ a: 1, b: 1, c: 3, d: 2 });
    expect(coalescer.stats()).toMatchObject({ enqueued: 4, pending: 1 });
  });

  it('lets a getter enqueue into another coalescer and another workspace', () => {
    const first = new EventCoalescer(syncStore());
    const second = new EventCoalescer(syncStore());
    first.enqueue('ws-1', { a: 0 }, 's0');
    const fields = fieldsCalling({ a: 1 }, 'b', 1, () => {
      second.enqueue('ws-1', { x: 1 }, 'other');
      first.enqueue('ws-2', { y: 1 }, 'other');
    });
    first.enqueue('ws-1', fields, 'outer');
    expect(first.peek('ws-1')).toEqual({ a: 1, b: 1 });
    expect(first.peek('ws-2')).toEqual({ y: 1 });
    expect(second.peek('ws-1')).toEqual({ x: 1 });
  });

  it('treats a proxy whose traps call the coalescer like getters that do', () => {
    const coalescer = new EventCoalescer(syncStore());
    coalescer.enqueue('ws-1', { a: 0, b: 0 }, 's0');
    const seen: unknown[] = [];
    const fields = new Proxy(
      { a: 1, b: 1 },
      {
        getOwnPropertyDescriptor(target, key) {
          if (key === 'a') coalescer.enqueue('ws-1', { a: 2, c: 2 }, 'trap');
          return Reflect.getOwnPropertyDescriptor(target, key);
        },
        get(target, key) {
          if (typeof key === 'string') seen.push(coalescer.peek('ws-1'));
          return Reflect.get(target, key);
        },
      },
    );
    coalescer.enqueue('ws-1', fields, 'outer');
    expect(seen).toEqual([
      { a: 2, b: 0, c: 2 },
      { a: 2, b: 0, c: 2 },
    ]);
    expect(coalescer.peek('ws-1')).toEqual({ a: 1, b: 1, c: 2 });
  });
});

/** What a getter does before it returns its value; `nested` is run by the getter. */
type Op =
  | { kind: 'enqueue'; ws: string; fields: FieldSpec[]; source: string }
  | { kind: 'peek'; ws: string }
  | { kind: 'flush'; ws: string }
  | { kind: 'remove'; ws: string }
  | { kind: 'flushAll' };
/** A field: a plain value, or a getter that runs `ops` and then returns `value` or throws. */
interface FieldSpec {
  name: string;
  value: number | null | undefined;
  ops: Op[];
  throws: boolean;
}

/** Operations whose getters nest at most `depth` levels. */
function opArb(depth: number): fc.Arbitrary<Op> {
  const field: fc.Arbitrary<FieldSpec> = fc.record({
    name: fc.constantFrom('p', 'q', 'r', 's', 't', 'u'),
    value: fc.oneof(fc.integer({ min: 0, max: 9 }), fc.constant(null), fc.constant(undefined)),
    ops: depth === 0 ? fc.constant([]) : fc.array(opArb(depth - 1), { maxLength: 2 }),
    throws: fc.integer({ min: 0, max: 7 }).map((n) => n === 0),
  });
  const ws = fc.constantFrom('a', 'b');
  return fc.oneof(
    fc.record({
      kind: fc.constant('enqueue' as const),
      ws,
      fields: fc.uniqueArray(field, { maxLength: 6, selector: (spec) => spec.name }),
      source: fc.constantFrom('s1', 's2'),
    }),
    fc.record({ kind: fc.constant('peek' as const), ws }),
    fc.record({ kind: fc.constant('flush' as const), ws }),
    fc.record({ kind: fc.constant('remove' as const), ws }),
    fc.record({ kind: fc.constant('flushAll' as const) }),
  );
}

/**
 * Runs `ops` against `coalescer`. `asGetters`: fields with ops or a throw are getters, run as
 * the enqueue reads them. Otherwise each enqueue first runs its fields' ops itself, in order,
 * and enqueues plain values: what an enqueue that read every field before merging any does.
 */
function run(coalescer: EventCoalescer, ops: Op[], asGetters: boolean, seen: unknown[]): void {
  for (const op of ops) {
    try {
      if (op.kind === 'peek') seen.push(coalescer.peek(op.ws));
      else if (op.kind === 'flush') void coalescer.flush(op.ws);
      else if (op.kind === 'remove') void coalescer.remove(op.ws);
      else if (op.kind === 'flushAll') void coalescer.flushAll();
      else if (asGetters) {
        const fields: Record<string, unknown> = {};
        for (const field of op.fields) {
          if (field.ops.length === 0 && !field.throws) fields[field.name] = field.value;
          else {
            Object.defineProperty(fields, field.name, {
              enumerable: true,
              get() {
                run(coalescer, field.ops, true, seen);
                if (field.throws) throw new Error('getter');
                return field.value;
              },
            });
          }
        }
        coalescer.enqueue(op.ws, fields, op.source);
      } else {
        const fields: Record<string, unknown> = {};
        for (const field of op.fields) {
          run(coalescer, field.ops, false, seen);
          if (field.throws) throw new Error('getter');
          fields[field.name] = field.value;
        }
        coalescer.enqueue(op.ws, fields, op.source);
      }
    } catch (error) {
      seen.push((error as Error).message);
    }
  }
}

describe('EventCoalescer fields whose getters call it, against reading every field first', () => {
  it('leaves the same store, pending fields, counts and sightings', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb(2), { maxLength: 12 }), async (ops) => {
        const outcomes = [];
        for (const asGetters of [true, false]) {
          const store = createMemorySnapshotStore();
          const coalescer = new EventCoalescer(store, { canCreate: () => true });
          const seen: unknown[] = [];
          run(coalescer, ops, asGetters, seen);
          const pending = { a: coalescer.peek('a'), b: coalescer.peek('b') };
          const counts = coalescer.stats();
          await coalescer.close();
          outcomes.push({
            seen,
            pending,
            enqueued: counts.enqueued,
            snapshot: {
              a: await store.getByWorkspaceId('a'),
              b: await store.getByWorkspaceId('b'),
            },
          });
        }
        expect(outcomes[0]).toEqual(outcomes[1]);
      }),
      { numRuns: 300 },
    );
  });
});
