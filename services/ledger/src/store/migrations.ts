/** The ledger schema's migrations (the projection checkpoint table is added by @longtail/database). */
import { sql, type Kysely } from 'kysely';
import type { Migration } from '@longtail/database';

export const LEDGER_SCHEMA = 'ledger';

export const ledgerMigrations: Record<string, Migration> = {
  '0001_ledger': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('ledger_epochs')
        .addColumn('epoch', 'bigint', (c) => c.primaryKey().check(sql`epoch >= 0`))
        .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('applied', 'parked')`))
        .addColumn('totals_hash', 'text', (c) => c.notNull())
        .addColumn('total_amount', sql`numeric(78,0)`, (c) => c.notNull())
        .addColumn('account_count', 'integer', (c) => c.notNull())
        .addColumn('event_id', 'text', (c) => c.notNull())
        .addColumn('correlation_id', 'text', (c) => c.notNull())
        .addColumn('stream_sequence', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('epoch_totals')
        .addColumn('epoch', 'bigint', (c) => c.notNull().references('ledger_epochs.epoch'))
        .addColumn('account', 'text', (c) => c.notNull())
        .addColumn('amount', sql`numeric(78,0)`, (c) => c.notNull().check(sql`amount > 0`))
        .addPrimaryKeyConstraint('epoch_totals_pk', ['epoch', 'account'])
        .execute();
      await db.schema
        .createTable('account_balances')
        .addColumn('account', 'text', (c) => c.primaryKey())
        .addColumn('cumulative', sql`numeric(78,0)`, (c) => c.notNull().check(sql`cumulative >= 0`))
        .execute();
      await db.schema
        .createTable('payout_outbox')
        .addColumn('epoch', 'bigint', (c) => c.primaryKey().references('ledger_epochs.epoch'))
        .addColumn('state', 'text', (c) => c.notNull().check(sql`state in ('planned', 'sent', 'confirmed', 'published')`))
        .addColumn('merkle_root', 'text', (c) => c.notNull())
        .addColumn('cumulative_total', sql`numeric(78,0)`, (c) => c.notNull())
        .addColumn('account_count', 'integer', (c) => c.notNull())
        .addColumn('epoch_totals_hash', 'text', (c) => c.notNull())
        .addColumn('tx_hash', 'text')
        .addColumn('tx_nonce', 'integer')
        .addColumn('tx_max_fee_per_gas', sql`numeric(78,0)`)
        .addColumn('tx_max_priority_fee_per_gas', sql`numeric(78,0)`)
        .addColumn('tx_sent_at_block', 'bigint')
        .addColumn('send_count', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('posted_tx_hash', 'text')
        .addColumn('posted_block', 'bigint')
        .addColumn('payout_event_id', 'text')
        .addColumn('posted_block_time', 'text')
        .addColumn('last_error', 'text')
        .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .execute();
      await db.schema
        .createTable('epoch_rejections')
        .addColumn('event_id', 'text', (c) => c.primaryKey())
        .addColumn('epoch', 'bigint', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('stream_sequence', 'bigint', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .execute();
    },
  },
};
