/**
 * The earnings projection, fed by the INFERENCE stream in batches. One batch is one transaction
 * (`applyProjectionBatch`: rows and checkpoint together), and inside it every row is written once:
 * per batch, amounts are summed in memory per (epoch, adapter, operator), per (epoch, adapter,
 * snapshot), per (epoch, account) and per (hour, adapter) / (hour, tenant), then upserted with one
 * `insert ... select from unnest(...) on conflict do update` statement per table.
 *
 * A batch may hold epoch markers: the accumulated amounts are flushed into the closing epoch, the
 * epoch is closed (its pools split among contributors, its totals fixed and hashed), and the rest
 * of the batch accumulates into the next epoch. Duplicated requests (same requestId, any number of
 * copies, any distance apart) are priced once: `priced_requests` remembers every priced id.
 *
 * If an event needs a fact this process has not seen (an adapter registered a moment ago on the
 * ADAPTERS stream), `apply` throws `FactNotReady` with the index of that event; the caller applies
 * the prefix before it, loads the fact, and retries (see InferenceIngest).
 */
import { createHash } from 'node:crypto';

import { sql, type Transaction } from 'kysely';

import { totalsHash } from '@longtail/contracts';
import type { SequencedEvent } from '@longtail/database';

import { decideClose, GENESIS_EPOCH, type OpenEpoch } from '../epochs/epoch.js';
import { closeEpochTotals } from '../epochs/epoch-totals.js';
import type { FactBook } from '../facts/facts.js';
import { attributeInference, describeMissing, type MissingFactRef } from '../inference/attribute.js';
import { toAttributionInput } from '../model/attribution-input.js';
import { LATENCY_BUCKETS, latencyBucket } from '../usage/latency-histogram.js';
import type { StreamEvent } from './facts-projection.js';
import type { AttributionTables } from './schema.js';

export const INFERENCE_PROJECTION = { projection: 'attribution.inference', stream: 'INFERENCE' } as const;

export class FactNotReady extends Error {
  override readonly name = 'FactNotReady';
  constructor(
    /** Index in the batch of the first event that cannot be applied yet. */
    readonly index: number,
    readonly missing: MissingFactRef,
  ) {
    super(`event ${index} of the batch needs ${describeMissing(missing)}, not known yet`);
  }
}

/** An epoch closed by a batch: what `attribution.epoch.closed` will say. */
export interface ClosedEpochRecord {
  readonly eventId: string;
  readonly epoch: number;
  readonly policyVersion: number;
  readonly totals: readonly { readonly account: string; readonly amount: string }[];
  readonly totalAmount: string;
  readonly totalsHash: string;
  readonly eventCount: number;
  readonly firstSequence: number;
  readonly lastSequence: number;
  readonly closedAt: string;
}

/** An event the projection refused (it is recorded, and dead-lettered after commit). */
export interface RejectedEvent {
  readonly seq: bigint;
  readonly eventId: string;
  readonly eventType: string;
  readonly reason: string;
}

export interface InferenceBatchOutcome {
  readonly closed: ClosedEpochRecord[];
  readonly rejected: RejectedEvent[];
}

// Counts within one batch are numbers (at most the batch size); token sums and amounts stay bigint.
interface RevenueCell {
  epoch: number;
  adapterId: string;
  operator: string;
  requests: number;
  tokens: bigint;
  fee: bigint;
  operatorAmount: bigint;
  creatorAmount: bigint;
  treasuryAmount: bigint;
  contributorsAmount: bigint;
}

interface UsageCell {
  hour: string;
  key: string;
  requests: number;
  failed: number;
  promptTokens: bigint;
  completionTokens: bigint;
  histogram: number[];
}

interface PoolCell {
  adapterId: string;
  datanetId: string;
  snapshotId: string;
  amount: bigint;
}

