/**
 * The read side: earnings per account and epoch, an account's statement (which adapters and
 * Datanets its amount came from), revenue per adapter and per Datanet, hourly usage with latency
 * percentiles, and the epochs. Amounts are decimal strings of base units.
 *
 * Served over NATS request/reply on `longtail.attribution.<query>` (the gateway proxies them) and
 * over HTTP under `/v1/attribution/...` on the service's port; both call this class.
 *
 * Earnings of an open epoch are provisional and cover the direct roles only (operator, creator,
 * treasury): contributors' pools are split when the epoch closes.
 */
import { sql, type Kysely } from 'kysely';
import { z } from 'zod';

import { AdapterIdSchema, DatanetIdSchema, EvmAddressSchema, OpaqueIdSchema } from '@longtail/contracts';

import type { AttributionTables } from '../projections/schema.js';
import { snapshotWeights } from '../split/provenance.js';
import { splitPool } from '../split/split.js';
import { percentileMs } from '../usage/latency-histogram.js';

const epochSchema = z.coerce.number().int().nonnegative();

export const QuerySchemas = {
  earnings: z.strictObject({ account: EvmAddressSchema, epoch: epochSchema.optional() }),
  statement: z.strictObject({ account: EvmAddressSchema, epoch: epochSchema }),
  adapterRevenue: z.strictObject({ adapterId: AdapterIdSchema, epoch: epochSchema.optional() }),
  datanetRevenue: z.strictObject({ datanetId: DatanetIdSchema, epoch: epochSchema.optional() }),
  usage: z
    .strictObject({
      tenantId: OpaqueIdSchema.optional(),
      adapterId: AdapterIdSchema.optional(),
      from: z.iso.datetime({ offset: false }),
      to: z.iso.datetime({ offset: false }),
    })
    .refine(
      (q) => (q.tenantId === undefined) !== (q.adapterId === undefined),
      'exactly one of tenantId and adapterId',
    ),
  epochs: z.strictObject({ limit: z.coerce.number().int().min(1).max(1000).default(100) }),
} as const;

export interface EpochEarning {
  readonly epoch: number;
  readonly status: 'open' | 'closed';
  readonly amount: string;
}

export interface StatementLine {
  readonly role: 'operator' | 'creator' | 'treasury' | 'contributor';
  readonly adapterId: string | null;
  readonly datanetId: string | null;
  readonly snapshotId: string | null;
  readonly amount: string;
}

export interface UsageHour {
  readonly hour: string;
  readonly requests: string;
  readonly failed: string;
  readonly promptTokens: string;
  readonly completionTokens: string;
  /** Upper bounds (ms) of the buckets holding p50/p95/p99; null above the last bound. */
  readonly p50Ms: number | null;
  readonly p95Ms: number | null;
  readonly p99Ms: number | null;
}

export class AttributionQueries {
  readonly #db: Kysely<AttributionTables>;

  constructor(db: Kysely<AttributionTables>) {
    this.#db = db;
  }

  async earnings(q: z.infer<typeof QuerySchemas.earnings>): Promise<EpochEarning[]> {
    let query = this.#db
      .selectFrom('epoch_account_earnings as e')
      .innerJoin('epochs', 'epochs.epoch', 'e.epoch')
      .select(['e.epoch', 'epochs.status', 'e.amount'])
      .where('e.account', '=', q.account)
      .orderBy('e.epoch');
    if (q.epoch !== undefined) query = query.where('e.epoch', '=', q.epoch);
    return (await query.execute()).map((r) => ({ epoch: r.epoch, status: r.status, amount: r.amount }));
  }

  async statement(
    q: z.infer<typeof QuerySchemas.statement>,
  ): Promise<{ epoch: number; account: string; total: string; lines: StatementLine[] }> {
    const { account, epoch } = q;
    const lines: StatementLine[] = [];
    const asOperator = await this.#db
      .selectFrom('epoch_adapter_revenue')
      .select(['adapter_id', sql<string>`sum(operator_amount)::text`.as('amount')])
      .where('epoch', '=', epoch)
      .where('operator', '=', account)
      .groupBy('adapter_id')
      .orderBy('adapter_id')
      .execute();
    for (const r of asOperator)
      lines.push({
        role: 'operator',
        adapterId: r.adapter_id,
        datanetId: null,
        snapshotId: null,
        amount: r.amount,
      });
    const asCreator = await this.#db
      .selectFrom('epoch_adapter_revenue as r')
      .innerJoin('adapters as a', 'a.adapter_id', 'r.adapter_id')
      .select(['r.adapter_id', sql<string>`sum(r.creator_amount)::text`.as('amount')])
      .where('r.epoch', '=', epoch)
      .where('a.creator', '=', account)
      .groupBy('r.adapter_id')
      .orderBy('r.adapter_id')
      .execute();
    for (const r of asCreator)
      lines.push({
        role: 'creator',
        adapterId: r.adapter_id,
        datanetId: null,
        snapshotId: null,
        amount: r.amount,
      });
    const epochRow = await this.#db
      .selectFrom('epochs')
      .select(['policy_version'])
      .where('epoch', '=', epoch)
      .executeTakeFirst();
    const policy = epochRow
      ? await this.#db
          .selectFrom('policies')
          .select('treasury_address')
          .where('version', '=', epochRow.policy_version)
          .executeTakeFirst()
      : undefined;
    if (policy?.treasury_address === account) {
      const asTreasury = await this.#db
        .selectFrom('epoch_adapter_revenue')
        .select(['adapter_id', sql<string>`sum(treasury_amount)::text`.as('amount')])
        .where('epoch', '=', epoch)
        .groupBy('adapter_id')
        .orderBy('adapter_id')
        .execute();
      for (const r of asTreasury)
        lines.push({
          role: 'treasury',
          adapterId: r.adapter_id,
          datanetId: null,
          snapshotId: null,
          amount: r.amount,
        });
    }
    // Contributor lines are recomputed from the epoch's pools and the snapshots' weights with the
    // same split the close used (splitPool is pure), so they are exact without storing them.
    if (epochRow) {
      const snapshots = await this.#db
        .selectFrom('snapshot_contributors')
        .select(['datanet_id', 'snapshot_id'])
        .where('account', '=', account)
        .orderBy('datanet_id')
        .orderBy('snapshot_id')
        .execute();
      for (const s of snapshots) {
        const line = await this.#contributorLine(epoch, account, s.datanet_id, s.snapshot_id);
        if (line) lines.push(line);
      }
    }
    const total = await this.#db
      .selectFrom('epoch_account_earnings')
      .select('amount')
      .where('epoch', '=', epoch)
      .where('account', '=', account)
      .executeTakeFirst();
    return { epoch, account, total: total?.amount ?? '0', lines };
  }

