import { describe, expect, it } from 'vitest';
import type {
  Fields,
  Patch,
  SnapshotChange,
  SnapshotEntry,
  StoreErrorHandler,
  UpsertItem,
  UpsertOutcome,
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
    options?: { since?: string | undefined },
  ): (() => void) & { ready?: Promise<void> };
  position(): string | Promise<string>;
  upsertMany(
    items: readonly UpsertItem[],
  ): readonly UpsertOutcome[] | Promise<readonly UpsertOutcome[]>;
}

/** What the contract asks of a fresh store: reports, and a feed that keeps few changes. */
export interface ContractOptions {
  onError?: StoreErrorHandler;
  feedLength?: number;
}

/** The workspace a change is about, or `reset` for a reset. */
export const workspaceOf = (change: SnapshotChange): string =>
  change.type === 'reset' ? 'reset' : change.workspaceId;

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
  fresh: (options?: ContractOptions) => Promise<ContractStore>,
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
      const second = store.subscribe((change) => seen.push(workspaceOf(change)));
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
        id: expect.any(String),
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
      expect(changes.map(workspaceOf)).toEqual(['marker']);
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
      const unsubscribe = store.subscribe((change) => seen.push(workspaceOf(change)));
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

  describeFeedContract(name, fresh);
  describeBatchContract(name, fresh);
}

/** `upsertMany`: each item as its own upsert, one outcome per item. */
function describeBatchContract(
  name: string,
  fresh: (options?: ContractOptions) => Promise<ContractStore>,
): void {
  const item = (workspaceId: string, fields: Patch, timestamp?: number): UpsertItem => ({
    workspaceId,
    fields,
    source: 'batch',
    timestamp,
    call: { signal: new AbortController().signal },
  });

  describe(`${name}: upsertMany`, () => {
    it('writes every item as its upsert would, with one outcome each, in order', async () => {
      const store = await fresh();
      const seen: SnapshotChange[] = [];
      const unsubscribe = store.subscribe((change) => seen.push(change));
      await unsubscribe.ready;
      await store.upsert('ws-0', { a: 0, keep: true }, 's', 10);
      const ids = Array.from({ length: 40 }, (_, i) => `ws-${i}`);
      const outcomes = await store.upsertMany(ids.map((id, i) => item(id, { a: i }, 20)));
      expect(outcomes).toEqual(ids.map(() => ({ status: 'fulfilled' })));
      expect(await store.getByWorkspaceId('ws-0')).toMatchObject({
        fields: { a: 0, keep: true },
        version: 1,
      });
      expect(await store.getByWorkspaceId('ws-39')).toMatchObject({
        fields: { a: 39 },
        source: 'batch',
        updatedAt: 20,
      });
      await eventually(() => expect(seen).toHaveLength(1 + 39));
      unsubscribe();
    });

    it('fails only the item whose value is refused, or whose signal is aborted', async () => {
      const store = await fresh();
      const aborted = new AbortController();
      aborted.abort(new Error('aborted before it was sent'));
      const outcomes = await store.upsertMany([
        item('ws-1', { a: 1 }),
        item('ws-2', { a: Number.NaN }),
        { ...item('ws-3', { a: 3 }), call: { signal: aborted.signal } },
        item('ws-4', { a: 4 }),
      ]);
      expect(outcomes.map((outcome) => outcome.status)).toEqual([
        'fulfilled',
        'rejected',
        'rejected',
        'fulfilled',
      ]);
      expect(outcomes[1]).toMatchObject({ reason: { code: 'EC_VALUE_REFUSED' } });
      expect((await store.getAll()).map((entry) => entry.workspaceId).sort()).toEqual([
        'ws-1',
        'ws-4',
      ]);
    });

    it('keeps per-field last-writer-wins and removals per item', async () => {
      const store = await fresh();
      await store.upsert('ws-1', { a: 'newer' }, 's', 30);
      await store.remove('ws-2', 30);
      await store.upsertMany([item('ws-1', { a: 'older', b: 1 }, 20), item('ws-2', { a: 1 }, 20)]);
      expect((await store.getByWorkspaceId('ws-1'))?.fields).toEqual({ a: 'newer', b: 1 });
      expect(await store.getByWorkspaceId('ws-2')).toBeUndefined();
    });
  });
}

/** `ws@version` of each change, `reset` for a reset: what a subscriber saw, in order. */
export const seenOf = (changes: SnapshotChange[]): string[] =>
  changes.map((change) =>
    change.type === 'reset'
      ? 'reset'
      : `${change.workspaceId}@${change.type === 'upsert' ? change.entry.version : 'removed'}`,
  );