/** In-memory sums of one epoch's part of a batch. */
class EpochBatch {
  /** adapter id → operator → cell (nested maps: no key string built per event). */
  readonly revenue = new Map<string, Map<string, RevenueCell>>();
  /** adapter id → its pools, in the order of its split plan's pools. */
  readonly pools = new Map<string, PoolCell[]>();
  readonly accounts = new Map<string, bigint>();
  readonly priced: { requestId: string; seq: bigint }[] = [];
  feeTotal = 0n;
  eventCount = 0;
  constructor(readonly epoch: number) {}

  addAccount(account: string, amount: bigint): void {
    if (amount !== 0n) this.accounts.set(account, (this.accounts.get(account) ?? 0n) + amount);
  }
}

/** Usage sums of a batch (hours are independent of epochs): hour → adapter or tenant → cell. */
class UsageBatch {
  readonly adapters = new Map<string, Map<string, UsageCell>>();
  readonly tenants = new Map<string, Map<string, UsageCell>>();

  add(
    map: Map<string, Map<string, UsageCell>>,
    hour: string,
    key: string,
    failed: boolean,
    prompt: bigint,
    completion: bigint,
    bucket: number,
  ): void {
    let ofHour = map.get(hour);
    if (!ofHour) map.set(hour, (ofHour = new Map()));
    let cell = ofHour.get(key);
    if (!cell) {
      cell = {
        hour,
        key,
        requests: 0,
        failed: 0,
        promptTokens: 0n,
        completionTokens: 0n,
        histogram: new Array<number>(LATENCY_BUCKETS).fill(0),
      };
      ofHour.set(key, cell);
    }
    cell.requests += 1;
    if (failed) cell.failed += 1;
    cell.promptTokens += prompt;
    cell.completionTokens += completion;
    cell.histogram[bucket] = cell.histogram[bucket]! + 1;
  }
}

/** `2026-01-31T12:34:56.789Z` → `2026-01-31T12:00:00Z` (UTC hour of the event). */
export function hourOf(isoUtc: string): string {
  return `${isoUtc.slice(0, 13)}:00:00Z`;
}

/**
 * Applies a batch of INFERENCE events (inside the projection's transaction). Pure apart from
 * `trx`: the outcome depends only on the events, the facts and the rows.
 */
