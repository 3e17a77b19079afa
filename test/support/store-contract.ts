import { describe, expect, it } from 'vitest';
import type {
  Fields,
  Patch,
  SnapshotChange,
  SnapshotEntry,
  StoreErrorHandler,
} from '../../src/index.js';

/** What the contract needs of a store: the memory store and the Redis store both fit. */
export interface ContractStore {
  upsert(workspaceId: string, fields: Patch, source: string, timestamp?: number): unknown;
  getByWorkspaceId(
    workspaceId: string,
  ): SnapshotEntry | undefined | Promise<SnapshotEntry | undefined>;
  remove(workspaceId: string, timestamp?: number): unknown;
  getAll(): SnapshotEntry[] | Promise<SnapshotEntry[]>;
  subscribe(
    listener: (change: SnapshotChange<Fields>) => void,
  ): (() => void) & { ready?: Promise<void> };
}

/** Waits for a condition that a change feed makes true, sooner or later. */
export async function eventually(check: () => unknown, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/** `{ next: { next: … { end: true } } }`, `levels` objects deep. */
function nested(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = { end: true };
  for (let i = 1; i < levels; i++) value = { next: value };
  return value;
}

/** The store contract, one suite for every store; `fresh` gives an empty store. */
export function describeStoreContract(
  name: string,
  fresh: (options?: { onError?: StoreErrorHandler }) => Promise<ContractStore>,
): void {
  describe(`${name}: store contract`, () => {
    it('reports a listener that throws; the other listeners still get the change', async () => {
      const reported: unknown[] = [];
      const store = await fresh({ onError: (error, context) => reported.push([error, context]) });
      const failure = new Error('listener');
      const seen: string[] = [];
      const first = store.subscribe(() => {
        throw failure;
      });
      const second = store.subscribe((change) => seen.push(change.workspaceId));
      await Promise.all([first.ready, second.ready]);
      await store.upsert('ws-1', { a: 1 }, 's');
      await eventually(() => expect(seen).toEqual(['ws-1']));
      expect(reported).toEqual([[failure, { operation: 'listener', workspaceId: 'ws-1' }]]);
      first();
      second();
    });

    it('creates an entry on first write with version 1', async () => {
      const store = await fresh();
      await store.upsert('ws-1', { status: 'READY' }, 'event:a', 1234);
      expect(await store.getByWorkspaceId('ws-1')).toEqual({
        workspaceId: 'ws-1',
        fields: { status: 'READY' },
        version: 1,
        source: 'event:a',
        updatedAt: 1234,
      });
    });

    it('merges: later values win, undefined skipped, null kept, version bumped', async () => {
      const store = await fresh();
      await store.upsert('ws-1', { a: 1, b: 2 }, 's');
      await store.upsert('ws-1', { a: undefined, b: null, c: 3 }, 't');
      expect(await store.getByWorkspaceId('ws-1')).toMatchObject({
        fields: { a: 1, b: null, c: 3 },
        version: 2,
        source: 't',
      });
    });

    it('round-trips null, 0, false, strings and nested objects exactly', async () => {
      const store = await fresh();
      const fields = {
        zero: 0,
        no: false,
        none: null,
        text: 'x"y',
        nested: { list: [1, { deep: true }], n: -1.5 },
      };
      await store.upsert('ws-1', fields, 's');
      expect((await store.getByWorkspaceId('ws-1'))?.fields).toEqual(fields);
    });

    it('round-trips an object nested 150 levels deep, and stores a Date as its JSON', async () => {
      const store = await fresh();
      const deep = nested(150);
      const at = new Date(0);
      await store.upsert('ws-1', { deep, at }, 's');
      expect((await store.getByWorkspaceId('ws-1'))?.fields).toEqual({
        deep,
        at: '1970-01-01T00:00:00.000Z',
      });
    });

    it('keeps what it stored when the caller later changes the object it wrote', async () => {
      const store = await fresh();
      const value = { list: [1] };
      await store.upsert('ws-1', { value }, 's');
      value.list.push(2);
      expect((await store.getByWorkspaceId('ws-1'))?.fields).toEqual({ value: { list: [1] } });
    });

    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    it.each([
      ['a function', () => 1, /got a function/],
      ['a symbol', Symbol('s'), /symbol/],
      ['a BigInt', 10n, /bigint/],
      ['NaN', Number.NaN, /NaN/],
      ['Infinity', Number.POSITIVE_INFINITY, /Infinity/],
      ['-Infinity', Number.NEGATIVE_INFINITY, /-Infinity/],
      ['-0', -0, /`0` \(number\)/],
      ['NaN nested in an object', { inner: [1, Number.NaN] }, /NaN.*at \[1\] at \.inner/],
      ['a Map', new Map([['k', 1]]), /got a Map/],
      ['a Set', new Set([1]), /got a Set/],
      ['a Set nested in an array', [new Set([1])], /got a Set at \[0\]/],
      ['a class instance', new (class Point {})(), /got a Point/],
      ['a cycle', cyclic, /nested more than 1000 levels deep \(or a cycle\)/],
      ['an object nested 1001 levels deep', nested(1001), /nested more than 1000 levels/],
    ])(
      'refuses %s with EC_VALUE_REFUSED naming the field, and writes nothing',
      async (_l, value, shown) => {
        const store = await fresh();
        await store.upsert('ws-1', { kept: 1 }, 's');
        const write = Promise.resolve().then(() =>
          store.upsert('ws-1', { kept: 2, bad: value }, 's'),
        );
        await expect(write).rejects.toMatchObject({ code: 'EC_VALUE_REFUSED' });
        await expect(write).rejects.toThrow(/field `bad`/);
        await expect(write).rejects.toThrow(shown);
        expect((await store.getByWorkspaceId('ws-1'))?.fields).toEqual({ kept: 1 });
      },
    );

    it('hands out copies: a later write does not change an entry read before', async () => {
      const store = await fresh();
      await store.upsert('ws-1', { a: 1 }, 's');
      const before = await store.getByWorkspaceId('ws-1');
      await store.upsert('ws-1', { a: 2 }, 's');
      expect(before?.fields).toEqual({ a: 1 });
      expect((await store.getByWorkspaceId('ws-1'))?.fields).toEqual({ a: 2 });
    });

    it('keeps prototype keys as plain data', async () => {
      const store = await fresh();
      await store.upsert('ws-1', JSON.parse('{"__proto__": {"x": 1}, "constructor": 2}'), 's');
      const fields = (await store.getByWorkspaceId('ws-1'))?.fields as Record<string, unknown>;
      expect(Object.getPrototypeOf(fields)).toBe(Object.prototype);
      expect(Object.keys(fields).sort()).toEqual(['__proto__', 'constructor']);
      expect(({} as Record<string, unknown>).x).toBeUndefined();
    });

    it('emits upserts with the changed fields and removals with the previous entry', async () => {
      const store = await fresh();
      const changes: SnapshotChange[] = [];
      const unsubscribe = store.subscribe((change) => changes.push(change));
      await unsubscribe.ready;
      await store.upsert('ws-1', { a: 1, b: 1 }, 's');
      await store.upsert('ws-1', { a: 1, b: 2 }, 's');
      await store.remove('ws-1');
      await eventually(() => expect(changes).toHaveLength(3));
      expect(changes.map((change) => change.type)).toEqual(['upsert', 'upsert', 'remove']);
      // An upsert's change carries the fields it changed, with the entry's new version.
      expect(changes[1]).toEqual({
        type: 'upsert',
        workspaceId: 'ws-1',
        changed: ['b'],
        entry: {
          workspaceId: 'ws-1',
          fields: { b: 2 },
          version: 2,
          source: 's',
          updatedAt: expect.any(Number),
        },
      });
      expect(changes[2]).toMatchObject({
        workspaceId: 'ws-1',
        previous: { fields: { a: 1, b: 2 } },
      });
      unsubscribe();
    });

    it('stays silent and keeps the version for a write that changes nothing, and for an unknown removal', async () => {
      const store = await fresh();
      await store.upsert('ws-1', { a: 1, b: null }, 's');
      const changes: SnapshotChange[] = [];
      const unsubscribe = store.subscribe((change) => changes.push(change));
      await unsubscribe.ready;
      await store.upsert('ws-1', { a: 1, b: null, c: undefined }, 'other');
      await store.remove('nobody');
      await store.upsert('marker', { done: true }, 's');
      await eventually(() => expect(changes).toHaveLength(1));
      expect(changes[0]?.workspaceId).toBe('marker');
      expect(await store.getByWorkspaceId('ws-1')).toMatchObject({ version: 1, source: 's' });
      unsubscribe();
    });

    it('keeps workspaces whose ids hold braces apart from each other', async () => {
      const store = await fresh();
      const ids = ['a', 'a}b', '{a}', 'x{y', '}', '{}'];
      for (const [i, id] of ids.entries()) await store.upsert(id, { i }, 's', 10);
      await store.remove('a', 20);
      const all = await store.getAll();
      expect(all.map((entry) => [entry.workspaceId, entry.fields.i]).sort()).toEqual(
        ids
          .slice(1)
          .map((id) => [id, ids.indexOf(id)])
          .sort(),
      );
      await store.upsert('a', { i: 'late' }, 's', 15);
      await store.upsert('a}b', { i: 'later' }, 's', 15);
      expect(await store.getByWorkspaceId('a')).toBeUndefined();
      expect((await store.getByWorkspaceId('a}b'))?.fields).toEqual({ i: 'later' });
    });

    it('keeps ids with lone surrogates apart, each reading back as itself, in the feed too', async () => {
      const store = await fresh();
      const ids = ['\uD800', '\uDBFF', '\uDC00', 'a\uD800b', '%uD800', '\uD83D\uDE00'];
      const seen: string[] = [];
      const unsubscribe = store.subscribe((change) => seen.push(change.workspaceId));
      await unsubscribe.ready;
      for (const [i, id] of ids.entries()) await store.upsert(id, { i }, 's');
      const all = await store.getAll();
      expect(all.map((entry) => [entry.workspaceId, entry.fields.i]).sort()).toEqual(
        ids.map((id, i) => [id, i]).sort(),
      );
      for (const [i, id] of ids.entries()) {
        expect((await store.getByWorkspaceId(id))?.fields).toEqual({ i });
      }
      await eventually(() => expect(seen.sort()).toEqual([...ids].sort()));
      unsubscribe();
    });

    it('lists every entry with getAll', async () => {
      const store = await fresh();
      await store.upsert('ws-1', { a: 1 }, 's');
      await store.upsert('ws-2', { a: 2 }, 's');
      await store.remove('ws-2');
      await store.upsert('ws-3', { a: 3 }, 's');
      const all = await store.getAll();
      expect(all.map((entry) => [entry.workspaceId, entry.fields]).sort()).toEqual([
        ['ws-1', { a: 1 }],
        ['ws-3', { a: 3 }],
      ]);
    });

    it('with timestamps, overwrites a field only with a newer write, keeping fields an older write alone carries', async () => {
      const store = await fresh();
      await store.upsert('ws-1', { a: 'new', b: 'new' }, 's', 20);
      await store.upsert('ws-1', { a: 'old', c: 'only-old' }, 's', 10);
      expect((await store.getByWorkspaceId('ws-1'))?.fields).toEqual({
        a: 'new',
        b: 'new',
        c: 'only-old',
      });
    });

    it('with timestamps, keeps both writers’ fields', async () => {
      const store = await fresh();
      await store.upsert('ws-1', { status: 'READY' }, 'replica-a', 10);
      await store.upsert('ws-1', { isWorking: true }, 'replica-b', 11);
      expect((await store.getByWorkspaceId('ws-1'))?.fields).toEqual({
        status: 'READY',
        isWorking: true,
      });
    });

    it('with timestamps, compares fractions of a millisecond exactly', async () => {
      const store = await fresh();
      const base = 1_764_417_600_000;
      const step = 2 ** -12;
      await store.upsert('ws-1', { a: 'second' }, 's', base + 2 * step);
      await store.upsert('ws-1', { a: 'first' }, 's', base + step);
      expect((await store.getByWorkspaceId('ws-1'))?.fields).toEqual({ a: 'second' });
      await store.upsert('ws-1', { a: 'third' }, 's', base + 3 * step);
      expect(await store.getByWorkspaceId('ws-1')).toMatchObject({
        fields: { a: 'third' },
        updatedAt: base + 3 * step,
      });
      await store.remove('ws-1', base + 4 * step);
      await store.upsert('ws-1', { a: 'late' }, 's', base + 4 * step);
      expect(await store.getByWorkspaceId('ws-1')).toBeUndefined();
      await store.upsert('ws-1', { a: 'after' }, 's', base + 5 * step);
      expect((await store.getByWorkspaceId('ws-1'))?.fields).toEqual({ a: 'after' });
    });

    it('with timestamps, ignores a write not newer than the removal', async () => {
      const store = await fresh();
      await store.upsert('ws-1', { a: 1 }, 's', 10);
      await store.remove('ws-1', 20);
      await store.upsert('ws-1', { a: 2 }, 's', 15);
      await store.upsert('ws-1', { a: 3 }, 's', 20);
      expect(await store.getByWorkspaceId('ws-1')).toBeUndefined();
      await store.upsert('ws-1', { a: 4 }, 's', 21);
      expect((await store.getByWorkspaceId('ws-1'))?.fields).toEqual({ a: 4 });
    });
  });
}
