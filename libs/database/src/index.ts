/**
 * @longtail/database: PostgreSQL access for services. A pool + Kysely handle bound to the
 * service's own schema, start-up migrations, and exactly-once projections (rows and stream
 * checkpoint in one transaction) that can be rebuilt from the stream and compared by hash.
 */
export {
  createDatabase,
  type CreateDatabaseOptions,
  type DatabaseHandle,
} from './connection/create-database.js';
export { pingDatabase, type DatabasePing } from './connection/health.js';
export { migrateToLatest, type Migration, type MigrationReport } from './migrations/migrate.js';
export {
  PROJECTION_CHECKPOINTS_MIGRATION,
  projectionCheckpointsMigration,
  withProjectionCheckpoints,
  type ProjectionCheckpointTables,
  type ProjectionCheckpointsTable,
} from './projections/checkpoint-table.js';
export {
  applyProjectionBatch,
  readCheckpoint,
  type ProjectionApply,
  type ProjectionCheckpoint,
  type ProjectionOutcome,
  type ProjectionRef,
  type SequencedEvent,
} from './projections/apply-projection-batch.js';
export {
  dropSchema,
  rebuildProjection,
  swapSchemas,
  type RebuildProjectionOptions,
  type RebuildResult,
} from './projections/rebuild.js';
export { fillStreamGaps, ProjectionGapTooLargeError, type ProjectionGapSource } from './projections/fill-stream-gaps.js';
export { hashSchemaState, type HashedTable, type SchemaStateHash } from './projections/schema-state-hash.js';
export {
  DatabaseError,
  DatabaseErrorCode,
  InvalidIdentifierError,
  isDatabaseError,
  MigrationError,
  ProjectionApplyError,
  ProjectionBatchNotIncreasingError,
  ProjectionRebuildError,
  ProjectionStreamMismatchError,
  SchemaSwapError,
} from './errors.js';