export async function applyInferenceEvents(
  trx: Transaction<AttributionTables>,
  events: ReadonlyArray<SequencedEvent<StreamEvent>>,
  facts: FactBook,
): Promise<InferenceBatchOutcome> {
  let open = await readOpenEpoch(trx);
  const outcome: InferenceBatchOutcome = { closed: [], rejected: [] };

  // Requests already priced by an earlier batch: one query for the whole batch.
  const requestIds: string[] = [];
  for (const { event } of events) {
    if (event.type === 'inference.completed' || event.type === 'inference.failed')
      requestIds.push(event.data.requestId);
  }
  const seen = new Set<string>();
  if (requestIds.length > 0) {
    const { rows } = await sql<{ request_id: string }>`
      select request_id from priced_requests where request_id = any(${requestIds}::text[])`.execute(trx);
    for (const row of rows) seen.add(row.request_id);
  }

  let batch = new EpochBatch(open.epoch);
  /** The open epoch's treasury, looked up when first needed (a split implies its policy is known). */
  let treasury: string | undefined;
  const usage = new UsageBatch();
  for (let index = 0; index < events.length; index += 1) {
    const { seq, event } = events[index]!;
    const input = toAttributionInput(event, Number(seq));
    if (input.kind === 'inference') {
      const inference = input.inference;
      if (seen.has(inference.requestId)) continue;
      const result = attributeInference(facts, open, inference);
      if (result.kind === 'wait') throw new FactNotReady(index, result.missing);
      seen.add(inference.requestId);
      batch.priced.push({ requestId: inference.requestId, seq });
      batch.eventCount += 1;
      batch.feeTotal += result.fee;
      const hour = hourOf(inference.endedAt);
      const failed = inference.outcome === 'failed';
      const bucket = latencyBucket(inference.totalMs);
      const prompt = BigInt(inference.promptTokens);
      const completion = BigInt(inference.completionTokens);
      usage.add(usage.adapters, hour, inference.adapterId ?? '', failed, prompt, completion, bucket);
      usage.add(usage.tenants, hour, inference.tenantId, failed, prompt, completion, bucket);
      if (inference.adapterId === null || inference.operator === null) continue;
      let byOperator = batch.revenue.get(inference.adapterId);
      if (!byOperator) batch.revenue.set(inference.adapterId, (byOperator = new Map()));
      let cell = byOperator.get(inference.operator);
      if (!cell) {
        cell = {
          epoch: batch.epoch,
          adapterId: inference.adapterId,
          operator: inference.operator,
          requests: 0,
          tokens: 0n,
          fee: 0n,
          operatorAmount: 0n,
          creatorAmount: 0n,
          treasuryAmount: 0n,
          contributorsAmount: 0n,
        };
        byOperator.set(inference.operator, cell);
      }
      cell.requests += 1;
      cell.tokens += prompt + completion;
      cell.fee += result.fee;
      const split = result.split;
      if (split === null) continue;
      cell.operatorAmount += split.operator;
      cell.creatorAmount += split.creator;
      cell.treasuryAmount += split.treasury;
      batch.addAccount(inference.operator, split.operator);
      batch.addAccount(result.creator!, split.creator);
      treasury ??= facts.policy(open.policyVersion)!.treasuryAddress;
      batch.addAccount(treasury, split.treasury);
      if (split.pools.length === 0) continue;
      // One adapter's split plan always lists the same pools in the same order.
      let pools = batch.pools.get(inference.adapterId);
      if (!pools) {
        const adapterId = inference.adapterId;
        pools = split.pools.map((p) => ({
          adapterId,
          datanetId: p.datanetId,
          snapshotId: p.snapshotId,
          amount: 0n,
        }));
        batch.pools.set(adapterId, pools);
      }
      for (let i = 0; i < split.pools.length; i += 1) {
        const amount = split.pools[i]!.amount;
        cell.contributorsAmount += amount;
        pools[i]!.amount += amount;
      }
    } else if (input.kind === 'epoch-closing') {
      const decision = decideClose(open, input.marker, (v) => facts.policy(v));
      if (decision.kind === 'wait') throw new FactNotReady(index, decision.missing);
      if (decision.kind === 'reject') {
        const rejected = { seq, eventId: event.id, eventType: event.type, reason: decision.reason };
        await recordRejection(trx, rejected);
        outcome.rejected.push(rejected);
        continue;
      }
      if (decision.kind === 'ignore') continue;
      await flushEpochBatch(trx, batch);
      outcome.closed.push(await closeEpoch(trx, open, input.marker.sequence, input.marker.occurredAt, facts));
      open = decision.next;
      treasury = undefined;
      await trx
        .insertInto('epochs')
        .values({
          epoch: open.epoch,
          status: 'open',
          policy_version: open.policyVersion,
          first_sequence: open.firstSequence,
          last_sequence: null,
          opened_at: open.openedAt,
          closed_at: null,
          fee_total: '0',
          event_count: 0,
          total_amount: null,
          totals_hash: null,
        })
        .execute();
      batch = new EpochBatch(open.epoch);
    }
  }
  await flushEpochBatch(trx, batch);
  await flushUsage(trx, usage);
  return outcome;
}

async function readOpenEpoch(trx: Transaction<AttributionTables>): Promise<OpenEpoch> {
  const row = await trx.selectFrom('epochs').selectAll().where('status', '=', 'open').executeTakeFirst();
  if (row) {
    return {
      epoch: row.epoch,
      policyVersion: row.policy_version,
      openedAt: row.opened_at,
      firstSequence: Number(row.first_sequence),
    };
  }
  await trx
    .insertInto('epochs')
    .values({
      epoch: GENESIS_EPOCH.epoch,
      status: 'open',
      policy_version: GENESIS_EPOCH.policyVersion,
      first_sequence: GENESIS_EPOCH.firstSequence,
      last_sequence: null,
      opened_at: null,
      closed_at: null,
      fee_total: '0',
      event_count: 0,
      total_amount: null,
      totals_hash: null,
    })
    .execute();
  return GENESIS_EPOCH;
}

