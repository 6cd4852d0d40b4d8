/**
 * The one envelope every longtail event travels in. The envelope is what a consumer in any
 * language reads first: `type` + `version` select the schema of `data`.
 *
 * On the wire an event is the UTF-8 JSON of this object (see `encodeEvent`), published on the
 * subject `subjectFor(event)` with the `Nats-Msg-Id` header set to `id`.
 */
import { z } from 'zod';

import { UtcTimestampSchema, UuidV7Schema } from './fields.js';

export interface EventEnvelope<TType extends string = string, TData = unknown> {
  /** Time-ordered UUID (v7); also the JetStream `Nats-Msg-Id`, so a retried publish is dropped. */
  readonly id: string;
  /** Dotted event type, e.g. `inference.completed`. */
  readonly type: TType;
  /** Schema version of `data`; a published version never changes, a new one is added. */
  readonly version: number;
  /** ISO-8601 UTC time the fact happened (consumers take time from here, never from a clock). */
  readonly occurredAt: string;
  /** Id shared by every event of one user action (e.g. the request id). */
  readonly correlationId: string;
  /** Id of the event or command that caused this one; null for a root cause. */
  readonly causationId: string | null;
  readonly data: TData;
}

/**
 * Dotted lowercase event type: `<family>.<name>[.<name>...]`, where the family is the first token
 * (`adapters`, `inference`, ...) and names the stream.
 */
export const EventTypeSchema = z
  .string()
  .regex(
    /^[a-z][a-z0-9]*(\.[a-z][a-z0-9_]*)+$/,
    'must be a dotted lowercase event type such as inference.completed',
  )
  .describe('Dotted event type, e.g. inference.completed; the first token is the stream family.');

/** A correlation or causation id: any non-empty string of at most 256 characters without whitespace. */
const TraceIdSchema = z.string().min(1).max(256).regex(/^\S+$/, 'must not contain whitespace');

/** The envelope fields, each with its rule; `data` is filled in per event definition. */
export const ENVELOPE_FIELDS = {
  id: UuidV7Schema.describe(
    'Event id, UUID v7; also the JetStream Nats-Msg-Id (deduplication) and the idempotency key of consumers.',
  ),
  occurredAt: UtcTimestampSchema.describe(
    'When the fact happened, ISO-8601 UTC; consumers take time from here, never from their clock.',
  ),
  correlationId: TraceIdSchema.describe(
    'Id shared by every event of one user action (e.g. the request id); 1..256 characters, no whitespace.',
  ),
  causationId: TraceIdSchema.nullable().describe(
    'Id of the event or command that caused this one; null for a root cause.',
  ),
} as const;

/**
 * The envelope with `data` left open: what a consumer checks before it knows the type.
 * `version` is a positive integer.
 */
export const EventEnvelopeSchema = z.strictObject({
  id: ENVELOPE_FIELDS.id,
  type: EventTypeSchema,
  version: z.int().min(1).describe('Schema version of data, a positive integer.'),
  occurredAt: ENVELOPE_FIELDS.occurredAt,
  correlationId: ENVELOPE_FIELDS.correlationId,
  causationId: ENVELOPE_FIELDS.causationId,
  data: z
    .unknown()
    .refine((value) => value !== undefined, 'data is required')
    .describe('The fact itself; its schema is selected by type and version (see each event).'),
});
