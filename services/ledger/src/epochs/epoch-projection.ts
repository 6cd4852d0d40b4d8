/**
 * The ledger's projection of the ATTRIBUTION stream: each `attribution.epoch.closed` adds the
 * epoch's totals to every account's cumulative total and plans the epoch's payout (a new outbox
 * row with the cumulative Merkle root), all in the transaction that moves the projection's
 * checkpoint, so a redelivered event changes nothing and a crash leaves no half-applied epoch.
 */
import { sql, type Transaction } from 'kysely';
import { applyProjectionBatch, type ProjectionOutcome, type SequencedEvent } from '@longtail/database';
import type { AttributionEpochClosedV1 } from '@longtail/contracts';
import type { Logger } from '@longtail/telemetry';
import type { Kysely } from 'kysely';

import { CumulativeTree } from '../tree/cumulative-tree.js';
import type { LedgerDatabase } from '../store/schema.js';
import { loadCumulativeEntries } from '../store/balances.js';
import { classifyEpoch } from './epoch-intake.js';

export const EPOCH_PROJECTION = { projection: 'ledger.epochs', stream: 'ATTRIBUTION' } as const;

export type EpochClosedEvent = Pick<AttributionEpochClosedV1, 'id' | 'correlationId' | 'data'>;

export async function applyEpochEvents(
  db: Kysely<LedgerDatabase>,
  events: ReadonlyArray<SequencedEvent<EpochClosedEvent>>,
  logger?: Logger,
): Promise<ProjectionOutcome> {
  return applyProjectionBatch(db, EPOCH_PROJECTION, events, async (trx, fresh) => {
    for (const item of fresh) await intake(trx, item, logger);
  });
}

async function intake(trx: Transaction<LedgerDatabase>, { seq, event }: SequencedEvent<EpochClosedEvent>, logger?: Logger): Promise<void> {
  const { data } = event;
  const epoch = BigInt(data.epoch);
  const known = await trx.selectFrom('ledger_epochs').select(['status', 'totals_hash']).where('epoch', '=', epoch).executeTakeFirst();
  const next = await nextEpoch(trx);
  const total = await cumulativeTotal(trx);
  const decision = classifyEpoch(data, next, known && { status: known.status, totalsHash: known.totals_hash }, total);

  switch (decision.kind) {
    case 'duplicate':
      logger?.info({ epoch: data.epoch, eventId: event.id }, 'epoch already received with the same totals; ignored');
      return;
    case 'reject':
      logger?.error({ epoch: data.epoch, eventId: event.id, reason: decision.reason }, 'epoch rejected');
      await trx
        .insertInto('epoch_rejections')
        .values({ event_id: event.id, epoch, reason: decision.reason, stream_sequence: seq })
        .onConflict((c) => c.column('event_id').doNothing())
        .execute();
      return;
    case 'park':
    case 'apply':
      await trx
        .insertInto('ledger_epochs')
        .values({
          epoch,
          status: 'parked',
          totals_hash: data.totalsHash,
          total_amount: data.totalAmount,
          account_count: data.totals.length,
          event_id: event.id,
          correlation_id: event.correlationId,
          stream_sequence: seq,
        })
        .execute();
      await insertTotals(trx, epoch, data.totals);
      if (decision.kind === 'park') {
        logger?.warn({ epoch: data.epoch, waitingFor: String(decision.waitingFor) }, 'epoch arrived early; parked until the gap closes');
        return;
      }
      // Apply this epoch, then any parked ones it unblocks, in order.
      for (let e = epoch; ; e++) {
        const parked = await trx.selectFrom('ledger_epochs').select(['totals_hash', 'account_count']).where('epoch', '=', e).where('status', '=', 'parked').executeTakeFirst();
        if (!parked) break;
        await applyEpoch(trx, e, parked.totals_hash);
        logger?.info({ epoch: String(e) }, 'epoch applied; payout planned');
      }
  }
}

/** Adds the epoch's totals to the balances and plans its payout with the new cumulative root. */
async function applyEpoch(trx: Transaction<LedgerDatabase>, epoch: bigint, totalsHash: string): Promise<void> {
  await sql`
    insert into account_balances (account, cumulative)
    select account, amount from epoch_totals where epoch = ${epoch}
    on conflict (account) do update set cumulative = account_balances.cumulative + excluded.cumulative
  `.execute(trx);
  await trx.updateTable('ledger_epochs').set({ status: 'applied' }).where('epoch', '=', epoch).execute();
  const tree = CumulativeTree.build(await loadCumulativeEntries(trx));
  await trx
    .insertInto('payout_outbox')
    .values({
      epoch,
      state: 'planned',
      merkle_root: tree.root,
      cumulative_total: tree.cumulativeTotal,
      account_count: tree.size,
      epoch_totals_hash: totalsHash,
      tx_hash: null,
      tx_nonce: null,
      tx_max_fee_per_gas: null,
      tx_max_priority_fee_per_gas: null,
      tx_sent_at_block: null,
      posted_tx_hash: null,
      posted_block: null,
      payout_event_id: null,
      posted_block_time: null,
      last_error: null,
    })
    .execute();
}

/** Bulk insert through `unnest`: one statement per 50,000 rows instead of one per row. */
async function insertTotals(trx: Transaction<LedgerDatabase>, epoch: bigint, totals: ReadonlyArray<{ account: string; amount: string }>): Promise<void> {
  const CHUNK = 50_000;
  for (let i = 0; i < totals.length; i += CHUNK) {
    const chunk = totals.slice(i, i + CHUNK);
    await sql`
      insert into epoch_totals (epoch, account, amount)
      select ${epoch}, account, amount
      from unnest(${chunk.map((t) => t.account)}::text[], ${chunk.map((t) => t.amount)}::numeric[]) as t(account, amount)
    `.execute(trx);
  }
}

async function nextEpoch(trx: Transaction<LedgerDatabase>): Promise<bigint> {
  const row = await trx.selectFrom('ledger_epochs').select((eb) => eb.fn.max('epoch').as('last')).where('status', '=', 'applied').executeTakeFirst();
  return row?.last === null || row?.last === undefined ? 0n : BigInt(row.last) + 1n;
}

async function cumulativeTotal(trx: Transaction<LedgerDatabase>): Promise<bigint> {
  const row = await sql<{ total: string | null }>`select sum(cumulative)::text as total from account_balances`.execute(trx);
  return BigInt(row.rows[0]?.total ?? '0');
}