/** Records an event the projection refuses (it counts as applied: the checkpoint moves past it). */
export async function recordRejection(trx: Transaction<AttributionTables>, r: RejectedEvent): Promise<void> {
  await trx
    .insertInto('rejected_events')
    .values({
      stream: INFERENCE_PROJECTION.stream,
      seq: r.seq,
      event_id: r.eventId,
      event_type: r.eventType,
      reason: r.reason,
    })
    .onConflict((c) => c.columns(['stream', 'seq']).doNothing())
    .execute();
}

/**
 * Code-unit order of key tuples. Rows are written in their primary key's order: PostgreSQL then
 * walks each index once from left to right instead of jumping between its pages (measured: 100,000
 * inserts into epoch_account_earnings took half the time sorted). The order changes no row.
 */
function byKey<T>(...parts: ((row: T) => string)[]): (a: T, b: T) => number {
  return (a, b) => {
    for (const part of parts) {
      const x = part(a);
      const y = part(b);
      if (x !== y) return x < y ? -1 : 1;
    }
    return 0;
  };
}

async function flushEpochBatch(trx: Transaction<AttributionTables>, b: EpochBatch): Promise<void> {
  // No `on conflict`: every id was checked against the table in this transaction (under the
  // checkpoint lock, so no other applier can add one meanwhile) and against the batch, so a
  // conflict cannot happen, and a plain insert costs about half a speculative one.
  if (b.priced.length > 0) {
    b.priced.sort(byKey((p) => p.requestId));
    await sql`
      insert into priced_requests (request_id, epoch, seq)
      select r, ${b.epoch}::int, s::bigint from unnest(${b.priced.map((p) => p.requestId)}::text[], ${b.priced.map((p) => p.seq.toString())}::text[]) as u(r, s)`.execute(
      trx,
    );
  }
  if (b.revenue.size > 0) {
    const cells = [...b.revenue.values()]
      .flatMap((byOperator) => [...byOperator.values()])
      .sort(
        byKey(
          (c) => c.adapterId,
          (c) => c.operator,
        ),
      );
    await sql`
      insert into epoch_adapter_revenue as t
        (epoch, adapter_id, operator, requests, tokens, fee, operator_amount, creator_amount, treasury_amount, contributors_amount)
      select ${b.epoch}::int, a, o, r::bigint, k::bigint, f::numeric, oa::numeric, ca::numeric, ta::numeric, pa::numeric
      from unnest(
        ${cells.map((c) => c.adapterId)}::text[], ${cells.map((c) => c.operator)}::text[],
        ${cells.map((c) => c.requests.toString())}::text[], ${cells.map((c) => c.tokens.toString())}::text[],
        ${cells.map((c) => c.fee.toString())}::text[], ${cells.map((c) => c.operatorAmount.toString())}::text[],
        ${cells.map((c) => c.creatorAmount.toString())}::text[], ${cells.map((c) => c.treasuryAmount.toString())}::text[],
        ${cells.map((c) => c.contributorsAmount.toString())}::text[]
      ) as u(a, o, r, k, f, oa, ca, ta, pa)
      on conflict (epoch, adapter_id, operator) do update set
        requests = t.requests + excluded.requests,
        tokens = t.tokens + excluded.tokens,
        fee = t.fee + excluded.fee,
        operator_amount = t.operator_amount + excluded.operator_amount,
        creator_amount = t.creator_amount + excluded.creator_amount,
        treasury_amount = t.treasury_amount + excluded.treasury_amount,
        contributors_amount = t.contributors_amount + excluded.contributors_amount`.execute(trx);
  }
  if (b.pools.size > 0) {
    const pools = [...b.pools.values()].flat().sort(
      byKey(
        (p) => p.adapterId,
        (p) => p.datanetId,
        (p) => p.snapshotId,
      ),
    );
    await sql`
      insert into epoch_pools as t (epoch, adapter_id, datanet_id, snapshot_id, amount)
      select ${b.epoch}::int, a, d, s, m::numeric
      from unnest(${pools.map((p) => p.adapterId)}::text[], ${pools.map((p) => p.datanetId)}::text[],
                  ${pools.map((p) => p.snapshotId)}::text[], ${pools.map((p) => p.amount.toString())}::text[]) as u(a, d, s, m)
      on conflict (epoch, adapter_id, datanet_id, snapshot_id) do update set amount = t.amount + excluded.amount`.execute(
      trx,
    );
  }
  if (b.accounts.size > 0) {
    const accounts = [...b.accounts].sort(byKey(([a]) => a));
    await sql`
      insert into epoch_account_earnings as t (epoch, account, amount)
      select ${b.epoch}::int, a, m::numeric from unnest(${accounts.map(([a]) => a)}::text[], ${accounts.map(([, m]) => m.toString())}::text[]) as u(a, m)
      on conflict (epoch, account) do update set amount = t.amount + excluded.amount`.execute(trx);
  }
  if (b.eventCount > 0) {
    await sql`
      update epochs set fee_total = fee_total + ${b.feeTotal.toString()}::numeric, event_count = event_count + ${b.eventCount}::bigint
      where epoch = ${b.epoch}::int`.execute(trx);
  }
}