/** The change feed's positions: replay after `since`, live after, reset when it cannot. */
function describeFeedContract(
  name: string,
  fresh: (options?: ContractOptions) => Promise<ContractStore>,
): void {
  describe(`${name}: change feed positions`, () => {
    it('replays every change after `since`, then goes on live', async () => {
      const store = await fresh();
      const first: SnapshotChange[] = [];
      const all = store.subscribe((change) => first.push(change));
      await all.ready;
      for (let i = 1; i <= 4; i++) await store.upsert(`ws-${i}`, { i }, 's');
      await store.remove('ws-2');
      await eventually(() => expect(first).toHaveLength(5));
      const ids = first.map((change) => change.id);
      expect(new Set(ids).size).toBe(5);

      const resumed: SnapshotChange[] = [];
      const later = store.subscribe((change) => resumed.push(change), { since: ids[1] });
      await later.ready;
      await eventually(() => expect(resumed).toHaveLength(3));
      // Every change after `since`, once: the ones the first subscriber got after it. The Redis
      // store orders each workspace's changes, not the changes of workspaces in different feed
      // shards, so which three those are depends on the order the first subscriber read them.
      expect(seenOf(resumed).sort()).toEqual(seenOf(first.slice(2)).sort());
      expect(seenOf(resumed)).toHaveLength(3);
      await store.upsert('ws-5', { i: 5 }, 's');
      await eventually(() => expect(seenOf(resumed)).toHaveLength(4));
      expect(seenOf(resumed)[3]).toBe('ws-5@1');
      all();
      later();
    });

    it('starts after `position()`: nothing before it, everything after it', async () => {
      const store = await fresh();
      await store.upsert('ws-1', { a: 1 }, 's');
      const position = await store.position();
      await store.upsert('ws-1', { a: 2 }, 's');
      await store.upsert('ws-2', { a: 1 }, 's');
      const seen: SnapshotChange[] = [];
      const unsubscribe = store.subscribe((change) => seen.push(change), { since: position });
      await unsubscribe.ready;
      await eventually(() => expect(seenOf(seen).sort()).toEqual(['ws-1@2', 'ws-2@1']));
      unsubscribe();
    });

    it('has no gap and no duplicate at the switch to live, with writes racing the subscribe', async () => {
      const store = await fresh();
      const reference: SnapshotChange[] = [];
      const whole = store.subscribe((change) => reference.push(change));
      await whole.ready;
      const writes = Array.from({ length: 120 }, (_, i) => i);
      let since: string | undefined;
      const resumed: SnapshotChange[] = [];
      let late: ReturnType<ContractStore['subscribe']> | undefined;
      const writing = (async () => {
        for (const i of writes) {
          await store.upsert(`ws-${i % 7}`, { i }, 's');
          if (i === 40) {
            await eventually(() => expect(reference.length).toBeGreaterThanOrEqual(41));
            since = reference[40]?.id;
            // Subscribed while the writes go on: its replay and its live part meet mid-stream.
            late = store.subscribe((change) => resumed.push(change), { since });
          }
        }
      })();
      await writing;
      await late?.ready;
      await eventually(() => expect(resumed).toHaveLength(79));
      await new Promise((resolve) => setTimeout(resolve, 50));
      const after = seenOf(reference.slice(41));
      // Every change after `since` once, each workspace's in the order they were applied.
      expect([...seenOf(resumed)].sort()).toEqual([...after].sort());
      for (let w = 0; w < 7; w++) {
        const of = (list: string[]) => list.filter((seen) => seen.startsWith(`ws-${w}@`));
        expect(of(seenOf(resumed))).toEqual(of(after));
      }
      whole();
      late?.();
    });

    it('starts with a reset when the changes after `since` are no longer kept', async () => {
      const store = await fresh({ feedLength: 1 });
      const seen: SnapshotChange[] = [];
      const first = store.subscribe((change) => seen.push(change));
      await first.ready;
      await store.upsert('ws-1', { n: 0 }, 's');
      await eventually(() => expect(seen).toHaveLength(1));
      const since = seen[0]?.id;
      first();
      // Enough writes of one workspace that its feed shard is trimmed past `since`.
      for (let n = 1; n <= 300; n++) await store.upsert('ws-1', { n }, 's');
      const resumed: SnapshotChange[] = [];
      const late = store.subscribe((change) => resumed.push(change), { since });
      await late.ready;
      await eventually(() => expect(resumed.map((change) => change.type)).toEqual(['reset']));
      // After the reset, the subscriber reloads, and what follows comes live.
      expect((await store.getByWorkspaceId('ws-1'))?.fields).toEqual({ n: 300 });
      await store.upsert('ws-2', { n: 1 }, 's');
      await eventually(() => expect(seenOf(resumed)).toEqual(['reset', 'ws-2@1']));
      const resetAt = resumed[0]?.id as string;
      // The reset's position is one to resume from: after it, only what followed.
      const again: SnapshotChange[] = [];
      const third = store.subscribe((change) => again.push(change), { since: resetAt });
      await third.ready;
      await eventually(() => expect(seenOf(again)).toEqual(['ws-2@1']));
      late();
      third();
    });

    it("starts with a reset for a position that is not one of this store's", async () => {
      const store = await fresh();
      const other = await fresh();
      await other.upsert('ws-1', { a: 1 }, 's');
      const foreign = await other.position();
      for (const since of [foreign, 'not a position', '']) {
        const seen: SnapshotChange[] = [];
        const unsubscribe = store.subscribe((change) => seen.push(change), { since });
        await unsubscribe.ready;
        await eventually(() => expect(seenOf(seen)).toEqual(['reset']));
        unsubscribe();
      }
    });

    it('refuses a `since` that is not a string, naming it', async () => {
      const store = await fresh();
      expect(() => store.subscribe(() => {}, { since: 42 as unknown as string })).toThrow(
        /`since` to be a change's id \(a string\), got .*42/,
      );
      expect(() => store.subscribe(() => {}, { sinse: 'x' } as { since?: string })).toThrow(
        /sinse/,
      );
    });
  });
}
