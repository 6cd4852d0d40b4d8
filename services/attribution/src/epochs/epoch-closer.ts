/**
 * EpochCloser: ends the open epoch by publishing its close marker (`inference.epoch_closing`) on
 * the INFERENCE stream. It never closes anything itself: the consumer does, where the marker
 * lands in the stream, so the cut is the same live and on replay.
 *
 * Any number of closers may run (a scheduled one per instance, an operator's command): the marker
 * of epoch n is published on `inference.epoch_closing.<n>` with "subject must not exist", so the
 * first one wins and the others get `already-requested`. The clock decides only *when* to ask;
 * it never decides what belongs to an epoch.
 */
import type { Kysely } from 'kysely';

import { createEvent, InferenceEpochClosingV1 } from '@longtail/contracts';
import {
  STREAM_SUBJECT_MUST_NOT_EXIST,
  WrongExpectedSequence,
  type EventPublisher,
} from '@longtail/messaging';

import type { FactBook } from '../facts/facts.js';
import type { AttributionTables } from '../projections/schema.js';
import { GENESIS_EPOCH, policyForEpoch } from './epoch.js';

export interface CloseRequest {
  readonly epoch: number;
  readonly nextPolicyVersion: number;
  readonly outcome: 'requested' | 'already-requested';
}

export class EpochCloser {
  readonly #db: Kysely<AttributionTables>;
  readonly #publisher: EventPublisher;
  readonly #facts: FactBook;
  readonly #now: () => Date;
  /** When this closer first saw each epoch open (for epoch 0, which no marker opened). */
  readonly #firstSeen = new Map<number, number>();

  constructor(
    db: Kysely<AttributionTables>,
    publisher: EventPublisher,
    facts: FactBook,
    now: () => Date = () => new Date(),
  ) {
    this.#db = db;
    this.#publisher = publisher;
    this.#facts = facts;
    this.#now = now;
  }

  /** Publishes the marker that closes the epoch open now (as the projection sees it). */
  async requestClose(): Promise<CloseRequest> {
    const open = await this.#openEpoch();
    // From the table, not only this instance's fact book: another instance may have projected a new policy.
    const policies = await this.#db
      .selectFrom('policies')
      .select(['version', 'effective_from_epoch'])
      .execute();
    const known = [
      ...this.#facts.policies(),
      ...policies.map((p) => ({ version: p.version, effectiveFromEpoch: p.effective_from_epoch })),
    ];
    const nextPolicyVersion = policyForEpoch(known, open.epoch + 1, open.policyVersion);
    const marker = createEvent(
      InferenceEpochClosingV1,
      { epoch: open.epoch, nextPolicyVersion },
      { occurredAt: this.#now(), correlationId: `epoch-close-${open.epoch}`, causationId: null },
    );
    try {
      await this.#publisher.publish(marker, { expectedLastSubjectSequence: STREAM_SUBJECT_MUST_NOT_EXIST });
      return { epoch: open.epoch, nextPolicyVersion, outcome: 'requested' };
    } catch (error) {
      if (error instanceof WrongExpectedSequence)
        return { epoch: open.epoch, nextPolicyVersion, outcome: 'already-requested' };
      throw error;
    }
  }

  /** Scheduled use: closes the open epoch once it has been open `epochMs`. */
  async tick(epochMs: number): Promise<CloseRequest | undefined> {
    const open = await this.#openEpoch();
    const now = this.#now().getTime();
    const openedAt =
      open.openedAt !== null ? Date.parse(open.openedAt) : (this.#firstSeen.get(open.epoch) ?? now);
    if (!this.#firstSeen.has(open.epoch)) this.#firstSeen.set(open.epoch, openedAt);
    if (now - openedAt < epochMs) return undefined;
    return this.requestClose();
  }

  async #openEpoch(): Promise<{ epoch: number; policyVersion: number; openedAt: string | null }> {
    const row = await this.#db
      .selectFrom('epochs')
      .select(['epoch', 'policy_version', 'opened_at'])
      .where('status', '=', 'open')
      .executeTakeFirst();
    return row
      ? { epoch: row.epoch, policyVersion: row.policy_version, openedAt: row.opened_at }
      : GENESIS_EPOCH;
  }
}
