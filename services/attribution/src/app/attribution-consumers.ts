/**
 * The service's consumers: three fact streams and the INFERENCE stream, each a durable pull
 * consumer with explicit acks, in batches. A batch handler resolves only after its transaction
 * has committed (then the messaging lib acks); if it throws, the whole batch is redelivered and
 * the projection checkpoint skips what was already applied. After an INFERENCE batch, the epochs
 * it closed are announced (outbox relay) and refused events are dead-lettered with their reason.
 */
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { headers as natsHeaders } from '@nats-io/nats-core';

import { AttributionPolicySetV1, createEvent, deadLetterSubject } from '@longtail/contracts';
import {
  EventPublisher,
  LongtailHeaders,
  MESSAGING_CONNECTION,
  MessagingService,
  STREAM_SUBJECT_MUST_NOT_EXIST,
  WrongExpectedSequence,
  streamGapSource,
  type MessagingConnection,
  type OnEventsOptions,
  type ReceivedEvent,
} from '@longtail/messaging';
import type { SequencedEvent } from '@longtail/database';

import { EpochClosedRelay } from '../epochs/epoch-closed-relay.js';
import { EpochCloser } from '../epochs/epoch-closer.js';
import { AttributionProjector } from '../ingest/attribution-projector.js';
import { parseAttributionEvent } from '../ingest/codec.js';
import { FACT_PROJECTIONS, type StreamEvent } from '../projections/facts-projection.js';
import type { RejectedEvent } from '../projections/inference-projection.js';
import type { AttributionOptions } from './attribution-options.js';
import { ATTRIBUTION_OPTIONS } from './tokens.js';

export const INFERENCE_DURABLE = 'attribution-inference';

/** Durable consumer of a fact projection. */
export function factDurable(prefix: string, name: string): string {
  return `${prefix}-${name}`;
}

/**
 * True when every fact consumer has nothing pending and nothing unacknowledged: all facts the
 * streams held have been committed (acks follow commits).
 */
export function factsCaughtUp(conn: MessagingConnection, prefix: string): () => Promise<boolean> {
  return async () => {
    const jsm = await conn.jsm();
    for (const [name, ref] of Object.entries(FACT_PROJECTIONS)) {
      const info = await jsm.consumers.info(ref.stream, factDurable(prefix, name)).catch(() => undefined);
      if (!info || info.num_pending > 0 || info.num_ack_pending > 0) return false;
    }
    return true;
  };
}

function sequenced(batch: ReadonlyArray<ReceivedEvent>): SequencedEvent<StreamEvent>[] {
  return batch.map((item) => ({ seq: item.meta.seq, event: item.event as unknown as StreamEvent }));
}

