import { useDatabase } from '@longtail/testenv';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';

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
  isDatabaseError,
  migrateToLatest,
  ProjectionApplyError,
  ProjectionBatchNotIncreasingError,
  ProjectionStreamMismatchError,
  readCheckpoint,
  type DatabaseHandle,
  type SequencedEvent,
} from '../index.js';

describe('applyProjectionBatch', () => {
  const database = useDatabase({ prefix: 'projection' });
  let handle: DatabaseHandle<LedgerTables>;
  let schemaCounter = 0;

  /** A fresh schema per test: projections start empty. */
  async function freshSchema(): Promise<DatabaseHandle<LedgerTables>> {
    schemaCounter += 1;
    const next = createDatabase<LedgerTables>({
      connectionString: database().url,
      schema: `ledger_${schemaCounter}`,
    });
    await migrateToLatest(next, ledgerMigrations);
    return next;
  }

  const handles: Array<DatabaseHandle<LedgerTables>> = [];
  afterAll(async () => {
    await Promise.all(handles.map((h) => h.destroy()));
  });
  async function given(): Promise<DatabaseHandle<LedgerTables>> {
    handle = await freshSchema();
    handles.push(handle);
    return handle;
  }

  const apply = (events: ReadonlyArray<SequencedEvent<Credited>>) =>
    applyProjectionBatch(handle.db, LEDGER, events, applyLedger);

  async function state() {
    const entries = await handle.db.selectFrom('entries').select(['seq']).orderBy('seq').execute();
    const balances = await handle.db.selectFrom('balances').selectAll().orderBy('account').execute();
    const checkpoint = await readCheckpoint(handle.db, LEDGER.projection);
    return { seqs: entries.map((e) => e.seq), balances, lastSequence: checkpoint?.lastSequence };
  }

  it('applies a batch and moves the checkpoint', async () => {
    await given();
    expect(await readCheckpoint(handle.db, LEDGER.projection)).toBeUndefined();

    const outcome = await apply(ledgerEvents(range(1, 5)));

    expect(outcome).toEqual({ kind: 'APPLIED', from: 1n, to: 5n, count: 5, previous: 0n });
    const after = await state();
    expect(after.seqs).toEqual([1n, 2n, 3n, 4n, 5n]);
    expect(after.lastSequence).toBe(5n);
    // numeric stays exact; bigint columns come back as bigint
    expect(after.balances.find((b) => b.account === 'acct-1')).toEqual({
      account: 'acct-1', // sequences 1 and 4
      total: (2n * 10n ** 20n + 5n).toString(),
      entries: 2n,
    });
  });

  it('ignores the same batch delivered twice', async () => {
    await given();
    await apply(ledgerEvents(range(1, 4)));
    const before = await state();

    const outcome = await apply(ledgerEvents(range(1, 4)));

    expect(outcome).toEqual({ kind: 'IGNORED', lastSequence: 4n });
    expect(await state()).toEqual(before);
  });

  it('applies only the new part of an overlapping batch', async () => {
    await given();
    await apply(ledgerEvents(range(1, 5)));

    const outcome = await apply(ledgerEvents(range(3, 8)));

    expect(outcome).toEqual({ kind: 'APPLIED', from: 6n, to: 8n, count: 3, previous: 5n });
    const after = await state();
    expect(after.seqs).toEqual(range(1, 8).map(BigInt));
    expect(after.balances.reduce((n, b) => n + b.entries, 0n)).toBe(8n);
  });

  it('accepts gaps (a filtered consumer sees sparse sequences)', async () => {
    await given();
    expect(await apply(ledgerEvents([2, 5, 9]))).toMatchObject({
      kind: 'APPLIED',
      from: 2n,
      to: 9n,
      count: 3,
    });
    expect(await apply(ledgerEvents([7, 9, 12]))).toMatchObject({
      kind: 'APPLIED',
      from: 12n,
      to: 12n,
      count: 1,
    });
    expect((await state()).seqs).toEqual([2n, 5n, 9n, 12n]);
  });

  it('rejects a batch whose sequences do not increase, before touching the database', async () => {
    await given();
    for (const sequences of [[3, 2], [4, 4], [0]]) {
      const error = await apply(ledgerEvents(sequences)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ProjectionBatchNotIncreasingError);
      expect(isDatabaseError(error, 'DB_PROJECTION_BATCH_NOT_INCREASING')).toBe(true);
    }
    expect(await readCheckpoint(handle.db, LEDGER.projection)).toBeUndefined();
  });

  it('rolls back rows AND checkpoint when apply crashes midway', async () => {
    await given();
    await apply(ledgerEvents(range(1, 3)));
    const before = await state();
    const boom = new Error('boom at seq 5');

    const error = await applyProjectionBatch(
      handle.db,
      LEDGER,
      ledgerEvents(range(4, 6)),
      async (trx, events) => {
        await applyLedger(trx, events.slice(0, 1)); // seq 4 written ...
        throw boom; // ... then the process "crashes"
      },
    ).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ProjectionApplyError);
    expect((error as ProjectionApplyError).cause).toBe(boom);
    expect((error as ProjectionApplyError).message).toMatch(/sequences 4\.\.6/);
    expect(await state()).toEqual(before);
    // and the redelivery after the crash applies it all, once
    expect(await apply(ledgerEvents(range(4, 6)))).toMatchObject({ kind: 'APPLIED', from: 4n, to: 6n });
    expect((await state()).seqs).toEqual(range(1, 6).map(BigInt));
  });

  it('serialises concurrent appliers of the same projection: no double apply', async () => {
    await given();
    await apply(ledgerEvents([1])); // checkpoint row exists
    const slowApply = async (
      trx: Parameters<typeof applyLedger>[0],
      events: ReadonlyArray<SequencedEvent<Credited>>,
    ) => {
      await sql`select pg_sleep(0.2)`.execute(trx); // hold the lock while the other one arrives
      await applyLedger(trx, events);
    };

    const outcomes = await Promise.all([
      applyProjectionBatch(handle.db, LEDGER, ledgerEvents(range(2, 10)), slowApply),
      applyProjectionBatch(handle.db, LEDGER, ledgerEvents(range(2, 10)), slowApply),
      applyProjectionBatch(handle.db, LEDGER, ledgerEvents(range(5, 12)), slowApply),
    ]);

    const applied = outcomes.filter((o) => o.kind === 'APPLIED');
    const total = applied.reduce((n, o) => n + (o.kind === 'APPLIED' ? o.count : 0), 0);
    expect(total).toBe(11); // sequences 2..12, each once, whatever the order
    const after = await state();
    expect(after.seqs).toEqual(range(1, 12).map(BigInt));
    expect(after.lastSequence).toBe(12n);
    expect(after.balances.reduce((n, b) => n + b.entries, 0n)).toBe(12n);
  });

  it('serialises concurrent first appliers (no checkpoint row yet)', async () => {
    await given();
    const outcomes = await Promise.all([apply(ledgerEvents(range(1, 6))), apply(ledgerEvents(range(1, 6)))]);
    expect(outcomes.map((o) => o.kind).sort()).toEqual(['APPLIED', 'IGNORED']);
    expect((await state()).seqs).toEqual(range(1, 6).map(BigInt));
  });

  it('refuses a checkpoint that belongs to another stream', async () => {
    await given();
    await apply(ledgerEvents([1]));
    const error = await applyProjectionBatch(
      handle.db,
      { ...LEDGER, stream: 'OTHER' },
      ledgerEvents([2]),
      applyLedger,
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProjectionStreamMismatchError);
    expect((await state()).seqs).toEqual([1n]);
  });

  it('treats an empty batch as IGNORED', async () => {
    await given();
    expect(await apply([])).toEqual({ kind: 'IGNORED', lastSequence: 0n });
  });
});