/**
 * `array[t.latency_buckets[1] + excluded.latency_buckets[1], …]`: the element-wise sum of two
 * histograms (both LATENCY_BUCKETS long), written out so that no subquery runs per updated row.
 */
const SUM_LATENCY_BUCKETS = sql.raw(
  `array[${Array.from({ length: LATENCY_BUCKETS }, (_, i) => `t.latency_buckets[${i + 1}] + excluded.latency_buckets[${i + 1}]`).join(', ')}]`,
);

async function flushUsage(trx: Transaction<AttributionTables>, usage: UsageBatch): Promise<void> {
  for (const [table, keyColumn, cells] of [
    ['usage_hourly_adapter', 'adapter_id', usage.adapters],
    ['usage_hourly_tenant', 'tenant_id', usage.tenants],
  ] as const) {
    if (cells.size === 0) continue;
    const rows = [...cells.values()]
      .flatMap((ofHour) => [...ofHour.values()])
      .sort(
        byKey(
          (r) => r.key,
          (r) => r.hour,
        ),
      );
    await sql`
      insert into ${sql.table(table)} as t (hour, ${sql.ref(keyColumn)}, requests, failed, prompt_tokens, completion_tokens, latency_buckets)
      select h, k, r::bigint, f::bigint, p::bigint, c::bigint, l::bigint[]
      from unnest(${rows.map((r) => r.hour)}::text[], ${rows.map((r) => r.key)}::text[], ${rows.map((r) => r.requests.toString())}::text[],
                  ${rows.map((r) => r.failed.toString())}::text[], ${rows.map((r) => r.promptTokens.toString())}::text[],
                  ${rows.map((r) => r.completionTokens.toString())}::text[], ${rows.map((r) => `{${r.histogram.join(',')}}`)}::text[])
        as u(h, k, r, f, p, c, l)
      on conflict (${sql.ref(keyColumn)}, hour) do update set
        requests = t.requests + excluded.requests,
        failed = t.failed + excluded.failed,
        prompt_tokens = t.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = t.completion_tokens + excluded.completion_tokens,
        latency_buckets = ${SUM_LATENCY_BUCKETS}`.execute(trx);
  }
}

