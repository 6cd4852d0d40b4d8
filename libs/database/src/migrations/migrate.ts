/**
 * Schema migrations at service start-up, with Kysely's Migrator. Each service keeps its migration
 * history inside its own schema (`<schema>.kysely_migration`), creating the schema when missing.
 *
 * Concurrency: Kysely's PostgreSQL adapter takes a session advisory lock (`pg_advisory_lock`, one
 * fixed key per database) around the whole run and reads the history only once it holds the
 * lock, so two instances starting at once run each migration once; the second waits, then finds
 * nothing pending. All pending migrations run in ONE transaction: if one fails, none is applied.
 *
 * Migrations must not name a schema: they run with `search_path` set to the handle's schema, so
 * the same migrations build a service's live schema and a rebuild schema alike.
 */
import type { Kysely } from 'kysely';
import { Migrator, type Migration, type MigrationResult } from 'kysely/migration';

import { MigrationError } from '../errors.js';
import { assertIdentifier } from '../identifiers.js';

export type { Migration };

export interface MigrationReport {
  /** Names of the migrations this call applied, in order (empty when up to date). */
  readonly applied: readonly string[];
}

/**
 * Applies every pending migration (names sort lexically: `0001_init`, `0002_...`). New names
 * must sort after those already applied. Throws {@link MigrationError} naming the failed migration.
 */
export async function migrateToLatest(
  handle: { readonly db: Kysely<any>; readonly schema: string }, // eslint-disable-line @typescript-eslint/no-explicit-any
  migrations: Readonly<Record<string, Migration>>,
): Promise<MigrationReport> {
  const schema = assertIdentifier('schema', handle.schema);
  const migrator = new Migrator({
    db: handle.db,
    provider: { getMigrations: async () => ({ ...migrations }) },
    migrationTableSchema: schema,
  });
  const { error, results = [] } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results.find((result: MigrationResult) => result.status === 'Error');
    throw new MigrationError(schema, failed?.migrationName, error);
  }
  return {
    applied: results.filter((result) => result.status === 'Success').map((result) => result.migrationName),
  };
}
