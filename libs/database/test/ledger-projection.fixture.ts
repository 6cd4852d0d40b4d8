/**
 * A small projection for the integration tests: credits and debits per account, applied with
 * the same `applyProjectionBatch` a service uses. `entries` records each event once by its
 * sequence (a double apply would violate the primary key), `balances` accumulates (a double apply
 * would show in the sum).
 */
import { sql, type Generated, type Transaction } from 'kysely';
import type { Migration } from 'kysely/migration';

import {
  withProjectionCheckpoints,
  type ProjectionCheckpointTables,
  type SequencedEvent,
} from '../src/index.js';

export interface Credited {
  readonly type: 'credited';
  readonly account: string;
  /** wei */
  readonly amount: bigint;
}

export interface LedgerTables extends ProjectionCheckpointTables {
  entries: { seq: bigint; account: string; amount: string };
  balances: { account: string; total: string; entries: Generated<bigint> };
}

export const ledgerMigrations: Record<string, Migration> = withProjectionCheckpoints({
  '0001_ledger': {
    async up(db) {
      await db.schema
        .createTable('entries')
        .addColumn('seq', 'bigint', (c) => c.primaryKey())
        .addColumn('account', 'text', (c) => c.notNull())
        .addColumn('amount', 'numeric(78, 0)', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('balances')
        .addColumn('account', 'text', (c) => c.primaryKey())
        .addColumn('total', 'numeric(78, 0)', (c) => c.notNull())
        .addColumn('entries', 'bigint', (c) => c.notNull().defaultTo(1))
        .execute();
    },
  },
});

export const LEDGER = { projection: 'test.ledger', stream: 'LEDGER_TEST' } as const;

export async function applyLedger(
  trx: Transaction<LedgerTables>,
  events: ReadonlyArray<SequencedEvent<Credited>>,
): Promise<void> {
  for (const { seq, event } of events) {
    await trx
      .insertInto('entries')
      .values({ seq, account: event.account, amount: event.amount.toString() })
      .execute();
    await trx
      .insertInto('balances')
      .values({ account: event.account, total: event.amount.toString() })
      .onConflict((c) =>
        c.column('account').doUpdateSet({
          total: sql<string>`balances.total + excluded.total`,
          entries: sql<bigint>`balances.entries + 1`,
        }),
      )
      .execute();
  }
}

/** `n` events on sequences 1..n (or the given ones), amounts large enough to break a JS number. */
export function ledgerEvents(sequences: readonly number[]): Array<SequencedEvent<Credited>> {
  return sequences.map((seq) => ({
    seq: BigInt(seq),
    event: { type: 'credited', account: `acct-${seq % 3}`, amount: 10n ** 20n + BigInt(seq) },
  }));
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