/** Closes `open` at the marker with stream sequence `lastSequence`: splits its pools, fixes its totals. */
async function closeEpoch(
  trx: Transaction<AttributionTables>,
  open: OpenEpoch,
  lastSequence: number,
  closedAt: string,
  facts: FactBook,
): Promise<ClosedEpochRecord> {
  const epoch = open.epoch;
  const direct = await trx
    .selectFrom('epoch_account_earnings')
    .select(['account', 'amount'])
    .where('epoch', '=', epoch)
    .execute();
  const { rows: pools } = await sql<{ datanet_id: string; snapshot_id: string; amount: string }>`
    select datanet_id, snapshot_id, sum(amount)::text as amount from epoch_pools where epoch = ${epoch}::int
    group by datanet_id, snapshot_id`.execute(trx);
  const result = closeEpochTotals(
    direct.map((r) => ({ account: r.account, amount: BigInt(r.amount) })),
    pools.map((p) => ({ datanetId: p.datanet_id, snapshotId: p.snapshot_id, amount: BigInt(p.amount) })),
    (d, s) => facts.snapshot(d, s),
  );
  const totals = result.totals.map((t) => ({ account: t.account, amount: t.amount.toString() }));
  const hash = totalsHash(totals);

  // The direct shares are already there; add each contributor's part of the pools (one row per account).
  const contributorTotals = new Map<string, bigint>();
  for (const e of result.contributorEarnings)
    contributorTotals.set(e.account, (contributorTotals.get(e.account) ?? 0n) + e.amount);
  // Accounts without a row yet (most contributors) are plainly inserted; only those that already
  // earned directly this epoch are added to. `direct` is every row of the epoch, read in this
  // transaction under the checkpoint lock, so the split is exact.
  const existing = new Set(direct.map((r) => r.account));
  const fresh: [string, bigint][] = [];
  const topUp: [string, bigint][] = [];
  for (const entry of contributorTotals) (existing.has(entry[0]) ? topUp : fresh).push(entry);
  fresh.sort(byKey(([a]) => a));
  topUp.sort(byKey(([a]) => a));
  for (let i = 0; i < fresh.length; i += 50_000) {
    const chunk = fresh.slice(i, i + 50_000);
    await sql`
      insert into epoch_account_earnings (epoch, account, amount)
      select ${epoch}::int, a, m::numeric from unnest(${chunk.map(([a]) => a)}::text[], ${chunk.map(([, m]) => m.toString())}::text[]) as u(a, m)`.execute(
      trx,
    );
  }
  for (let i = 0; i < topUp.length; i += 50_000) {
    const chunk = topUp.slice(i, i + 50_000);
    await sql`
      update epoch_account_earnings as t set amount = t.amount + u.m::numeric
      from unnest(${chunk.map(([a]) => a)}::text[], ${chunk.map(([, m]) => m.toString())}::text[]) as u(a, m)
      where t.epoch = ${epoch}::int and t.account = u.a`.execute(trx);
  }
  const row = await trx
    .updateTable('epochs')
    .set({
      status: 'closed',
      last_sequence: lastSequence,
      closed_at: closedAt,
      total_amount: result.sum.toString(),
      totals_hash: hash,
    })
    .where('epoch', '=', epoch)
    .returning(['event_count', 'fee_total'])
    .executeTakeFirstOrThrow();
  if (BigInt(row.fee_total) !== result.sum) {
    throw new Error(
      `epoch ${epoch}: totals ${result.sum} differ from fees ${row.fee_total}; refusing to close`,
    );
  }
  const eventId = epochClosedEventId(epoch, closedAt);
  await trx
    .insertInto('epoch_closed_outbox')
    .values({ epoch, event_id: eventId, published_seq: null })
    .execute();
  return {
    eventId,
    epoch,
    policyVersion: open.policyVersion,
    totals,
    totalAmount: result.sum.toString(),
    totalsHash: hash,
    eventCount: Number(row.event_count),
    firstSequence: open.firstSequence,
    lastSequence,
    closedAt,
  };
}

/**
 * The id of an epoch's `attribution.epoch.closed` event: a UUID v7 whose time is the marker's
 * occurredAt and whose other bits come from sha256(epoch), so that a re-publish (from the outbox,
 * after a crash) carries the same id and JetStream drops the copy.
 */
export function epochClosedEventId(epoch: number, closedAt: string): string {
  const ms = BigInt(Date.parse(closedAt));
  const digest = createHash('sha256').update(`attribution.epoch.closed:${epoch}`).digest();
  const bytes = Buffer.alloc(16);
  for (let i = 0; i < 6; i += 1) bytes[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn);
  digest.copy(bytes, 6, 0, 10);
  bytes[6] = 0x70 | (bytes[6]! & 0x0f);
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
