/**
 * The ledger's own tables (PostgreSQL schema `ledger`). Amounts are `numeric(78,0)`: exact
 * integers up to 2^256, read back as decimal strings (never JS numbers) and turned into bigint at
 * the edge. Epochs and blocks are `bigint`.
 */
import type { ColumnType, Generated } from 'kysely';
import type { ProjectionCheckpointTables } from '@longtail/database';

/** Decimal string of base units in and out. */
type Amount = ColumnType<string, string | bigint, string | bigint>;

export interface LedgerEpochsTable {
  /** Attribution epoch number (0, 1, 2, …). */
  epoch: bigint;
  /** `applied` (in the balances and the outbox) or `parked` (arrived early, waits for the gap). */
  status: 'applied' | 'parked';
  totals_hash: string;
  total_amount: Amount;
  account_count: number;
  /** Id of the `attribution.epoch.closed` event (causation of `ledger.payout.posted`). */
  event_id: string;
  correlation_id: string;
  /** ATTRIBUTION stream sequence it came in. */
  stream_sequence: bigint;
}

export interface EpochTotalsTable {
  epoch: bigint;
  account: string;
  /** What the account earned in this epoch. */
  amount: Amount;
}

export interface AccountBalancesTable {
  account: string;
  /** Everything the account earned over the applied epochs. */
  cumulative: Amount;
}

export interface PayoutOutboxTable {
  epoch: bigint;
  state: 'planned' | 'sent' | 'confirmed' | 'published';
  merkle_root: string;
  cumulative_total: Amount;
  account_count: number;
  epoch_totals_hash: string;
  /** Last postRoot transaction we sent (null when adopted from the chain or not sent). */
  tx_hash: string | null;
  tx_nonce: number | null;
  tx_max_fee_per_gas: Amount | null;
  tx_max_priority_fee_per_gas: Amount | null;
  tx_sent_at_block: bigint | null;
  send_count: Generated<number>;
  /** Where the root landed: the RootPosted log's transaction and block. */
  posted_tx_hash: string | null;
  posted_block: bigint | null;
  /** Fixed at confirmation, so a re-publish after a crash carries the same id (dedup). */
  payout_event_id: string | null;
  posted_block_time: string | null;
  /** Last halt or send error, for operators and the status API; null when healthy. */
  last_error: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface EpochRejectionsTable {
  event_id: string;
  epoch: bigint;
  reason: string;
  stream_sequence: bigint;
  created_at: Generated<Date>;
}

export interface LedgerDatabase extends ProjectionCheckpointTables {
  ledger_epochs: LedgerEpochsTable;
  epoch_totals: EpochTotalsTable;
  account_balances: AccountBalancesTable;
  payout_outbox: PayoutOutboxTable;
  epoch_rejections: EpochRejectionsTable;
}
