/**
 * Publishes `attribution.epoch.closed` for every epoch the projection has closed (the outbox
 * rows written in the closing transaction). The event id is fixed at close time, and the publish
 * expects the subject `attribution.epoch.closed.<epoch>` to be empty, so an epoch is announced
 * once, whatever crashes between commit and publish: a re-publish is refused by the server
 * (`WrongExpectedSequence`), which the relay records as done.
 */
import type { Kysely } from 'kysely';

import { AttributionEpochClosedV1, createEvent } from '@longtail/contracts';
import {
  STREAM_SUBJECT_MUST_NOT_EXIST,
  WrongExpectedSequence,
  type EventPublisher,
} from '@longtail/messaging';

import type { AttributionTables } from '../projections/schema.js';

export class EpochClosedRelay {
  readonly #db: Kysely<AttributionTables>;
  readonly #publisher: EventPublisher;
  #running: Promise<number> | undefined;

  constructor(db: Kysely<AttributionTables>, publisher: EventPublisher) {
    this.#db = db;
    this.#publisher = publisher;
  }

  /** Publishes every closed epoch not yet published; returns how many it published now. Serialised. */
  publishPending(): Promise<number> {
    const run = (this.#running ?? Promise.resolve(0)).catch(() => 0).then(() => this.#publishPending());
    this.#running = run;
    return run;
  }

  async #publishPending(): Promise<number> {
    const pending = await this.#db
      .selectFrom('epoch_closed_outbox')
      .selectAll()
      .where('published_seq', 'is', null)
      .orderBy('epoch')
      .execute();
    let published = 0;
    for (const row of pending) {
      const event = await this.buildEvent(row.epoch, row.event_id);
      let seq: bigint;
      try {
        seq = (
          await this.#publisher.publish(event, { expectedLastSubjectSequence: STREAM_SUBJECT_MUST_NOT_EXIST })
        ).seq;
        published += 1;
      } catch (error) {
        if (!(error instanceof WrongExpectedSequence)) throw error;
        seq = 0n; // announced before (by this or another instance); 0 = "already on the stream"
      }
      await this.#db
        .updateTable('epoch_closed_outbox')
        .set({ published_seq: seq })
        .where('epoch', '=', row.epoch)
        .execute();
    }
    return published;
  }

  /** The `attribution.epoch.closed` event of a closed epoch, from the tables. */
  async buildEvent(epoch: number, eventId: string): Promise<AttributionEpochClosedV1> {
    const e = await this.#db
      .selectFrom('epochs')
      .selectAll()
      .where('epoch', '=', epoch)
      .where('status', '=', 'closed')
      .executeTakeFirstOrThrow();
    const totals = await this.#db
      .selectFrom('epoch_account_earnings')
      .select(['account', 'amount'])
      .where('epoch', '=', epoch)
      .orderBy('account')
      .execute();
    return createEvent(
      AttributionEpochClosedV1,
      {
        epoch,
        policyVersion: e.policy_version,
        totals: totals.map((t) => ({ account: t.account, amount: t.amount })),
        totalAmount: e.total_amount!,
        totalsHash: e.totals_hash!,
        eventCount: Number(e.event_count),
        firstSequence: Number(e.first_sequence),
        lastSequence: Number(e.last_sequence),
      },
      {
        id: eventId,
        occurredAt: e.closed_at!,
        correlationId: `attribution-epoch-${epoch}`,
        causationId: null,
      },
    );
  }
}
