import { startPostgresServer, useDatabase, waitFor, type PostgresServer } from '@longtail/testenv';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import {
  createDatabase,
  InvalidIdentifierError,
  migrateToLatest,
  pingDatabase,
  type DatabaseHandle,
} from '../index.js';

describe('createDatabase', () => {
  const database = useDatabase({ prefix: 'connection' });
  const handles: Array<DatabaseHandle<unknown>> = [];
  afterEach(async () => {
    await Promise.all(handles.splice(0).map((h) => h.destroy()));
  });

  it('sets every connection’s search_path to the service schema', async () => {
    const handle = createDatabase<unknown>({
      connectionString: database().url,
      schema: 'svc_search',
      poolSize: 3,
      applicationName: 'svc-test',
    });
    handles.push(handle);
    await migrateToLatest(handle, {});
    // several concurrent queries, so several pooled connections
    const rows = await Promise.all(
      Array.from({ length: 3 }, () =>
        sql<{
          path: string;
          app: string;
        }>`select current_setting('search_path') as path, current_setting('application_name') as app, pg_sleep(0.05)`.execute(
          handle.db,
        ),
      ),
    );
    for (const {
      rows: [row],
    } of rows)
      expect(row).toMatchObject({ path: 'svc_search', app: 'svc-test' });
  });

  it('returns int8 as bigint and numeric as exact strings, for this pool only', async () => {
    const handle = createDatabase<unknown>({ connectionString: database().url, schema: 'svc_types' });
    handles.push(handle);
    const { rows } = await sql<Record<string, unknown>>`
      select 9007199254740993::int8 as big, count(*) as n,
             123456789012345678901234567890.000000000000000001::numeric as exact,
             array[1, 9007199254740993]::int8[] as bigs, array[0.1, 0.2]::numeric[] as exacts,
             '2026-11-25'::date as day`.execute(handle.db);
    expect(rows[0]).toEqual({
      big: 9007199254740993n,
      n: 1n,
      exact: '123456789012345678901234567890.000000000000000001',
      bigs: [1n, 9007199254740993n],
      exacts: ['0.1', '0.2'],
      day: '2026-11-25',
    });
    // pg's global parsers are untouched
    const pg = await import('pg');
    expect(pg.default.types.getTypeParser(20, 'text')('5')).toBe('5');
  });

  it('rejects a schema name that would need quoting', () => {
    expect(() => createDatabase({ connectionString: database().url, schema: 'Robert"; drop' })).toThrow(
      InvalidIdentifierError,
    );
  });

  it('pings with latency', async () => {
    const handle = createDatabase<unknown>({ connectionString: database().url, schema: 'svc_ping' });
    handles.push(handle);
    const ping = await pingDatabase(handle, 2_000);
    expect(ping.ok).toBe(true);
    expect(ping.latencyMs).toBeGreaterThan(0);
  });
});

describe('pool across a PostgreSQL restart', () => {
  let server: PostgresServer;
  let handle: DatabaseHandle<{ counters: { id: number; n: bigint } }>;
  const connectionErrors: Error[] = [];

  beforeAll(async () => {
    server = await startPostgresServer();
    handle = createDatabase({
      connectionString: server.url,
      schema: 'svc_restart',
      poolSize: 4,
      connectionTimeoutMs: 1_000,
      onConnectionError: (error) => connectionErrors.push(error),
    });
    await migrateToLatest(handle, {
      '0001': {
        up: (db) =>
          db.schema
            .createTable('counters')
            .addColumn('id', 'integer', (c) => c.primaryKey())
            .addColumn('n', 'bigint')
            .execute(),
      },
    });
    await handle.db.insertInto('counters').values({ id: 1, n: 0n }).execute();
  });
  afterAll(async () => {
    await handle?.destroy();
    await server?.destroy();
  });

  it('reports down while stopped and recovers after start, without crashing on idle-client errors', async () => {
    // given: several idle pooled connections and one held mid-transaction
    await Promise.all(Array.from({ length: 4 }, () => sql`select pg_sleep(0.02)`.execute(handle.db)));
    expect(handle.pool.idleCount).toBeGreaterThan(1);
    const held = handle.db.transaction().execute(async (trx) => {
      await trx.updateTable('counters').set({ n: 1n }).where('id', '=', 1).execute();
      await server.stop(); // PostgreSQL goes away while this transaction is open
      await trx.updateTable('counters').set({ n: 2n }).where('id', '=', 1).execute();
    });
    await expect(held).rejects.toThrow();

    // when it is down
    const down = await pingDatabase(handle, 500);
    expect(down.ok).toBe(false);

    // then it comes back
    await server.start();
    await waitFor(async () => (await pingDatabase(handle, 500)).ok, {
      timeoutMs: 10_000,
      what: 'pool to reconnect',
    });
    const row = await handle.db
      .selectFrom('counters')
      .select('n')
      .where('id', '=', 1)
      .executeTakeFirstOrThrow();
    expect(row.n).toBe(0n); // the interrupted transaction never committed
    expect(connectionErrors.length).toBeGreaterThan(0);
  });

  it('survives an immediate (crash-like) stop too', async () => {
    await Promise.all(Array.from({ length: 3 }, () => sql`select 1`.execute(handle.db)));
    await server.stop({ mode: 'immediate' });
    expect((await pingDatabase(handle, 500)).ok).toBe(false);
    await server.start();
    await waitFor(async () => (await pingDatabase(handle, 500)).ok, {
      timeoutMs: 10_000,
      what: 'pool to reconnect',
    });
    expect(await handle.db.selectFrom('counters').select('id').execute()).toEqual([{ id: 1 }]);
  });
});
