/**
 * Replay: rebuilds every attribution projection from the start of the streams into a fresh
 * schema (`<base>_replay_<n>`, or a given name) and fingerprints it. The facts streams are read
 * first (ADAPTERS, DATANETS, the ATTRIBUTION policy events), then INFERENCE, each through the same
 * `AttributionProjector` as live consumption. Since every fact is immutable and epochs are cut by
 * markers in the INFERENCE stream, the rebuilt rows equal the live rows; `hashSchemaState` over
 * HASHED_TABLES proves it.
 */
import { sql, type Kysely } from 'kysely';

import {
  createDatabase,
  hashSchemaState,
  migrateToLatest,
  type SchemaStateHash,
  type SequencedEvent,
} from '@longtail/database';
import { replayStream, type MessagingConnection } from '@longtail/messaging';

import { FactBook } from '../facts/facts.js';
import { AttributionProjector } from '../ingest/attribution-projector.js';
import { parseAttributionEvent } from '../ingest/codec.js';
import { FACT_PROJECTIONS, type StreamEvent } from '../projections/facts-projection.js';
import { INFERENCE_PROJECTION } from '../projections/inference-projection.js';
import { ATTRIBUTION_MIGRATIONS, HASHED_TABLES } from '../projections/migrations.js';
import type { AttributionTables } from '../projections/schema.js';

export interface ReplayOptions {
  readonly conn: MessagingConnection;
  readonly connectionString: string;
  /** Live schema name; the replay goes to `<base>_replay_<n>` unless `targetSchema` is given. */
  readonly baseSchema?: string;
  readonly targetSchema?: string;
  /** Events per transaction for INFERENCE. Default 10000 (bigger batches aggregate more per row). */
  readonly batchSize?: number;
  /** Called once the facts streams are applied, before the first INFERENCE event is read. */
  readonly onFactsApplied?: () => void;
  /** Called after each INFERENCE batch with the count of events read so far. */
  readonly onProgress?: (eventsRead: number) => void;
}

export interface ReplayResult {
  readonly schema: string;
  readonly hash: SchemaStateHash;
  /** Events read per stream (valid ones; violations are skipped as the live consumer dead-letters them). */
  readonly events: Readonly<Record<string, number>>;
  readonly skipped: number;
}

export async function replayAttribution(options: ReplayOptions): Promise<ReplayResult> {
  const base = options.baseSchema ?? 'attribution';
  const admin = createDatabase<unknown>({
    connectionString: options.connectionString,
    schema: base,
    poolSize: 1,
  });
  let schema: string;
  try {
    schema = options.targetSchema ?? (await nextReplaySchema(admin.db as Kysely<unknown>, `${base}_replay_`));
    await sql`create schema ${sql.id(schema)}`.execute(admin.db);
  } finally {
    await admin.destroy();
  }
  const handle = createDatabase<AttributionTables>({
    connectionString: options.connectionString,
    schema,
    poolSize: 2,
    applicationName: 'attribution-replay',
  });
  try {
    await migrateToLatest(handle, ATTRIBUTION_MIGRATIONS);
    // Facts are replayed in full before INFERENCE: a fact missing then does not exist.
    const projector = new AttributionProjector(handle.db, new FactBook(), {
      factWaitMs: 0,
      factsCaughtUp: async () => true,
    });
    const events: Record<string, number> = {};
    let skipped = 0;
    for (const ref of [FACT_PROJECTIONS.adapters, FACT_PROJECTIONS.datanets, FACT_PROJECTIONS.policies]) {
      const read = await readInBatches(options.conn, ref.stream, ref.filterSubject, 500, (batch) =>
        projector.applyFacts(ref, batch),
      );
      events[ref.stream] = read.count;
      skipped += read.skipped;
    }
    options.onFactsApplied?.();
    const read = await readInBatches(
      options.conn,
      INFERENCE_PROJECTION.stream,
      undefined,
      options.batchSize ?? 10_000,
      async (batch, total) => {
        await projector.applyInference(batch);
        options.onProgress?.(total);
      },
    );
    events[INFERENCE_PROJECTION.stream] = read.count;
    skipped += read.skipped;
    const hash = await attributionStateHash(handle.db, schema);
    return { schema, hash, events, skipped };
  } finally {
    await handle.destroy();
  }
}

/** The fingerprint of attribution's projection state in `schema`. */
export function attributionStateHash(
  db: Kysely<AttributionTables>,
  schema: string,
): Promise<SchemaStateHash> {
  return hashSchemaState(db, schema, HASHED_TABLES);
}

async function readInBatches(
  conn: MessagingConnection,
  stream: string,
  filterSubject: string | undefined,
  batchSize: number,
  apply: (batch: SequencedEvent<StreamEvent>[], total: number) => Promise<unknown>,
): Promise<{ count: number; skipped: number }> {
  let batch: SequencedEvent<StreamEvent>[] = [];
  let count = 0;
  let skipped = 0;
  // One batch is applied while the next is read and decoded (order is kept: one apply at a time).
  let applying: Promise<unknown> = Promise.resolve();
  const source = replayStream(conn, {
    stream,
    ...(filterSubject ? { filterSubject } : {}),
    // Fewer, larger pull requests: each one is a write that wakes the server (measured: ~1.6 s of
    // socket writes per 200,000 events at the default 256 on the shared 2-core machine).
    pullSize: 4096,
    parse: parseAttributionEvent as never,
  });
  for await (const message of source) {
    if (!message.ok) {
      skipped += 1;
      continue;
    }
    batch.push({ seq: message.seq, event: message.event as unknown as StreamEvent });
    count += 1;
    if (batch.length >= batchSize) {
      const full = batch;
      const total = count;
      batch = [];
      await applying;
      applying = apply(full, total);
    }
  }
  await applying;
  if (batch.length > 0) await apply(batch, count);
  return { count, skipped };
}

async function nextReplaySchema(db: Kysely<unknown>, prefix: string): Promise<string> {
  const { rows } = await sql<{ n: bigint | null }>`
    select max(substring(nspname from ${prefix.length + 1})::bigint) as n from pg_namespace
    where starts_with(nspname, ${prefix}) and substring(nspname from ${prefix.length + 1}) ~ '^[0-9]{1,18}$'`.execute(
    db,
  );
  return `${prefix}${(rows[0]?.n ?? 0n) + 1n}`;
}
