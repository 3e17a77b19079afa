import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventCoalescer } from '../src/index.js';
import { createPostgresSnapshotStore, type PostgresStoreOptions } from '../src/stores/postgres.js';
import { itResumesAfterItsConnectionIsKilled } from './support/feed-resume.js';
import { type PostgresServer, startPostgresServer } from './support/postgres-server.js';
import { describeStoreContract, eventually, workspaceOf } from './support/store-contract.js';

let server: PostgresServer;
let pool: pg.Pool;
let tables = 0;

beforeAll(async () => {
  server = await startPostgresServer();
  pool = server.pool({ max: 20 });
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

/** A store on tables of its own, migrated, so that tests never see each other's rows. */
async function freshStore(options: PostgresStoreOptions = {}, on: pg.Pool = pool) {
  const table = `t${++tables}`;
  const store = createPostgresSnapshotStore(on, { table, pollMs: 200, ...options });
  await store.migrate();
  return store;
}

describeStoreContract('PostgreSQL store', async (options) => freshStore(options));

describe('createPostgresSnapshotStore', () => {
  it('delivers a write made through one pool to a subscriber on another', async () => {
    const writer = await freshStore();
    const other = server.pool({ max: 4 });
    const reader = createPostgresSnapshotStore(other, { table: `t${tables}`, pollMs: 5000 });
    const seen: string[] = [];
    const unsubscribe = reader.subscribe((change) =>
      seen.push(`${change.type} ${workspaceOf(change)}`),
    );
    await unsubscribe.ready;
    await writer.upsert('ws-1', { a: 1 }, 's');
    await writer.remove('ws-1');
    // Long before the poll: the NOTIFY woke the reader.
    await eventually(() => expect(seen).toEqual(['upsert ws-1', 'remove ws-1']), 1000);
    unsubscribe();
  });

  it('lets a tombstone expire, after which a late write may create the workspace again', async () => {
    const store = await freshStore({ tombstoneTtlMs: 50 });
    await store.remove('ws-1', 100);
    await store.upsert('ws-1', { a: 1 }, 's', 90);
    expect(await store.getByWorkspaceId('ws-1')).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 80));
    await store.upsert('ws-1', { a: 2 }, 's', 90);
    expect((await store.getByWorkspaceId('ws-1'))?.fields).toEqual({ a: 2 });
    const { rows } = await server.sql(
      `SELECT count(*)::int AS n FROM "public"."t${tables}_removals"`,
    );
    // Removals past their TTL are deleted by the next stamped removal.
    await store.remove('ws-other', 1);
    const after = await server.sql(`SELECT workspace_id FROM "public"."t${tables}_removals"`);
    expect(rows[0].n).toBe(1);
    expect(after.rows.map((row) => row.workspace_id)).toEqual(['ws-other']);
  });

  it('sends one statement per upsert, per removal and per batch', async () => {
    const store = await freshStore();
    const statements: string[] = [];
    const counting = {
      query: (text: string, values?: unknown[]) => {
        statements.push(text);
        return pool.query(text, values);
      },
      connect: () => pool.connect(),
    };
    const counted = createPostgresSnapshotStore(counting, { table: `t${tables}` });
    await counted.upsert('ws-1', { a: 1, b: 2 }, 's', 10);
    await counted.remove('ws-1', 20);
    await counted.upsertMany(
      Array.from({ length: 100 }, (_, i) => ({
        workspaceId: `ws-${i}`,
        fields: { i },
        source: 'batch',
        timestamp: 30,
        call: { signal: new AbortController().signal },
      })),
    );
    expect(statements).toHaveLength(3);
    expect(await store.getAll()).toHaveLength(100);
  });

  it('writes a patch of 50,000 fields, and one that changes a few of them, with timestamps', async () => {
    const store = await freshStore();
    const fields: Record<string, number> = {};
    for (let i = 0; i < 50_000; i++) fields[`f${i}`] = i;
    await store.upsert('ws-1', fields, 's', 10);
    // A later write of every field, an older one of some: each field keeps its newest value.
    const later = Object.fromEntries(Object.keys(fields).map((key) => [key, -1]));
    await store.upsert('ws-1', later, 's', 30);
    await store.upsert('ws-1', { f0: 'old', extra: 'new' }, 's', 20);
    const entry = await store.getByWorkspaceId('ws-1');
    expect(Object.keys(entry?.fields ?? {})).toHaveLength(50_001);
    expect(entry?.fields).toMatchObject({ f0: -1, f49999: -1, extra: 'new' });
    expect(entry?.version).toBe(3);
  }, 30_000);

  it('keeps ids with NUL and percent signs apart, each reading back as itself', async () => {
    const store = await freshStore();
    const ids = ['a\u0000b', 'a%0000b', '%', '%0025', 'a\u0000'];
    for (const [i, id] of ids.entries()) await store.upsert(id, { i }, 's');
    for (const [i, id] of ids.entries()) {
      expect((await store.getByWorkspaceId(id))?.fields).toEqual({ i });
    }
    expect((await store.getAll()).map((entry) => entry.workspaceId).sort()).toEqual(
      [...ids].sort(),
    );
  });

  it.each([
    ['a string with NUL', 'a\u0000b'],
    ['a lone surrogate', '\uD800'],
    ['a lone surrogate nested in an array', ['ok', { deep: '\uDC00x' }]],
  ])('refuses %s with EC_VALUE_REFUSED naming the field, and writes nothing', async (_l, value) => {
    const store = await freshStore();
    await store.upsert('ws-1', { kept: 1 }, 's');
    const write = store.upsert('ws-1', { kept: 2, bad: value }, 's');
    await expect(write).rejects.toMatchObject({ code: 'EC_VALUE_REFUSED' });
    await expect(write).rejects.toThrow(/field `bad`.*jsonb/);
    expect((await store.getByWorkspaceId('ws-1'))?.fields).toEqual({ kept: 1 });
  });

  it('keeps strings that only look like escapes, and surrogate pairs', async () => {
    const store = await freshStore();
    const fields = { slash: '\\u0000', pair: '\uD83D\uDE00', both: '\\\uD83D\uDE00\\ud800' };
    await store.upsert('ws-1', fields, 's');
    expect((await store.getByWorkspaceId('ws-1'))?.fields).toEqual(fields);
  });

  it('fails reads and writes fast while the database is down, and works again once it is back', async () => {
    const own = await startPostgresServer();
    try {
      const ownPool = own.pool({ max: 4, connectionTimeoutMillis: 2000 });
      const store = createPostgresSnapshotStore(ownPool, { pollMs: 100, onError: () => {} });
      await store.migrate();
      await store.upsert('ws-1', { a: 1 }, 's');
      const seen: string[] = [];
      const unsubscribe = store.subscribe((change) => seen.push(workspaceOf(change)));
      await unsubscribe.ready;
      await own.down();
      const started = Date.now();
      await expect(store.getByWorkspaceId('ws-1')).rejects.toThrow();
      await expect(store.upsert('ws-1', { a: 2 }, 's')).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(1500);
      await own.up();
      await eventually(async () => {
        await store.upsert('ws-2', { a: 1 }, 's');
      }, 5000);
      // The subscriber reconnected by itself and read what came while it was away.
      await eventually(() => expect(seen).toContain('ws-2'), 5000);
      expect((await store.getByWorkspaceId('ws-1'))?.fields).toEqual({ a: 1 });
      unsubscribe();
    } finally {
      await own.stop();
    }
  }, 30_000);

  it('migrates from several replicas at once, and again later, keeping what is stored', async () => {
    const table = `t${++tables}`;
    const replicas = Array.from({ length: 4 }, () =>
      createPostgresSnapshotStore(pool, { table, schema: 'boards' }),
    );
    await Promise.all(replicas.map((store) => store.migrate()));
    await replicas[0]?.upsert('ws-1', { a: 1 }, 's');
    await replicas[1]?.migrate();
    expect((await replicas[2]?.getByWorkspaceId('ws-1'))?.fields).toEqual({ a: 1 });
    const { rows } = await server.sql(
      `SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'boards' AND table_name LIKE $1`,
      [`${table}%`],
    );
    expect(rows[0].n).toBe(4);
  });

  it('gives the LISTEN connection back on close(), so that the pool can end', async () => {
    const own = server.pool({ max: 2 });
    const store = createPostgresSnapshotStore(own, { table: 'closing' });
    await store.migrate();
    const seen: string[] = [];
    const unsubscribe = store.subscribe((change) => seen.push(workspaceOf(change)));
    await unsubscribe.ready;
    await store.upsert('ws-1', { a: 1 }, 's');
    await eventually(() => expect(seen).toEqual(['ws-1']));
    expect(own.totalCount).toBeGreaterThanOrEqual(1);
    store.close();
    await store.upsert('ws-2', { a: 1 }, 's');
    await own.end();
    // Closed subscriptions get nothing more.
    expect(seen).toEqual(['ws-1']);
  });

  it('refuses bad arguments, naming them', () => {
    expect(() => createPostgresSnapshotStore({} as never)).toThrow(
      /Expected `pool` to be a pg.Pool .*got an object/,
    );
    expect(() => createPostgresSnapshotStore(pool, { table: 'Snapshots; DROP' })).toThrow(
      /`options.table` to be a lower-case SQL name/,
    );
    expect(() => createPostgresSnapshotStore(pool, { feedLength: 0 })).toThrow(/feedLength/);
    expect(() => createPostgresSnapshotStore(pool, { tabel: 'x' } as never)).toThrow(
      /did you mean `table`/,
    );
  });
});

