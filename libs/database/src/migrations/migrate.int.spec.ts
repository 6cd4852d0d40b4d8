import { useDatabase } from '@longtail/testenv';
import { sql, type Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';
import { afterEach, describe, expect, it } from 'vitest';

import { createDatabase, migrateToLatest, MigrationError, type DatabaseHandle } from '../index.js';

describe('migrateToLatest', () => {
  const database = useDatabase({ prefix: 'migrate' });
  const handles: Array<DatabaseHandle<unknown>> = [];
  afterEach(async () => {
    await Promise.all(handles.splice(0).map((h) => h.destroy()));
  });
  function open(schema: string): DatabaseHandle<unknown> {
    const handle = createDatabase<unknown>({ connectionString: database().url, schema });
    handles.push(handle);
    return handle;
  }
  const tablesIn = async (db: Kysely<unknown>, schema: string) =>
    (
      await sql<{
        tablename: string;
      }>`select tablename from pg_tables where schemaname = ${schema} order by tablename`.execute(db)
    ).rows.map((r) => r.tablename);

  const migrations: Record<string, Migration> = {
    '0001_items': {
      up: (db) =>
        db.schema
          .createTable('items')
          .addColumn('id', 'bigint', (c) => c.primaryKey())
          .execute(),
    },
    '0002_item_names': { up: (db) => db.schema.alterTable('items').addColumn('name', 'text').execute() },
  };

  it('creates the schema, applies everything once, then nothing', async () => {
    const handle = open('svc_a');

    expect(await migrateToLatest(handle, migrations)).toEqual({ applied: ['0001_items', '0002_item_names'] });
    expect(await migrateToLatest(handle, migrations)).toEqual({ applied: [] });

    expect(await tablesIn(handle.db, 'svc_a')).toEqual([
      'items',
      'kysely_migration',
      'kysely_migration_lock',
    ]);
    expect(await tablesIn(handle.db, 'public')).toEqual([]);
  });

  it('keeps each schema to itself: same migrations, separate tables and history', async () => {
    const a = open('svc_b');
    const b = open('svc_c');
    await migrateToLatest(a, migrations);
    await migrateToLatest(b, { '0001_items': migrations['0001_items']! });

    await sql`insert into items (id) values (1)`.execute(a.db);
    expect((await sql<{ n: bigint }>`select count(*) as n from items`.execute(b.db)).rows[0]?.n).toBe(0n);
    // b only ran its first migration; the second is still pending there
    expect(await migrateToLatest(b, migrations)).toEqual({ applied: ['0002_item_names'] });
  });

  it('runs each migration once when two instances start at once', async () => {
    const slow: Record<string, Migration> = {
      '0001_slow': {
        async up(db) {
          await sql`select pg_sleep(0.3)`.execute(db);
          // would fail on a second run: no IF NOT EXISTS
          await db.schema.createTable('once').addColumn('id', 'integer').execute();
        },
      },
    };
    const reports = await Promise.all([
      migrateToLatest(open('svc_d'), slow),
      migrateToLatest(open('svc_d'), slow),
    ]);
    expect(reports.map((r) => r.applied.length).sort()).toEqual([0, 1]);
  });

  it('names the failed migration and applies none of the run', async () => {
    const handle = open('svc_e');
    const broken: Record<string, Migration> = {
      ...migrations,
      '0003_broken': {
        up: async (db) => void (await sql`alter table missing_table add column x int`.execute(db)),
      },
    };

    const error = await migrateToLatest(handle, broken).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(MigrationError);
    expect((error as MigrationError).migrationName).toBe('0003_broken');
    expect((error as MigrationError).message).toMatch(
      /Migration "0003_broken" failed in schema "svc_e": .*missing_table/,
    );
    expect((error as MigrationError).cause).toMatchObject({ code: '42P01' });
    // one transaction: 0001 and 0002 rolled back with it
    expect(await tablesIn(handle.db, 'svc_e')).not.toContain('items');
    expect(await migrateToLatest(handle, migrations)).toEqual({ applied: ['0001_items', '0002_item_names'] });
  });

  it('refuses a migration named before one already applied', async () => {
    const handle = open('svc_f');
    await migrateToLatest(handle, migrations);
    const error = await migrateToLatest(handle, {
      ...migrations,
      '0000_late': { up: async () => undefined },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationError);
    expect((error as Error).message).toMatch(/corrupted migrations/);
  });
});
