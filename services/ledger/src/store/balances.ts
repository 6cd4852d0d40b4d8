/** Reads of the cumulative balances that feed the payout tree. */
import { sql, type Kysely } from 'kysely';
import type { Address } from 'viem';

import type { CumulativeEntry } from '../tree/cumulative-tree.js';
import type { LedgerDatabase } from './schema.js';

/**
 * Every account's cumulative amount as of the last applied epoch, or — with `asOfEpoch` — as of
 * that epoch (the current balance minus what later applied epochs added). Zero amounts are left
 * out. Sorted by account, though the tree does not need it.
 */
export async function loadCumulativeEntries(db: Kysely<LedgerDatabase>, asOfEpoch?: bigint): Promise<CumulativeEntry[]> {
  const result =
    asOfEpoch === undefined
      ? await sql<{ account: string; cumulative: string }>`
          select account, cumulative::text as cumulative from account_balances where cumulative > 0 order by account`.execute(db)
      : await sql<{ account: string; cumulative: string }>`
          select b.account, (b.cumulative - coalesce(l.later, 0))::text as cumulative
          from account_balances b
          left join (
            select t.account, sum(t.amount) as later
            from epoch_totals t join ledger_epochs e on e.epoch = t.epoch
            where e.status = 'applied' and t.epoch > ${asOfEpoch}
            group by t.account
          ) l on l.account = b.account
          where b.cumulative - coalesce(l.later, 0) > 0
          order by b.account`.execute(db);
  return result.rows.map((r) => ({ account: r.account as Address, cumulativeAmount: BigInt(r.cumulative) }));
}
