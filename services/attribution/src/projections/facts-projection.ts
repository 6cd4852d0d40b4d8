/**
 * The facts projection: adapters (ADAPTERS), Datanets, contributions and snapshots (DATANETS) and
 * split policies (ATTRIBUTION, `attribution.policy.set`) as rows, plus the in-memory `FactBook`
 * the inference projection prices with. Every write is first-wins (`on conflict do nothing`): a
 * fact never changes once recorded, so redelivery and duplicates change nothing.
 */
import { sql, type Insertable, type Kysely, type Transaction } from 'kysely';

import type { KnownEvent } from '@longtail/contracts';
import type { ProjectionRef, SequencedEvent } from '@longtail/database';

import { FactBook } from '../facts/facts.js';
import type { MissingFactRef } from '../inference/attribute.js';
import { adapterTerms, splitPolicy } from '../model/attribution-input.js';
import type { AttributionTables, TrainedOnJson } from './schema.js';

/** Any event attribution reads from a stream. */
export type StreamEvent = KnownEvent;

/** The fact projections: one checkpoint per source stream. */
export const FACT_PROJECTIONS = {
  adapters: { projection: 'attribution.adapters', stream: 'ADAPTERS', filterSubject: 'adapters.>' },
  datanets: { projection: 'attribution.datanets', stream: 'DATANETS', filterSubject: 'datanets.>' },
  policies: {
    projection: 'attribution.policies',
    stream: 'ATTRIBUTION',
    filterSubject: 'attribution.policy.set.>',
  },
} as const satisfies Record<string, ProjectionRef & { filterSubject: string }>;

/** Writes the fact events of a batch (any of the three streams). */
export async function applyFactEvents(
  trx: Transaction<AttributionTables>,
  events: ReadonlyArray<SequencedEvent<StreamEvent>>,
): Promise<void> {
  // Registrations in a row are written with one statement (a fresh replay has 10,000s of them).
  let registrations: Insertable<AttributionTables['adapters']>[] = [];
  const flushRegistrations = async (): Promise<void> => {
    if (registrations.length === 0) return;
    await trx
      .insertInto('adapters')
      .values(registrations)
      .onConflict((c) => c.column('adapter_id').doNothing())
      .execute();
    registrations = [];
  };
  for (const { seq, event } of events) {
    if (event.type !== 'adapters.registered') await flushRegistrations();
    switch (event.type) {
      case 'adapters.registered': {
        const terms = adapterTerms(event);
        const trainedOn: TrainedOnJson[] = terms.trainedOn.map((t) => ({ ...t }));
        // first registration of an id wins, also within one statement
        if (registrations.some((r) => r.adapter_id === terms.adapterId)) break;
        registrations.push({
          adapter_id: terms.adapterId,
          creator: terms.creator,
          price_per_1k_tokens: terms.pricePer1kTokens.toString(),
          owner_tenant_id: event.data.ownerTenantId,
          trained_on: JSON.stringify(trainedOn),
          retired: false,
          registered_seq: seq,
        });
        break;
      }
      case 'adapters.retired':
        await trx
          .updateTable('adapters')
          .set({ retired: true })
          .where('adapter_id', '=', event.data.adapterId)
          .execute();
        break;
      case 'datanets.datanet.created':
        await trx
          .insertInto('datanets')
          .values({
            datanet_id: event.data.datanetId,
            name: event.data.name,
            owner_tenant_id: event.data.ownerTenantId,
            created_seq: seq,
          })
          .onConflict((c) => c.column('datanet_id').doNothing())
          .execute();
        break;
      case 'datanets.contribution.added': {
        const d = event.data;
        await trx
          .insertInto('datanet_contributions')
          .values({
            datanet_id: d.datanetId,
            contribution_id: d.contributionId,
            contributor: d.contributorAddress,
            content_sha256: d.contentSha256,
            size_tokens: d.sizeTokens,
            weight: String(d.weight ?? d.sizeTokens),
            object_key: d.objectKey ?? null,
            seq,
          })
          .onConflict((c) => c.columns(['datanet_id', 'contribution_id']).doNothing())
          .execute();
        break;
      }
      case 'datanets.snapshot.published': {
        const d = event.data;
        const inserted = await trx
          .insertInto('snapshots')
          .values({
            datanet_id: d.datanetId,
            snapshot_id: d.snapshotId,
            contribution_count: d.contributionCount,
            total_weight: d.contributors.reduce((s, c) => s + BigInt(c.weight), 0n).toString(),
            through_sequence: d.throughSequence,
            seq,
          })
          .onConflict((c) => c.columns(['datanet_id', 'snapshot_id']).doNothing())
          .returning('snapshot_id')
          .execute();
        if (inserted.length === 0 || d.contributors.length === 0) break;
        for (let i = 0; i < d.contributors.length; i += 5000) {
          const chunk = d.contributors.slice(i, i + 5000);
          await sql`
            insert into snapshot_contributors (datanet_id, snapshot_id, account, weight)
            select ${d.datanetId}, ${d.snapshotId}, a, w::numeric
            from unnest(${chunk.map((c) => c.account)}::text[], ${chunk.map((c) => String(c.weight))}::text[]) as u(a, w)
            on conflict do nothing`.execute(trx);
        }
        break;
      }
      case 'attribution.policy.set': {
        const p = splitPolicy(event);
        await trx
          .insertInto('policies')
          .values({
            version: p.version,
            effective_from_epoch: p.effectiveFromEpoch,
            operator_bps: p.operatorBps,
            creator_bps: p.creatorBps,
            contributors_bps: p.contributorsBps,
            treasury_bps: p.treasuryBps,
            treasury_address: p.treasuryAddress,
            seq,
          })
          .onConflict((c) => c.column('version').doNothing())
          .execute();
        break;
      }
      default:
        break;
    }
  }
  await flushRegistrations();
}

