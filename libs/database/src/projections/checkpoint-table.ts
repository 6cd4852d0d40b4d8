/**
 * The projection checkpoint table: per projection, the stream it follows and the last stream
 * sequence whose effects are committed. It lives in each service's schema, created by a library
 * migration that the service includes in its own migration list.
 */
import { sql, type ColumnType } from 'kysely';
import type { Migration } from 'kysely/migration';

export interface ProjectionCheckpointsTable {
  projection: string;
  stream: string;
  last_sequence: ColumnType<bigint, bigint, bigint>;
  updated_at: ColumnType<Date, Date | undefined, Date>;
}

/** Add to a service's `DB` interface when its own queries read checkpoints. */
export interface ProjectionCheckpointTables {
  projection_checkpoints: ProjectionCheckpointsTable;
}

/** Sorts before a service's `0001_...` migrations. */
export const PROJECTION_CHECKPOINTS_MIGRATION = '0000_longtail_projection_checkpoints';

export const projectionCheckpointsMigration: Migration = {
  async up(db) {
    await db.schema
      .createTable('projection_checkpoints')
      .addColumn('projection', 'text', (column) => column.primaryKey())
      .addColumn('stream', 'text', (column) => column.notNull())
      .addColumn('last_sequence', 'bigint', (column) => column.notNull().check(sql`last_sequence >= 0`))
      .addColumn('updated_at', 'timestamptz', (column) => column.notNull().defaultTo(sql`now()`))
      .execute();
  },
  async down(db) {
    await db.schema.dropTable('projection_checkpoints').execute();
  },
};

/** The service's migrations plus the checkpoint table's, under {@link PROJECTION_CHECKPOINTS_MIGRATION}. */
export function withProjectionCheckpoints(
  migrations: Readonly<Record<string, Migration>>,
): Record<string, Migration> {
  if (
    PROJECTION_CHECKPOINTS_MIGRATION in migrations &&
    migrations[PROJECTION_CHECKPOINTS_MIGRATION] !== projectionCheckpointsMigration
  ) {
    throw new Error(
      `Migration name "${PROJECTION_CHECKPOINTS_MIGRATION}" is reserved for the projection checkpoint table`,
    );
  }
  return { [PROJECTION_CHECKPOINTS_MIGRATION]: projectionCheckpointsMigration, ...migrations };
}