describe('PostgreSQL store under a role with only its grants', () => {
  it('works with the README’s GRANTs, and cannot touch another store’s tables', async () => {
    const mine = await freshStore();
    const mineTable = `t${tables}`;
    const theirs = await freshStore();
    const theirsTable = `t${tables}`;
    await theirs.upsert('ws-secret', { a: 1 }, 's');
    await server.sql('CREATE ROLE board_app LOGIN');
    await server.sql(mine.sql.grants('board_app'));
    const appPool = new pg.Pool({ connectionString: server.url('board_app'), max: 4 });
    appPool.on('error', () => {});
    try {
      const store = createPostgresSnapshotStore(appPool, { table: mineTable, pollMs: 200 });
      const seen: string[] = [];
      const unsubscribe = store.subscribe((change) => seen.push(workspaceOf(change)));
      await unsubscribe.ready;
      await store.upsert('ws-1', { a: 1 }, 's', 10);
      await store.upsertMany([
        {
          workspaceId: 'ws-2',
          fields: { b: 1 },
          source: 's',
          timestamp: 10,
          call: { signal: new AbortController().signal },
        },
      ]);
      await store.remove('ws-2', 20);
      expect((await store.getAll()).map((entry) => entry.workspaceId)).toEqual(['ws-1']);
      await eventually(() => expect(seen).toEqual(['ws-1', 'ws-2', 'ws-2']));
      unsubscribe();

      const other = createPostgresSnapshotStore(appPool, { table: theirsTable });
      await expect(other.getByWorkspaceId('ws-secret')).rejects.toMatchObject({ code: '42501' });
      await expect(other.upsert('ws-secret', { a: 2 }, 's')).rejects.toMatchObject({
        code: '42501',
      });
      await expect(other.remove('ws-secret')).rejects.toMatchObject({ code: '42501' });
      await expect(appPool.query(`SELECT * FROM "public"."${theirsTable}"`)).rejects.toMatchObject({
        code: '42501',
      });
      // Nor can it change the schema.
      await expect(store.migrate()).rejects.toMatchObject({ code: '42501' });
      expect((await theirs.getByWorkspaceId('ws-secret'))?.fields).toEqual({ a: 1 });
    } finally {
      await appPool.end();
    }
  });
});