  async #contributorLine(
    epoch: number,
    account: string,
    datanetId: string,
    snapshotId: string,
  ): Promise<StatementLine | undefined> {
    const pool = await this.#db
      .selectFrom('epoch_pools')
      .select(sql<string | null>`sum(amount)::text`.as('amount'))
      .where('epoch', '=', epoch)
      .where('datanet_id', '=', datanetId)
      .where('snapshot_id', '=', snapshotId)
      .executeTakeFirst();
    if (!pool?.amount || pool.amount === '0') return undefined;
    const weights = await this.#db
      .selectFrom('snapshot_contributors')
      .select(['account', 'weight'])
      .where('datanet_id', '=', datanetId)
      .where('snapshot_id', '=', snapshotId)
      .execute();
    const snapshot = snapshotWeights(
      datanetId,
      snapshotId,
      weights.map((w) => ({ account: w.account, weight: BigInt(w.weight) })),
    );
    const share = splitPool(BigInt(pool.amount), snapshot).find((s) => s.account === account);
    return share
      ? { role: 'contributor', adapterId: null, datanetId, snapshotId, amount: share.amount.toString() }
      : undefined;
  }

  /** Which adapters fed a snapshot's pool in an epoch (for a contributor's statement). */
  async snapshotSources(
    epoch: number,
    datanetId: string,
    snapshotId: string,
  ): Promise<{ adapterId: string; amount: string }[]> {
    const rows = await this.#db
      .selectFrom('epoch_pools')
      .select(['adapter_id', 'amount'])
      .where('epoch', '=', epoch)
      .where('datanet_id', '=', datanetId)
      .where('snapshot_id', '=', snapshotId)
      .orderBy('adapter_id')
      .execute();
    return rows.map((r) => ({ adapterId: r.adapter_id, amount: r.amount }));
  }

  async adapterRevenue(q: z.infer<typeof QuerySchemas.adapterRevenue>) {
    let query = this.#db
      .selectFrom('epoch_adapter_revenue')
      .select([
        'epoch',
        sql<string>`sum(requests)::text`.as('requests'),
        sql<string>`sum(tokens)::text`.as('tokens'),
        sql<string>`sum(fee)::text`.as('fee'),
        sql<string>`sum(operator_amount)::text`.as('operator'),
        sql<string>`sum(creator_amount)::text`.as('creator'),
        sql<string>`sum(treasury_amount)::text`.as('treasury'),
        sql<string>`sum(contributors_amount)::text`.as('contributors'),
      ])
      .where('adapter_id', '=', q.adapterId)
      .groupBy('epoch')
      .orderBy('epoch');
    if (q.epoch !== undefined) query = query.where('epoch', '=', q.epoch);
    return query.execute();
  }

  async datanetRevenue(q: z.infer<typeof QuerySchemas.datanetRevenue>) {
    let query = this.#db
      .selectFrom('epoch_pools')
      .select([
        'epoch',
        'snapshot_id',
        sql<string>`sum(amount)::text`.as('amount'),
        sql<string>`count(distinct adapter_id)::text`.as('adapters'),
      ])
      .where('datanet_id', '=', q.datanetId)
      .groupBy(['epoch', 'snapshot_id'])
      .orderBy('epoch')
      .orderBy('snapshot_id');
    if (q.epoch !== undefined) query = query.where('epoch', '=', q.epoch);
    return query.execute();
  }

  async usage(q: z.infer<typeof QuerySchemas.usage>): Promise<UsageHour[]> {
    const rows =
      q.adapterId !== undefined
        ? await this.#db
            .selectFrom('usage_hourly_adapter')
            .selectAll()
            .where('adapter_id', '=', q.adapterId)
            .where('hour', '>=', q.from)
            .where('hour', '<', q.to)
            .orderBy('hour')
            .execute()
        : await this.#db
            .selectFrom('usage_hourly_tenant')
            .selectAll()
            .where('tenant_id', '=', q.tenantId!)
            .where('hour', '>=', q.from)
            .where('hour', '<', q.to)
            .orderBy('hour')
            .execute();
    return rows.map((r) => ({
      hour: r.hour,
      requests: r.requests.toString(),
      failed: r.failed.toString(),
      promptTokens: r.prompt_tokens.toString(),
      completionTokens: r.completion_tokens.toString(),
      p50Ms: percentileMs(r.latency_buckets, 500),
      p95Ms: percentileMs(r.latency_buckets, 950),
      p99Ms: percentileMs(r.latency_buckets, 990),
    }));
  }

  async epochs(q: z.infer<typeof QuerySchemas.epochs>) {
    return this.#db.selectFrom('epochs').selectAll().orderBy('epoch', 'desc').limit(q.limit).execute();
  }
}
