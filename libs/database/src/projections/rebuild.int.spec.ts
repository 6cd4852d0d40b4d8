import { useDatabase } from '@longtail/testenv';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  applyLedger,
  LEDGER,
  ledgerEvents,
  ledgerMigrations,
  range,
  type Credited,
  type LedgerTables,
} from '../../test/ledger-projection.fixture.js';
import {
  applyProjectionBatch,
  createDatabase,
  dropSchema,
  hashSchemaState,
  migrateToLatest,
  ProjectionRebuildError,
  readCheckpoint,
  rebuildProjection,
  swapSchemas,
  type DatabaseHandle,
  type HashedTable,
  type SequencedEvent,
} from '../index.js';

const TABLES: HashedTable[] = [
  { name: 'entries', orderBy: 'seq' },
  { name: 'balances', orderBy: ['account'] },
  { name: 'projection_checkpoints', orderBy: 'projection', exclude: ['updated_at'] },
];

/** The stream, as an async source (a consumer would yield the same). */
async function* streamOf(
  events: ReadonlyArray<SequencedEvent<Credited>>,
): AsyncGenerator<SequencedEvent<Credited>> {
  for (const event of events) yield event;
}

describe('rebuildProjection', () => {
  const database = useDatabase({ prefix: 'rebuild' });
  let live: DatabaseHandle<LedgerTables>;
  const stream = ledgerEvents(range(1, 40).filter((seq) => seq % 7 !== 0)); // sparse, like a filtered consumer

  beforeAll(async () => {
    live = createDatabase<LedgerTables>({ connectionString: database().url, schema: 'ledger' });
    await migrateToLatest(live, ledgerMigrations);
    // live consumption: uneven batches, with redeliveries and overlaps
    const batches = [
      stream.slice(0, 5),
      stream.slice(0, 5),
      stream.slice(3, 12),
      stream.slice(12, 13),
      stream.slice(10, 30),
      stream.slice(30),
    ];
    for (const batch of batches) await applyProjectionBatch(live.db, LEDGER, batch, applyLedger);
  });
  afterAll(async () => live?.destroy());

  it('rebuilds into a fresh schema with the same state hash as live application', async () => {
    const result = await rebuildProjection<LedgerTables, Credited>({
      connectionString: database().url,
      baseSchema: 'ledger',
      migrations: ledgerMigrations,
      ...LEDGER,
      source: streamOf(stream),
      apply: applyLedger,
      batchSize: 4,
    });

    expect(result).toEqual({
      schema: 'ledger_rebuild_1',
      lastSequence: 40n,
      count: stream.length,
      batches: Math.ceil(stream.length / 4),
    });
    const liveHash = await hashSchemaState(live.db, 'ledger', TABLES);
    const rebuiltHash = await hashSchemaState(live.db, result.schema, TABLES);
    expect(rebuiltHash).toEqual(liveHash);
    expect(liveHash.tables.find((t) => t.name === 'entries')?.rows).toBe(stream.length);

    // a second rebuild gets the next name
    const again = await rebuildProjection<LedgerTables, Credited>({
      connectionString: database().url,
      baseSchema: 'ledger',
      migrations: ledgerMigrations,
      ...LEDGER,
      source: stream.slice(0, 10),
      apply: applyLedger,
    });
    expect(again.schema).toBe('ledger_rebuild_2');
    // ... and a different history hashes differently
    expect((await hashSchemaState(live.db, again.schema, TABLES)).sha256).not.toBe(liveHash.sha256);
    await dropSchema(live.db, again.schema);
  });

  it('hashes rows, not their insertion order or the wall clock', async () => {
    const h = createDatabase<unknown>({ connectionString: database().url, schema: 'hash_a' });
    try {
      await migrateToLatest(h, {});
      await sql`create table hash_a.t (id int primary key, at timestamptz, v float8, n numeric)`.execute(
        h.db,
      );
      await sql`create schema hash_b; create table hash_b.t (id int primary key, at timestamptz, v float8, n numeric)`.execute(
        h.db,
      );
      await sql`insert into hash_a.t values (1, '2026-01-01T00:00:00Z', 0.1, 1.5), (2, null, 1e300, 10)`.execute(
        h.db,
      );
      await sql`set timezone = 'Asia/Tokyo'`.execute(h.db); // a session in another zone ...
      await sql`insert into hash_b.t values (2, null, 1e300, 10), (1, '2026-01-01T09:00:00+09', 0.1, 1.5)`.execute(
        h.db,
      );
      const table = [{ name: 't', orderBy: 'id' }];
      expect((await hashSchemaState(h.db, 'hash_a', table)).sha256).toBe(
        (await hashSchemaState(h.db, 'hash_b', table)).sha256,
      );
      await sql`update hash_b.t set n = 1.6 where id = 1`.execute(h.db);
      expect((await hashSchemaState(h.db, 'hash_a', table)).sha256).not.toBe(
        (await hashSchemaState(h.db, 'hash_b', table)).sha256,
      );
    } finally {
      await h.destroy();
    }
  });

  it('drops the half-built schema and names the projection when apply fails', async () => {
    const error = await rebuildProjection<LedgerTables, Credited>({
      connectionString: database().url,
      baseSchema: 'ledger',
      migrations: ledgerMigrations,
      ...LEDGER,
      targetSchema: 'ledger_broken',
      source: stream,
      batchSize: 5,
      apply: async (trx, events) => {
        if (events.some((e) => e.seq > 20n)) throw new Error('poison event');
        await applyLedger(trx, events);
      },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProjectionRebuildError);
    expect((error as Error).message).toMatch(
      /projection "test\.ledger" into schema "ledger_broken" failed: .*poison event/,
    );
    const { rows } = await sql<{
      n: bigint;
    }>`select count(*) as n from pg_namespace where nspname = 'ledger_broken'`.execute(live.db);
    expect(rows[0]?.n).toBe(0n);
  });

  it('swapSchemas puts the rebuild in place; a connection bound to the live name sees it', async () => {
    const rebuilt = await rebuildProjection<LedgerTables, Credited>({
      connectionString: database().url,
      baseSchema: 'ledger',
      migrations: ledgerMigrations,
      ...LEDGER,
      source: stream.slice(0, 3),
      apply: applyLedger,
    });
    const before = await readCheckpoint(live.db, LEDGER.projection);
    expect(before?.lastSequence).toBe(40n);

    const { retired } = await swapSchemas(live.db, { live: 'ledger', replacement: rebuilt.schema });

    expect(retired).toBe('ledger_retired_1');
    expect((await readCheckpoint(live.db, LEDGER.projection))?.lastSequence).toBe(3n); // same pool, new tables
    const { rows } = await sql<{ n: bigint }>`select count(*) as n from ledger_retired_1.entries`.execute(
      live.db,
    );
    expect(rows[0]?.n).toBe(BigInt(stream.length));
  });
});
