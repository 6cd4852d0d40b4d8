/**
 * How events become bytes and subjects, and bytes become events again. The contracts library
 * owns the real schemas; this module only defines the seam (`EventCodec`) and a permissive
 * default (JSON + envelope shape) so the transport works before and without the schemas.
 * Services pass `parseEvent` / `encodeEvent` / `subjectFor` from @longtail/contracts.
 */
import type { EventEnvelope } from '@longtail/contracts';
import { deadLetterSubject as defaultDeadLetterSubject } from './headers.js';

export type ParseResult<E extends EventEnvelope = EventEnvelope> =
  { readonly ok: true; readonly event: E } | { readonly ok: false; readonly error: unknown };

/** Decodes and validates one message body; never throws (an exception counts as a violation). */
export type ParseEvent<E extends EventEnvelope = EventEnvelope> = (raw: Uint8Array) => ParseResult<E>;

export interface EventCodec<E extends EventEnvelope = EventEnvelope> {
  encode(event: E): Uint8Array;
  parse: ParseEvent<E>;
  /** The subject an event is published on when the caller names none. */
  subjectFor(event: E): string;
  /** Where a consumer's dead letters go; default `dlq.<stream>.<durable>`. */
  deadLetterSubject(where: DeadLetterSource): string;
}

export interface DeadLetterSource {
  readonly stream: string;
  readonly durable: string;
  /** The original message's subject. */
  readonly subject: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

function defaultEncode(event: EventEnvelope): Uint8Array {
  return encoder.encode(JSON.stringify(event));
}

function defaultParse(raw: Uint8Array): ParseResult {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(raw));
  } catch (err) {
    return { ok: false, error: `not JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (typeof value !== 'object' || value === null) return { ok: false, error: 'not an object' };
  const v = value as Record<string, unknown>;
  for (const key of ['id', 'type', 'occurredAt', 'correlationId'] as const) {
    if (typeof v[key] !== 'string' || v[key] === '') return { ok: false, error: `envelope.${key} missing` };
  }
  if (!Number.isInteger(v['version'])) return { ok: false, error: 'envelope.version missing' };
  if (!('data' in v)) return { ok: false, error: 'envelope.data missing' };
  return { ok: true, event: v as unknown as EventEnvelope };
}

/** Builds a codec from the parts given, filling the rest with the JSON defaults. */
export function eventCodec<E extends EventEnvelope = EventEnvelope>(
  parts: Partial<EventCodec<E>> = {},
): EventCodec<E> {
  const parse = parts.parse ?? (defaultParse as unknown as ParseEvent<E>);
  return Object.freeze({
    deadLetterSubject:
      parts.deadLetterSubject ?? ((w: DeadLetterSource) => defaultDeadLetterSubject(w.stream, w.durable)),
    encode: parts.encode ?? (defaultEncode as (event: E) => Uint8Array),
    // A throwing parser must not take the consumer down: the message is a violation.
    parse: (raw: Uint8Array): ParseResult<E> => {
      try {
        return parse(raw);
      } catch (error) {
        return { ok: false, error };
      }
    },
    subjectFor: parts.subjectFor ?? ((event: E) => event.type),
  });
}

/** One line describing a violation, for the dead-letter header and logs. */
export function describeViolation(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'string') return error;
  try {
    return JSON.stringify(error);
  } catch {
    return String(error);
  }
}
