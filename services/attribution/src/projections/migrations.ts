/** Attribution's migrations (plus the library's checkpoint table). Never edit one that has shipped: add the next. */
import { sql, type Kysely } from 'kysely';

import { withProjectionCheckpoints, type Migration } from '@longtail/database';

const statements = (list: readonly string[]): Migration => ({
  async up(db: Kysely<unknown>) {
    for (const statement of list) await sql.raw(statement).execute(db);
  },
});

const AMOUNT = 'numeric(78,0) not null';

export const ATTRIBUTION_MIGRATIONS = withProjectionCheckpoints({
  '0001_attribution_facts': statements([
    `create table adapters (
       adapter_id text primary key, creator text not null, price_per_1k_tokens ${AMOUNT},
       owner_tenant_id text not null, trained_on jsonb not null, retired boolean not null default false,
       registered_seq bigint not null)`,
    `create table datanets (datanet_id text primary key, name text not null, owner_tenant_id text not null, created_seq bigint not null)`,
    `create table datanet_contributions (
       datanet_id text not null, contribution_id text not null, contributor text not null, content_sha256 text not null,
       size_tokens bigint not null, weight ${AMOUNT}, object_key text, seq bigint not null,
       primary key (datanet_id, contribution_id))`,
    `create index datanet_contributions_contributor on datanet_contributions (contributor)`,
    `create table snapshots (
       datanet_id text not null, snapshot_id text not null, contribution_count bigint not null, total_weight ${AMOUNT},
       through_sequence bigint not null, seq bigint not null, primary key (datanet_id, snapshot_id))`,
    `create table snapshot_contributors (
       datanet_id text not null, snapshot_id text not null, account text not null, weight ${AMOUNT},
       primary key (datanet_id, snapshot_id, account))`,
    `create index snapshot_contributors_account on snapshot_contributors (account)`,
    `create table policies (
       version integer primary key, effective_from_epoch integer not null,
       operator_bps integer not null, creator_bps integer not null, contributors_bps integer not null, treasury_bps integer not null,
       treasury_address text not null, seq bigint not null,
       check (operator_bps + creator_bps + contributors_bps + treasury_bps = 10000))`,
  ]),
  '0002_attribution_earnings': statements([
    `create table epochs (
       epoch integer primary key, status text not null check (status in ('open', 'closed')), policy_version integer not null,
       first_sequence bigint not null, last_sequence bigint, opened_at text, closed_at text,
       fee_total ${AMOUNT}, event_count bigint not null, total_amount numeric(78,0), totals_hash text)`,
    `create unique index epochs_one_open on epochs (status) where status = 'open'`,
    `create table priced_requests (request_id text primary key, epoch integer not null, seq bigint not null)`,
    `create table epoch_adapter_revenue (
       epoch integer not null, adapter_id text not null, operator text not null,
       requests bigint not null, tokens bigint not null, fee ${AMOUNT}, operator_amount ${AMOUNT},
       creator_amount ${AMOUNT}, treasury_amount ${AMOUNT}, contributors_amount ${AMOUNT},
       primary key (epoch, adapter_id, operator))`,
    `create table epoch_pools (
       epoch integer not null, adapter_id text not null, datanet_id text not null, snapshot_id text not null, amount ${AMOUNT},
       primary key (epoch, adapter_id, datanet_id, snapshot_id))`,
    `create table epoch_account_earnings (epoch integer not null, account text not null, amount ${AMOUNT}, primary key (epoch, account))`,
    `create index epoch_account_earnings_account on epoch_account_earnings (account, epoch)`,
    `create table usage_hourly_adapter (
       hour text not null, adapter_id text not null, requests bigint not null, failed bigint not null,
       prompt_tokens bigint not null, completion_tokens bigint not null, latency_buckets bigint[] not null,
       primary key (adapter_id, hour))`,
    `create table usage_hourly_tenant (
       hour text not null, tenant_id text not null, requests bigint not null, failed bigint not null,
       prompt_tokens bigint not null, completion_tokens bigint not null, latency_buckets bigint[] not null,
       primary key (tenant_id, hour))`,
    `create table rejected_events (
       stream text not null, seq bigint not null, event_id text not null, event_type text not null, reason text not null,
       primary key (stream, seq))`,
    `create table epoch_closed_outbox (epoch integer primary key, event_id text not null, published_seq bigint)`,
  ]),
  // Every batch rewrites the summed rows it touches. Free room on each page lets PostgreSQL put the
  // new version beside the old one (a HOT update: no new index entries, less WAL). Storage only:
  // rows, queries and the state hash are unchanged.
  '0003_attribution_upsert_room': statements(
    ['epoch_adapter_revenue', 'epoch_pools', 'usage_hourly_adapter', 'usage_hourly_tenant'].map(
      (table) => `alter table ${table} set (fillfactor = 70)`,
    ),
  ),
});

/** The tables whose rows are projection state, with their keys: what the state hash covers. */
export const HASHED_TABLES = [
  { name: 'adapters', orderBy: ['adapter_id'] },
  { name: 'datanets', orderBy: ['datanet_id'] },
  { name: 'datanet_contributions', orderBy: ['datanet_id', 'contribution_id'] },
  { name: 'snapshots', orderBy: ['datanet_id', 'snapshot_id'] },
  { name: 'snapshot_contributors', orderBy: ['datanet_id', 'snapshot_id', 'account'] },
  { name: 'policies', orderBy: ['version'] },
  { name: 'epochs', orderBy: ['epoch'] },
  { name: 'priced_requests', orderBy: ['request_id'] },
  { name: 'epoch_adapter_revenue', orderBy: ['epoch', 'adapter_id', 'operator'] },
  { name: 'epoch_pools', orderBy: ['epoch', 'adapter_id', 'datanet_id', 'snapshot_id'] },
  { name: 'epoch_account_earnings', orderBy: ['epoch', 'account'] },
  { name: 'usage_hourly_adapter', orderBy: ['adapter_id', 'hour'] },
  { name: 'usage_hourly_tenant', orderBy: ['tenant_id', 'hour'] },
  { name: 'rejected_events', orderBy: ['stream', 'seq'] },
  { name: 'projection_checkpoints', orderBy: ['projection'], exclude: ['updated_at'] },
] as const;
