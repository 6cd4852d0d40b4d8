/**
 * The payout outbox: one row per applied epoch, moved planned → sent → confirmed → published by
 * the EpochPoster. Rows are only ever created by the epoch projection (in the transaction that
 * applies the epoch) and only ever advanced here, so what is on chain can always be traced back.
 */
import type { Kysely, Selectable } from 'kysely';
import type { Hex } from 'viem';

import type { PayoutRow, SentTransaction } from '../payouts/decide.js';
import type { LedgerDatabase, PayoutOutboxTable } from './schema.js';

export type PayoutOutboxRecord = Selectable<PayoutOutboxTable>;

/** The lowest epoch not yet published, locked for this transaction (the poster works in order). */
export async function nextUnpublished(db: Kysely<LedgerDatabase>): Promise<PayoutOutboxRecord | undefined> {
  return db.selectFrom('payout_outbox').selectAll().where('state', '<>', 'published').orderBy('epoch').limit(1).forUpdate().executeTakeFirst();
}

export function toPayoutRow(record: PayoutOutboxRecord): PayoutRow {
  const tx: SentTransaction | undefined =
    record.tx_hash !== null && record.tx_nonce !== null && record.tx_sent_at_block !== null
      ? {
          hash: record.tx_hash as Hex,
          nonce: record.tx_nonce,
          maxFeePerGas: BigInt(record.tx_max_fee_per_gas ?? 0),
          maxPriorityFeePerGas: BigInt(record.tx_max_priority_fee_per_gas ?? 0),
          sentAtBlock: record.tx_sent_at_block,
        }
      : undefined;
  return {
    epoch: record.epoch,
    state: record.state,
    merkleRoot: record.merkle_root as Hex,
    cumulativeTotal: BigInt(record.cumulative_total),
    tx,
    postedAt: record.posted_tx_hash !== null && record.posted_block !== null ? { txHash: record.posted_tx_hash as Hex, blockNumber: record.posted_block } : undefined,
  };
}

export async function recordSent(db: Kysely<LedgerDatabase>, epoch: bigint, tx: SentTransaction): Promise<void> {
  await db
    .updateTable('payout_outbox')
    .set((eb) => ({
      state: 'sent',
      tx_hash: tx.hash,
      tx_nonce: tx.nonce,
      tx_max_fee_per_gas: tx.maxFeePerGas,
      tx_max_priority_fee_per_gas: tx.maxPriorityFeePerGas,
      tx_sent_at_block: tx.sentAtBlock,
      send_count: eb('send_count', '+', 1),
      last_error: null,
      updated_at: new Date(),
    }))
    .where('epoch', '=', epoch)
    .execute();
}

/** The root is in a block (our transaction, or one found on chain after a crash). */
export async function recordMined(db: Kysely<LedgerDatabase>, epoch: bigint, txHash: Hex, blockNumber: bigint): Promise<void> {
  await db
    .updateTable('payout_outbox')
    .set({ state: 'sent', posted_tx_hash: txHash, posted_block: blockNumber, last_error: null, updated_at: new Date() })
    .where('epoch', '=', epoch)
    .execute();
}

export async function recordConfirmed(
  db: Kysely<LedgerDatabase>,
  epoch: bigint,
  confirmed: { txHash: Hex; blockNumber: bigint; blockTime: string; payoutEventId: string },
): Promise<void> {
  await db
    .updateTable('payout_outbox')
    .set({
      state: 'confirmed',
      posted_tx_hash: confirmed.txHash,
      posted_block: confirmed.blockNumber,
      posted_block_time: confirmed.blockTime,
      payout_event_id: confirmed.payoutEventId,
      last_error: null,
      updated_at: new Date(),
    })
    .where('epoch', '=', epoch)
    .execute();
}

export async function recordPublished(db: Kysely<LedgerDatabase>, epoch: bigint): Promise<void> {
  await db.updateTable('payout_outbox').set({ state: 'published', updated_at: new Date() }).where('epoch', '=', epoch).execute();
}

export async function recordError(db: Kysely<LedgerDatabase>, epoch: bigint, message: string): Promise<void> {
  await db.updateTable('payout_outbox').set({ last_error: message.slice(0, 2000), updated_at: new Date() }).where('epoch', '=', epoch).execute();
}

export async function payoutRecord(db: Kysely<LedgerDatabase>, epoch: bigint): Promise<PayoutOutboxRecord | undefined> {
  return db.selectFrom('payout_outbox').selectAll().where('epoch', '=', epoch).executeTakeFirst();
}

export async function payoutRecords(db: Kysely<LedgerDatabase>): Promise<PayoutOutboxRecord[]> {
  return db.selectFrom('payout_outbox').selectAll().orderBy('epoch').execute();
}

/**
 * The latest epoch whose root is `root` (the one the distributor holds), among those sent or
 * further. Two epochs share a root only when nothing changed between them; their trees are equal.
 */
export async function payoutWithRoot(db: Kysely<LedgerDatabase>, root: string): Promise<PayoutOutboxRecord | undefined> {
  return db
    .selectFrom('payout_outbox')
    .selectAll()
    .where('merkle_root', '=', root.toLowerCase())
    .where('state', '<>', 'planned')
    .orderBy('epoch', 'desc')
    .limit(1)
    .executeTakeFirst();
}
