import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPostgresSnapshotStore,
  type PostgresSnapshotStore,
  type PostgresStoreOptions,
} from '../src/stores/postgres.js';
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