@Injectable()
export class AttributionConsumers implements OnApplicationBootstrap, OnApplicationShutdown {
  #timer: NodeJS.Timeout | undefined;
  readonly #log = new Logger('attribution');
  readonly #warn = (what: string) => (error: unknown) => {
    this.#log.warn(`${what}: ${error instanceof Error ? error.message : String(error)}`);
  };

  constructor(
    @Inject(ATTRIBUTION_OPTIONS) private readonly options: AttributionOptions,
    @Inject(MessagingService) private readonly messaging: MessagingService,
    @Inject(MESSAGING_CONNECTION) private readonly conn: MessagingConnection,
    @Inject(EventPublisher) private readonly publisher: EventPublisher,
    @Inject(AttributionProjector) private readonly projector: AttributionProjector,
    @Inject(EpochClosedRelay) private readonly relay: EpochClosedRelay,
    @Inject(EpochCloser) private readonly closer: EpochCloser,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.#publishGenesisPolicy();
    const prefix = this.options.durablePrefix ?? 'attribution';
    const facts = (
      durable: string,
    ): Pick<OnEventsOptions, 'durable' | 'batch' | 'maxDeliver' | 'backoffMs'> => ({
      durable: factDurable(prefix, durable),
      batch: { size: 500, maxWaitMs: 1000 },
      maxDeliver: 10,
      backoffMs: [500, 2000, 5000],
    });
    for (const [name, ref] of Object.entries(FACT_PROJECTIONS)) {
      const gaps = streamGapSource(this.conn, { stream: ref.stream, filterSubject: ref.filterSubject, parse: parseAttributionEvent });
      await this.messaging.consume(
        { stream: ref.stream, filterSubject: ref.filterSubject, ...facts(name) },
        async (batch: ReadonlyArray<ReceivedEvent>) => {
          await this.projector.applyFacts(ref, sequenced(batch), gaps);
        },
      );
    }
    const inferenceGaps = streamGapSource(this.conn, { stream: 'INFERENCE', parse: parseAttributionEvent });
    await this.messaging.consume(
      {
        stream: 'INFERENCE',
        durable: prefix === 'attribution' ? INFERENCE_DURABLE : `${prefix}-inference`,
        batch: { size: this.options.inferenceBatch, maxWaitMs: 1000 },
        // A batch only fails while a fact is late or the database is away: retry for minutes.
        maxDeliver: 60,
        backoffMs: this.options.retryBackoffMs ?? [500, 1000, 2000, 5000],
      },
      async (batch: ReadonlyArray<ReceivedEvent>) => {
        const result = await this.projector.applyInference(sequenced(batch), inferenceGaps);
        if (result.rejected.length > 0) await this.#deadLetter(result.rejected, batch);
        // Also after a redelivered batch: a crash may have come between a close's commit and its announcement.
        await this.relay
          .publishPending()
          .catch(this.#warn('announcing closed epochs failed; retried after the next batch'));
      },
    );
    await this.relay
      .publishPending()
      .catch(this.#warn('announcing closed epochs failed; retried after the next batch'));
    if (this.options.epochSeconds > 0) {
      const epochMs = this.options.epochSeconds * 1000;
      this.#timer = setInterval(
        () => void this.closer.tick(epochMs).catch(this.#warn('epoch close request failed')),
        Math.min(epochMs, 10_000),
      );
      this.#timer.unref();
    }
  }

  onApplicationShutdown(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  /** Policy version 1 from the configuration, if the ATTRIBUTION stream has none yet. */
  async #publishGenesisPolicy(): Promise<void> {
    const genesis = this.options.genesisPolicy;
    if (!genesis || this.projector.facts.policy(1)) return;
    const event = createEvent(
      AttributionPolicySetV1,
      { version: 1, effectiveFromEpoch: 0, ...genesis, reason: 'genesis policy from configuration' },
      { correlationId: 'attribution-genesis-policy', causationId: null },
    );
    try {
      await this.publisher.publish(event, { expectedLastSubjectSequence: STREAM_SUBJECT_MUST_NOT_EXIST });
    } catch (error) {
      if (!(error instanceof WrongExpectedSequence)) throw error;
    }
  }

  /** Refused events go to the consumer's dead-letter subject with the reason (after commit). */
  async #deadLetter(rejected: readonly RejectedEvent[], batch: ReadonlyArray<ReceivedEvent>): Promise<void> {
    const durable = this.options.durablePrefix
      ? `${this.options.durablePrefix}-inference`
      : INFERENCE_DURABLE;
    for (const r of rejected) {
      const original = batch.find((item) => item.meta.seq === r.seq);
      const h = natsHeaders();
      h.set(LongtailHeaders.DlqReason, r.reason.slice(0, 1000));
      h.set(LongtailHeaders.DlqStream, 'INFERENCE');
      h.set(LongtailHeaders.DlqSeq, String(r.seq));
      h.set(LongtailHeaders.DlqSubject, original?.meta.subject ?? '');
      h.set(LongtailHeaders.DlqDurable, durable);
      await this.conn.js
        .publish(
          deadLetterSubject({ stream: 'INFERENCE', durable }),
          new TextEncoder().encode(JSON.stringify(original?.event ?? { id: r.eventId })),
          {
            headers: h,
            msgID: `dlq.INFERENCE.${durable}.${r.seq}`,
          },
        )
        .catch(
          this.#warn(`dead-lettering refused event ${r.seq} failed (it is recorded in rejected_events)`),
        );
    }
  }
}
