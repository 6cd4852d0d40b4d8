/**
 * The scheduler's adapter catalog: a projection of the ADAPTERS stream. Placement reads it to
 * know an adapter's base model and size. Rows and the stream checkpoint commit in one
 * transaction, so a redelivered batch (the process died after commit, before the ack) changes
 * nothing, and the catalog can be rebuilt from the stream at any time.
 */
import { Inject, Injectable } from '@nestjs/common';
import { STREAMS, type KnownEvent } from '@longtail/contracts';
import { applyProjectionBatch, fillStreamGaps, readCheckpoint, type DatabaseHandle, type SequencedEvent } from '@longtail/database';
import { MESSAGING_CONNECTION, OnEvents, streamGapSource, type MessagingConnection, type ReceivedEvent, type StreamGapSource } from '@longtail/messaging';
import { DATABASE, failpoint, parseKnownEvent } from '@longtail/service';
import type { Transaction } from 'kysely';
import type { SchedulerTables } from './adapter-catalog.tables.js';

export const ADAPTER_CATALOG = { projection: 'scheduler.adapter_catalog', stream: STREAMS.ADAPTERS.name } as const;

/** Read once at start-up; validated by the service's config (`CONSUMER_ACK_WAIT_S`). */
const ackWaitMs = Number(process.env['CONSUMER_ACK_WAIT_S'] ?? 30) * 1000;

@Injectable()
export class AdapterCatalogProjection {
  readonly #gaps: StreamGapSource<KnownEvent>;

  constructor(
    @Inject(DATABASE) private readonly database: DatabaseHandle<SchedulerTables>,
    @Inject(MESSAGING_CONNECTION) conn: MessagingConnection,
  ) {
    this.#gaps = streamGapSource(conn, { stream: ADAPTER_CATALOG.stream, parse: parseKnownEvent });
  }

  /**
   * A projection never dead-letters a valid event (skipping one would corrupt every later row):
   * a failing batch (PostgreSQL down, say) is retried until it applies. Invalid events never
   * reach it; the messaging layer dead-letters them.
   */
  @OnEvents({
    stream: STREAMS.ADAPTERS.name,
    durable: 'scheduler-adapter-catalog',
    batch: { size: 256, maxWaitMs: 50 },
    maxDeliver: 1_000_000,
    backoffMs: [250, 1000, 2000, 5000],
    ackWaitMs,
  })
  async onAdapterEvents(batch: ReadonlyArray<ReceivedEvent<KnownEvent>>): Promise<void> {
    // Delivery order is not stream order (a failed batch waits while later ones arrive): apply
    // from the checkpoint on, reading any position the batch lacks from the stream itself.
    const checkpoint = (await readCheckpoint(this.database.db, ADAPTER_CATALOG.projection))?.lastSequence ?? 0n;
    const received = batch.map(({ event, meta }) => ({ seq: meta.seq, event }));
    const events = await fillStreamGaps(ADAPTER_CATALOG.projection, checkpoint, received, this.#gaps);
    if (events.length > 0) await applyProjectionBatch(this.database.db, ADAPTER_CATALOG, events, applyAdapterEvents);
    failpoint('scheduler.adapter-catalog.after-commit');
  }
}

export async function applyAdapterEvents(
  trx: Transaction<SchedulerTables>,
  events: ReadonlyArray<SequencedEvent<KnownEvent>>,
): Promise<void> {
  for (const { seq, event } of events) {
    if (event.type === 'adapters.registered') {
      const d = event.data;
      await trx
        .insertInto('adapter_catalog')
        .values({
          adapter_id: d.adapterId,
          base_model: d.baseModel,
          rank: d.rank,
          size_bytes: BigInt(d.sizeBytes),
          weights_sha256: d.weightsSha256,
          weights_object_key: d.weightsObjectKey,
          registered_at: new Date(event.occurredAt),
          retired_at: null,
          updated_seq: seq,
        })
        // Terms of an adapter id never change: a second registration of the same id is ignored.
        .onConflict((oc) => oc.column('adapter_id').doNothing())
        .execute();
    } else if (event.type === 'adapters.retired') {
      await trx
        .updateTable('adapter_catalog')
        .set({ retired_at: new Date(event.occurredAt), updated_seq: seq })
        .where('adapter_id', '=', event.data.adapterId)
        .where('retired_at', 'is', null)
        .execute();
    }
  }
}
