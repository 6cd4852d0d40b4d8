/**
 * Publishing events to JetStream. Two guarantees are explicit arguments, never hopes:
 * deduplication (`Nats-Msg-Id` is always the event id, so a retried publish inside the stream's
 * duplicate window is stored once and reported as `duplicate`) and optimistic concurrency
 * (`expectedLastSubjectSequence`: the publish succeeds only if the last message on the subject
 * has that sequence, or with `STREAM_SUBJECT_MUST_NOT_EXIST`, if there is none).
 */
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { headers as natsHeaders } from '@nats-io/nats-core';
import type { EventEnvelope } from '@longtail/contracts';
import { getTracer, injectTraceContext } from '@longtail/telemetry';
import type { MessagingConnection } from './connection.js';
import type { EventCodec } from './codec.js';
import { isWrongLastSequence, messageOf, PublishFailed, WrongExpectedSequence } from './errors.js';
import { LongtailHeaders } from './headers.js';

/** Expectation that the subject has no message yet (the aggregate's first event). */
export const STREAM_SUBJECT_MUST_NOT_EXIST = 'no-previous' as const;

/** A stream sequence (the last one seen on the subject) or `STREAM_SUBJECT_MUST_NOT_EXIST`. */
export type ExpectedSubjectSequence = bigint | number | typeof STREAM_SUBJECT_MUST_NOT_EXIST;

export interface PublishOptions {
  /** Optimistic concurrency on the publish subject; mismatch throws `WrongExpectedSequence`. */
  readonly expectedLastSubjectSequence?: ExpectedSubjectSequence;
  /** Overrides the codec's `subjectFor(event)`. */
  readonly subject?: string;
  /** Publish-ack timeout (ms); default: the connection's API timeout. */
  readonly timeoutMs?: number;
}

export interface PublishResult {
  readonly stream: string;
  /** Stream sequence the event is stored at (the original one for a duplicate). */
  readonly seq: bigint;
  /** True when the stream already had a message with this event id (nothing new was stored). */
  readonly duplicate: boolean;
}

/**
 * Publishes events. In Nest, inject `EventPublisher`; elsewhere use `createEventPublisher`.
 * (An abstract class so that it is its own injection token.)
 */
export abstract class EventPublisher {
  abstract publish(event: EventEnvelope, options?: PublishOptions): Promise<PublishResult>;
}

export function createEventPublisher(conn: MessagingConnection, codec: EventCodec): EventPublisher {
  return new EventPublisherImpl(conn, codec);
}

function toExpectation(expected: ExpectedSubjectSequence): number {
  if (expected === STREAM_SUBJECT_MUST_NOT_EXIST) return 0;
  const n = typeof expected === 'bigint' ? Number(expected) : expected;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new RangeError(
      `expectedLastSubjectSequence must be a positive sequence or STREAM_SUBJECT_MUST_NOT_EXIST, got ${expected}`,
    );
  }
  return n;
}

class EventPublisherImpl extends EventPublisher {
  readonly #conn: MessagingConnection;
  readonly #codec: EventCodec;

  constructor(conn: MessagingConnection, codec: EventCodec) {
    super();
    this.#conn = conn;
    this.#codec = codec;
  }

  async publish(event: EventEnvelope, options: PublishOptions = {}): Promise<PublishResult> {
    const subject = options.subject ?? this.#codec.subjectFor(event);
    const expected = options.expectedLastSubjectSequence;
    const lastSubjectSequence = expected === undefined ? undefined : toExpectation(expected);
    const data = this.#codec.encode(event);

    const span = getTracer('@longtail/messaging').startSpan(`send ${subject}`, {
      kind: SpanKind.PRODUCER,
      attributes: {
        'messaging.system': 'nats',
        'messaging.operation.type': 'send',
        'messaging.destination.name': subject,
        'messaging.message.id': event.id,
        'messaging.message.body.size': data.byteLength,
        'longtail.event.type': event.type,
      },
    });
    const ctx = trace.setSpan(context.active(), span);
    try {
      const h = natsHeaders();
      injectTraceContext(h, ctx);
      h.set(LongtailHeaders.EventType, event.type);
      h.set(LongtailHeaders.EventVersion, String(event.version));
      const ack = await context.with(ctx, () =>
        this.#conn.js.publish(subject, data, {
          msgID: event.id,
          headers: h,
          ...(lastSubjectSequence !== undefined ? { expect: { lastSubjectSequence } } : {}),
          ...(options.timeoutMs !== undefined ? { timeout: options.timeoutMs } : {}),
        }),
      );
      span.setAttributes({
        'messaging.destination.stream': ack.stream,
        'messaging.nats.sequence': ack.seq,
        'longtail.duplicate': ack.duplicate,
      });
      return { stream: ack.stream, seq: BigInt(ack.seq), duplicate: ack.duplicate };
    } catch (err) {
      span.recordException(err instanceof Error ? err : new Error(messageOf(err)));
      span.setStatus({ code: SpanStatusCode.ERROR, message: messageOf(err) });
      if (expected !== undefined && isWrongLastSequence(err)) {
        throw new WrongExpectedSequence(
          subject,
          expected === STREAM_SUBJECT_MUST_NOT_EXIST ? expected : BigInt(expected),
          { cause: err },
        );
      }
      throw new PublishFailed(subject, { cause: err });
    } finally {
      span.end();
    }
  }
}
