/**
 * Errors raised by @longtail/database. Each is a named class with a stable `code` and, where
 * there is one, the underlying error as `cause` (the PostgreSQL error, or the projection's own
 * exception), so a user sees a clear message and an operator sees the cause.
 */

export const DatabaseErrorCode = {
  INVALID_IDENTIFIER: 'DB_INVALID_IDENTIFIER',
  MIGRATION_FAILED: 'DB_MIGRATION_FAILED',
  PROJECTION_BATCH_NOT_INCREASING: 'DB_PROJECTION_BATCH_NOT_INCREASING',
  PROJECTION_STREAM_MISMATCH: 'DB_PROJECTION_STREAM_MISMATCH',
  PROJECTION_APPLY_FAILED: 'DB_PROJECTION_APPLY_FAILED',
  PROJECTION_REBUILD_FAILED: 'DB_PROJECTION_REBUILD_FAILED',
  SCHEMA_SWAP_FAILED: 'DB_SCHEMA_SWAP_FAILED',
} as const;

export type DatabaseErrorCode = (typeof DatabaseErrorCode)[keyof typeof DatabaseErrorCode];

/** Base class of every error this library throws. */
export abstract class DatabaseError extends Error {
  abstract readonly code: DatabaseErrorCode;
}

/** A schema, table or column name that is not a plain lower-case SQL identifier. */
export class InvalidIdentifierError extends DatabaseError {
  override readonly name = 'InvalidIdentifierError';
  readonly code = DatabaseErrorCode.INVALID_IDENTIFIER;
  constructor(
    readonly kind: string,
    readonly value: string,
  ) {
    super(
      `Invalid ${kind} name ${JSON.stringify(value)}: use 1-63 characters of [a-z0-9_], starting with a letter or _`,
    );
  }
}

/** A migration failed; the whole run was rolled back (migrations run in one transaction). */
export class MigrationError extends DatabaseError {
  override readonly name = 'MigrationError';
  readonly code = DatabaseErrorCode.MIGRATION_FAILED;
  constructor(
    readonly schema: string,
    /** The migration that threw, or undefined when the run failed before any (e.g. a corrupted history). */
    readonly migrationName: string | undefined,
    cause: unknown,
  ) {
    const what = migrationName === undefined ? 'Migrations' : `Migration "${migrationName}"`;
    super(`${what} failed in schema "${schema}": ${messageOf(cause)}`, { cause });
  }
}

/** The events of one batch must have strictly increasing stream sequences. */
export class ProjectionBatchNotIncreasingError extends DatabaseError {
  override readonly name = 'ProjectionBatchNotIncreasingError';
  readonly code = DatabaseErrorCode.PROJECTION_BATCH_NOT_INCREASING;
  constructor(
    readonly projection: string,
    readonly index: number,
    readonly previous: bigint | undefined,
    readonly sequence: unknown,
  ) {
    super(
      previous === undefined
        ? `Projection "${projection}": event #${index} has sequence ${String(sequence)}; sequences must be positive bigints`
        : `Projection "${projection}": event #${index} has sequence ${String(sequence)}, not above the previous ${previous}; a batch must have strictly increasing sequences`,
    );
  }
}

/** The checkpoint row says this projection follows another stream. */
export class ProjectionStreamMismatchError extends DatabaseError {
  override readonly name = 'ProjectionStreamMismatchError';
  readonly code = DatabaseErrorCode.PROJECTION_STREAM_MISMATCH;
  constructor(
    readonly projection: string,
    readonly expectedStream: string,
    readonly checkpointStream: string,
  ) {
    super(
      `Projection "${projection}" was checkpointed against stream "${checkpointStream}", not "${expectedStream}"; ` +
        'rebuild it into a fresh schema to change its stream',
    );
  }
}

/** The projection's `apply` threw; its writes and the checkpoint were rolled back. */
export class ProjectionApplyError extends DatabaseError {
  override readonly name = 'ProjectionApplyError';
  readonly code = DatabaseErrorCode.PROJECTION_APPLY_FAILED;
  constructor(
    readonly projection: string,
    readonly fromSequence: bigint,
    readonly toSequence: bigint,
    cause: unknown,
  ) {
    super(
      `Projection "${projection}" failed to apply sequences ${fromSequence}..${toSequence} (rolled back): ${messageOf(cause)}`,
      {
        cause,
      },
    );
  }
}

/** A rebuild failed; the half-built schema was dropped unless kept on purpose. */
export class ProjectionRebuildError extends DatabaseError {
  override readonly name = 'ProjectionRebuildError';
  readonly code = DatabaseErrorCode.PROJECTION_REBUILD_FAILED;
  constructor(
    readonly projection: string,
    readonly schema: string | undefined,
    cause: unknown,
  ) {
    super(
      `Rebuild of projection "${projection}"${schema ? ` into schema "${schema}"` : ''} failed: ${messageOf(cause)}`,
      { cause },
    );
  }
}

export class SchemaSwapError extends DatabaseError {
  override readonly name = 'SchemaSwapError';
  readonly code = DatabaseErrorCode.SCHEMA_SWAP_FAILED;
  constructor(
    readonly live: string,
    readonly replacement: string,
    cause: unknown,
  ) {
    super(`Swapping schema "${replacement}" in as "${live}" failed (nothing changed): ${messageOf(cause)}`, {
      cause,
    });
  }
}

/** True when `error` is one of this library's errors, optionally with the given code. */
export function isDatabaseError(error: unknown, code?: DatabaseErrorCode): error is DatabaseError {
  return error instanceof DatabaseError && (code === undefined || error.code === code);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