/** Adds the facts of events (already committed) to an in-memory book. */
export function absorbFacts(book: FactBook, events: Iterable<StreamEvent>): void {
  for (const event of events) {
    switch (event.type) {
      case 'adapters.registered':
        book.addAdapter(adapterTerms(event));
        break;
      case 'adapters.retired':
        book.retireAdapter(event.data.adapterId);
        break;
      case 'datanets.snapshot.published':
        book.addSnapshot(
          event.data.datanetId,
          event.data.snapshotId,
          event.data.contributors.map((c) => ({ account: c.account, weight: BigInt(c.weight) })),
        );
        break;
      case 'attribution.policy.set':
        book.addPolicy(splitPolicy(event));
        break;
      default:
        break;
    }
  }
}

/** Loads every fact from the tables (at start-up). */
export async function loadFactBook(db: Kysely<AttributionTables>): Promise<FactBook> {
  const book = new FactBook();
  await loadInto(book, db, {});
  return book;
}

/** Loads one missing fact into the book, if the tables have it now; true when found. */
export async function loadMissingFact(
  book: FactBook,
  db: Kysely<AttributionTables>,
  missing: MissingFactRef,
): Promise<boolean> {
  await loadInto(book, db, { missing });
  switch (missing.kind) {
    case 'adapter':
      return book.adapter(missing.adapterId) !== undefined;
    case 'snapshot':
      return book.snapshot(missing.datanetId, missing.snapshotId) !== undefined;
    case 'policy':
      return book.policy(missing.version) !== undefined;
  }
}

async function loadInto(
  book: FactBook,
  db: Kysely<AttributionTables>,
  { missing }: { missing?: MissingFactRef },
): Promise<void> {
  if (!missing || missing.kind === 'adapter') {
    let q = db.selectFrom('adapters').selectAll().orderBy('adapter_id');
    if (missing) q = q.where('adapter_id', '=', missing.adapterId);
    for (const row of await q.execute()) {
      book.addAdapter({
        adapterId: row.adapter_id,
        creator: row.creator,
        pricePer1kTokens: BigInt(row.price_per_1k_tokens),
        trainedOn: row.trained_on,
      });
      if (row.retired) book.retireAdapter(row.adapter_id);
    }
  }
  if (!missing || missing.kind === 'snapshot') {
    let q = db.selectFrom('snapshots').select(['datanet_id', 'snapshot_id']);
    let c = db.selectFrom('snapshot_contributors').select(['datanet_id', 'snapshot_id', 'account', 'weight']);
    if (missing) {
      q = q.where('datanet_id', '=', missing.datanetId).where('snapshot_id', '=', missing.snapshotId);
      c = c.where('datanet_id', '=', missing.datanetId).where('snapshot_id', '=', missing.snapshotId);
    }
    const contributors = new Map<string, { account: string; weight: bigint }[]>();
    for (const row of await c.execute()) {
      const key = `${row.datanet_id}@${row.snapshot_id}`;
      let list = contributors.get(key);
      if (!list) contributors.set(key, (list = []));
      list.push({ account: row.account, weight: BigInt(row.weight) });
    }
    for (const row of await q.execute()) {
      book.addSnapshot(
        row.datanet_id,
        row.snapshot_id,
        contributors.get(`${row.datanet_id}@${row.snapshot_id}`) ?? [],
      );
    }
  }
  if (!missing || missing.kind === 'policy') {
    let q = db.selectFrom('policies').selectAll().orderBy('version');
    if (missing) q = q.where('version', '=', missing.version);
    for (const row of await q.execute()) {
      book.addPolicy({
        version: row.version,
        effectiveFromEpoch: row.effective_from_epoch,
        operatorBps: row.operator_bps,
        creatorBps: row.creator_bps,
        contributorsBps: row.contributors_bps,
        treasuryBps: row.treasury_bps,
        treasuryAddress: row.treasury_address,
      });
    }
  }
}
