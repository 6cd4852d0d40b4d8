/**
 * Attribution's tables (schema `attribution`; every row rebuildable from the streams). Amounts are
 * `numeric(78,0)` base units, read back as decimal strings (never floats); sequences are `bigint`.
 *
 * Facts (ADAPTERS, DATANETS, ATTRIBUTION policy events): adapters, datanets,
 * datanet_contributions, snapshots, snapshot_contributors, policies.
 * Earnings (INFERENCE): epochs, priced_requests, epoch_adapter_revenue, epoch_pools,
 * epoch_account_earnings, usage_hourly_adapter, usage_hourly_tenant,
 * rejected_events.
 * Bookkeeping (not projection state, not hashed): epoch_closed_outbox.
 */
import type { ColumnType } from 'kysely';

import type { ProjectionCheckpointsTable } from '@longtail/database';

/** numeric(78,0): written as a decimal string (or bigint), read as a decimal string. */
type Amount = ColumnType<string, string | bigint, string | bigint>;
type Int8 = ColumnType<bigint, bigint | number, bigint | number>;

export interface AttributionTables {
  projection_checkpoints: ProjectionCheckpointsTable;
  adapters: {
    adapter_id: string;
    creator: string;
    price_per_1k_tokens: Amount;
    owner_tenant_id: string;
    trained_on: ColumnType<TrainedOnJson[], string, string>;
    retired: boolean;
    registered_seq: Int8;
  };
  datanets: { datanet_id: string; name: string; owner_tenant_id: string; created_seq: Int8 };
  datanet_contributions: {
    datanet_id: string;
    contribution_id: string;
    contributor: string;
    content_sha256: string;
    size_tokens: Int8;
    weight: Amount;
    object_key: string | null;
    seq: Int8;
  };
  snapshots: {
    datanet_id: string;
    snapshot_id: string;
    contribution_count: Int8;
    total_weight: Amount;
    through_sequence: Int8;
    seq: Int8;
  };
  snapshot_contributors: { datanet_id: string; snapshot_id: string; account: string; weight: Amount };
  policies: {
    version: number;
    effective_from_epoch: number;
    operator_bps: number;
    creator_bps: number;
    contributors_bps: number;
    treasury_bps: number;
    treasury_address: string;
    seq: Int8;
  };
  epochs: {
    epoch: number;
    status: 'open' | 'closed';
    policy_version: number;
    first_sequence: Int8;
    last_sequence: Int8 | null;
    opened_at: string | null;
    closed_at: string | null;
    fee_total: Amount;
    event_count: Int8;
    total_amount: Amount | null;
    totals_hash: string | null;
  };
  priced_requests: { request_id: string; epoch: number; seq: Int8 };
  epoch_adapter_revenue: {
    epoch: number;
    adapter_id: string;
    operator: string;
    requests: Int8;
    tokens: Int8;
    fee: Amount;
    operator_amount: Amount;
    creator_amount: Amount;
    treasury_amount: Amount;
    contributors_amount: Amount;
  };
  epoch_pools: { epoch: number; adapter_id: string; datanet_id: string; snapshot_id: string; amount: Amount };
  epoch_account_earnings: { epoch: number; account: string; amount: Amount };
  usage_hourly_adapter: UsageRow & { adapter_id: string };
  usage_hourly_tenant: UsageRow & { tenant_id: string };
  rejected_events: { stream: string; seq: Int8; event_id: string; event_type: string; reason: string };
  epoch_closed_outbox: { epoch: number; event_id: string; published_seq: Int8 | null };
}

export interface UsageRow {
  /** Hour start, ISO-8601 UTC (`2026-01-31T12:00:00Z`), from the event's endedAt. */
  hour: string;
  requests: Int8;
  failed: Int8;
  prompt_tokens: Int8;
  completion_tokens: Int8;
  /** Request counts per latency bucket (see usage/latency-histogram.ts). */
  latency_buckets: ColumnType<bigint[], bigint[] | string, bigint[] | string>;
}

export interface TrainedOnJson {
  readonly datanetId: string;
  readonly snapshotId: string;
  readonly mixWeightBps: number;
}
