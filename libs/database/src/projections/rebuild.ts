/**
 * Rebuilding a projection from its stream into a fresh schema, next to the live one:
 * `<base>_rebuild_<n>` is created, migrated with the service's own migrations, and fed the
 * source through the same `applyProjectionBatch` as live consumption, so both paths write the
 * same rows (compare with `hashSchemaState`).
 *
 * Swapping is the caller's decision (`swapSchemas`), because it must be coordinated with the live
 * consumer: stop it, let the rebuild catch up to the stream's tail (or rebuild again), swap, and
 * restart the consumer from the swapped-in checkpoint (`readCheckpoint(...).lastSequence + 1`),
 * not from the durable consumer's ack floor: events the old schema applied after the rebuild's
 * last sequence exist only in the retired schema.
 */
import { sql, type Kysely } from 'kysely';

import { createDatabase } from '../connection/create-database.js';
import { ProjectionRebuildError, SchemaSwapError } from '../errors.js';
import { assertIdentifier } from '../identifiers.js';
import { migrateToLatest, type Migration } from '../migrations/migrate.js';
import {
  applyProjectionBatch,
  readCheckpoint,
  type ProjectionApply,
  type SequencedEvent,
} from './apply-projection-batch.js';

export interface RebuildProjectionOptions<DB, E> {
  readonly connectionString: string;
  /** The live schema's name; the rebuild goes into `<baseSchema>_rebuild_<n>`. */
  readonly baseSchema: string;
  /** The service's migrations (including the projection checkpoint migration). */
  readonly migrations: Readonly<Record<string, Migration>>;
  readonly projection: string;
  readonly stream: string;
  /** Events in stream order, e.g. an ordered consumer from sequence 1. */
  readonly source: AsyncIterable<SequencedEvent<E>> | Iterable<SequencedEvent<E>>;
  readonly apply: ProjectionApply<DB, E>;
  /** Events per transaction. Default 500. */
  readonly batchSize?: number;
  /** Use this schema name instead of the next `<base>_rebuild_<n>`; it must not exist. */
  readonly targetSchema?: string;
  /** Keep the half-built schema when the rebuild fails (to inspect it). Default false: dropped. */
  readonly keepOnFailure?: boolean;
  readonly applicationName?: string;
}

export interface RebuildResult {
  /** The schema that now holds the rebuilt projection. */
  readonly schema: string;
  /** Its checkpoint: the last sequence applied (0n for an empty source). */
  readonly lastSequence: bigint;
  /** Events applied. */
  readonly count: number;
  readonly batches: number;
}

const DUPLICATE_SCHEMA = '42P06';

export async function rebuildProjection<DB, E>(
  options: RebuildProjectionOptions<DB, E>,
): Promise<RebuildResult> {
  const base = assertIdentifier('schema', options.baseSchema);
  const batchSize = Math.max(1, options.batchSize ?? 500);
  let schema: string | undefined;
  const admin = createDatabase<unknown>({
    connectionString: options.connectionString,
    schema: base,
    poolSize: 1,
  });
  try {
    schema = await createFreshSchema(admin.db, base, options.targetSchema);
  } catch (error) {
    await admin.destroy();
    throw new ProjectionRebuildError(options.projection, options.targetSchema, error);
  }

  const handle = createDatabase<DB>({
    connectionString: options.connectionString,
    schema,
    poolSize: 2,
    applicationName: options.applicationName ?? `rebuild:${options.projection}`,
  });
  try {
    await migrateToLatest(handle, options.migrations);
    const ref = { projection: options.projection, stream: options.stream };
    let count = 0;
    let batches = 0;
    let buffer: Array<SequencedEvent<E>> = [];
    const flush = async (): Promise<void> => {
      if (buffer.length === 0) return;
      const outcome = await applyProjectionBatch(handle.db, ref, buffer, options.apply);
      batches += 1;
      if (outcome.kind === 'APPLIED') count += outcome.count;
      buffer = [];
    };
    for await (const item of options.source) {
      buffer.push(item);
      if (buffer.length >= batchSize) await flush();
    }
    await flush();
    const checkpoint = await readCheckpoint(handle.db, options.projection);
    return { schema, lastSequence: checkpoint?.lastSequence ?? 0n, count, batches };
  } catch (error) {
    if (!options.keepOnFailure) await dropSchema(admin.db, schema).catch(() => undefined);
    throw new ProjectionRebuildError(options.projection, schema, error);
  } finally {
    await handle.destroy();
    await admin.destroy();
  }
}

/**
 * Puts `replacement` in place of `live` in one transaction: `live` is renamed to `retiredAs`
 * (default `<live>_retired_<n>`), `replacement` to `live`. Sessions whose `search_path` names
 * `live` see the new tables from their next statement on. Returns the retired schema's name.
 */
export async function swapSchemas<DB>(
  db: Kysely<DB>,
  options: { readonly live: string; readonly replacement: string; readonly retiredAs?: string },
): Promise<{ readonly retired: string }> {
  const live = assertIdentifier('schema', options.live);
  const replacement = assertIdentifier('schema', options.replacement);
  try {
    return await db.transaction().execute(async (trx) => {
      const retired = options.retiredAs
        ? assertIdentifier('schema', options.retiredAs)
        : await nextSchemaName(trx, `${live}_retired_`);
      await sql`alter schema ${sql.id(live)} rename to ${sql.id(retired)}`.execute(trx);
      await sql`alter schema ${sql.id(replacement)} rename to ${sql.id(live)}`.execute(trx);
      return { retired };
    });
  } catch (error) {
    throw new SchemaSwapError(live, replacement, error);
  }
}

/** `DROP SCHEMA IF EXISTS ... CASCADE`: for retired and abandoned rebuild schemas. */
export async function dropSchema<DB>(db: Kysely<DB>, schema: string): Promise<void> {
  await sql`drop schema if exists ${sql.id(assertIdentifier('schema', schema))} cascade`.execute(db);
}

async function createFreshSchema(
  db: Kysely<unknown>,
  base: string,
  target: string | undefined,
): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    const name = target ? assertIdentifier('schema', target) : await nextSchemaName(db, `${base}_rebuild_`);
    try {
      await sql`create schema ${sql.id(name)}`.execute(db);
      return name;
    } catch (error) {
      const raced = (error as { code?: string }).code === DUPLICATE_SCHEMA;
      if (target || !raced || attempt >= 5) throw error;
    }
  }
}

/** `<prefix><n>` for the smallest n above every existing one. */
async function nextSchemaName<DB>(db: Kysely<DB>, prefix: string): Promise<string> {
  const { rows } = await sql<{ n: bigint | null }>`
    select max(substring(nspname from ${prefix.length + 1}::int)::bigint) as n
    from pg_namespace
    where starts_with(nspname, ${prefix}) and substring(nspname from ${prefix.length + 1}::int) ~ '^[0-9]{1,18}$'`.execute(
    db,
  );
  const next = (rows[0]?.n ?? 0n) + 1n;
  return assertIdentifier('schema', `${prefix}${next}`);
}