describe('PostgreSQL store feed', () => {
  itResumesAfterItsConnectionIsKilled(
    async () => {
      const writer = await freshStore();
      const reader = createPostgresSnapshotStore(server.pool({ max: 4 }), {
        table: `t${tables}`,
        pollMs: 1000,
        onError: () => {},
      });
      return { reader, writer };
    },
    async () => {
      // The reader's LISTEN connection, back by itself after each kill.
      await eventually(async () => {
        const { rows } = await server.sql(
          `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE query LIKE 'LISTEN %'`,
        );
        expect(rows.filter((row) => row.killed).length).toBeGreaterThanOrEqual(1);
      }, 5000);
    },
  );
});

describe('EventCoalescer on the PostgreSQL store', () => {
  it('writes a wave of due workspaces in batches of batchSize, one statement each, all landed', async () => {
    const store = await freshStore();
    let statements = 0;
    const counting = {
      query: (text: string, values?: unknown[]) => {
        statements++;
        return pool.query(text, values);
      },
      connect: () => pool.connect(),
    };
    const counted = createPostgresSnapshotStore(counting, { table: `t${tables}` });
    const coalescer = new EventCoalescer(counted, {
      timestamps: true,
      batchSize: 100,
      canCreate: () => true,
    });
    for (let i = 0; i < 1000; i++) {
      coalescer.enqueue(`ws-${i}`, { n: i }, 'event:a');
      coalescer.enqueue(`ws-${i}`, { done: true }, 'event:b');
    }
    await coalescer.close();
    expect(coalescer.stats()).toMatchObject({ flushed: 1000, failed: 0 });
    // At least one statement per batch of 100, never one per workspace.
    expect(statements).toBeGreaterThanOrEqual(10);
    expect(statements).toBeLessThan(100);
    const all = await store.getAll();
    expect(all).toHaveLength(1000);
    expect(all.find((entry) => entry.workspaceId === 'ws-999')).toMatchObject({
      fields: { n: 999, done: true },
      version: 1,
      source: 'event:a+event:b',
    });
  });
});
