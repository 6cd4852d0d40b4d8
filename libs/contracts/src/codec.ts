/**
 * Making, checking and serialising events. Every path in and out validates: `createEvent` never
 * returns an invalid event, `parseEvent` never reports one as valid, `encodeEvent` never produces
 * bytes for one. Events come out deeply frozen and normalised (addresses lowercase, keys in
 * schema order), so the same event always encodes to the same bytes.
 */
import { v7 as uuidv7 } from 'uuid';
import type { z } from 'zod';

import type { AnyEventDefinition, EventDataInput, EventOf } from './define.js';
import { EventEnvelopeSchema, type EventEnvelope } from './envelope.js';
import { CONTRACT_VIOLATION_CODES, ContractViolation, issuesFromZod } from './errors.js';
import { findDefinition, isEventType, type KnownEvent } from './registry.js';

/** Envelope fields a producer supplies besides the data. */
export interface EventMetadata {
  /** Id shared by every event of one user action (e.g. the request id). */
  readonly correlationId: string;
  /** Id of the event or command that caused this one; null for a root cause. */
  readonly causationId: string | null;
  /** When the fact happened; defaults to now. A `Date` is written as ISO-8601 UTC. */
  readonly occurredAt?: string | Date;
  /**
   * Event id (UUID v7); defaults to a new one. Pass the same id when re-publishing the same fact
   * (e.g. after a crash, from an outbox), so that JetStream and consumers drop the copy.
   */
  readonly id?: string;
}

export type ParseEventResult =
  | { readonly ok: true; readonly event: KnownEvent }
  | { readonly ok: false; readonly error: ContractViolation };

/** Builds a validated, frozen event of the given definition. Throws `ContractViolation` if invalid. */
export function createEvent<D extends AnyEventDefinition>(
  definition: D,
  data: EventDataInput<D>,
  metadata: EventMetadata,
): EventOf<D> {
  const occurredAt = metadata.occurredAt ?? new Date();
  const raw = {
    id: metadata.id ?? uuidv7(),
    type: definition.type,
    version: definition.version,
    occurredAt: typeof occurredAt === 'string' ? occurredAt : isoOrInvalid(occurredAt),
    correlationId: metadata.correlationId,
    causationId: metadata.causationId,
    data,
  };
  return validate(definition, raw) as EventOf<D>;
}

/**
 * Reads an event from bytes (UTF-8 JSON), JSON text, or an already-parsed value. Never throws for
 * bad input: the result says why the input is not a valid known event.
 */
export function parseEvent(raw: unknown): ParseEventResult {
  try {
    return { ok: true, event: decodeEvent(raw) };
  } catch (error) {
    if (error instanceof ContractViolation) return { ok: false, error };
    throw error;
  }
}

/** Like `parseEvent`, but throws the `ContractViolation`. */
export function decodeEvent(raw: unknown): KnownEvent {
  const value = raw instanceof Uint8Array || typeof raw === 'string' ? parseJson(raw) : raw;
  const envelope = EventEnvelopeSchema.safeParse(value);
  if (!envelope.success) {
    const type = readString(value, 'type');
    const version = readNumber(value, 'version');
    throw new ContractViolation(CONTRACT_VIOLATION_CODES.InvalidEnvelope, 'invalid event envelope', {
      eventType: type,
      eventVersion: version,
      issues: issuesFromZod(envelope.error),
      cause: envelope.error,
    });
  }
  const { type, version } = envelope.data;
  const definition = findDefinition(type, version);
  if (definition === undefined) {
    const code = isEventType(type)
      ? CONTRACT_VIOLATION_CODES.UnknownVersion
      : CONTRACT_VIOLATION_CODES.UnknownType;
    const summary =
      code === CONTRACT_VIOLATION_CODES.UnknownType
        ? 'unknown event type'
        : 'unknown version of a known event type';
    throw new ContractViolation(code, summary, { eventType: type, eventVersion: version });
  }
  return validate(definition, value) as KnownEvent;
}

/**
 * The wire form of an event: UTF-8 JSON with keys in schema order. The event is validated again
 * (an object built by hand and cast is not trusted); throws `ContractViolation` if invalid.
 */
export function encodeEvent(event: EventEnvelope): Uint8Array {
  const definition = findDefinition(event.type, event.version);
  if (definition === undefined) {
    throw new ContractViolation(
      isEventType(event.type)
        ? CONTRACT_VIOLATION_CODES.UnknownVersion
        : CONTRACT_VIOLATION_CODES.UnknownType,
      'cannot encode an event this package does not know',
      { eventType: event.type, eventVersion: event.version },
    );
  }
  return textEncoder.encode(JSON.stringify(validate(definition, event)));
}

/** Narrows an event to one definition (type and version). */
export function isEvent<D extends AnyEventDefinition>(
  definition: D,
  event: { readonly type: string; readonly version: number },
): event is EventOf<D> {
  return event.type === definition.type && event.version === definition.version;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

function validate(definition: AnyEventDefinition, raw: unknown): EventOf<AnyEventDefinition> {
  const result = (definition.envelope as z.ZodType).safeParse(raw);
  if (!result.success) {
    const issues = issuesFromZod(result.error);
    const onlyData = issues.every(
      (issue) => issue.path === 'data' || issue.path.startsWith('data.') || issue.path.startsWith('data['),
    );
    throw new ContractViolation(
      onlyData ? CONTRACT_VIOLATION_CODES.InvalidData : CONTRACT_VIOLATION_CODES.InvalidEnvelope,
      onlyData ? 'invalid event data' : 'invalid event envelope',
      { eventType: definition.type, eventVersion: definition.version, issues, cause: result.error },
    );
  }
  return deepFreeze(result.data) as EventOf<AnyEventDefinition>;
}

/** An invalid `Date` becomes a string that fails validation, instead of a `RangeError`. */
function isoOrInvalid(date: Date): string {
  return Number.isNaN(date.getTime()) ? 'Invalid Date' : date.toISOString();
}

function parseJson(raw: Uint8Array | string): unknown {
  try {
    return JSON.parse(typeof raw === 'string' ? raw : textDecoder.decode(raw));
  } catch (error) {
    throw new ContractViolation(CONTRACT_VIOLATION_CODES.MalformedJson, 'event is not UTF-8 JSON', {
      cause: error,
    });
  }
}

function readString(value: unknown, key: string): string | null {
  const field =
    typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
  return typeof field === 'string' ? field.slice(0, 100) : null;
}

function readNumber(value: unknown, key: string): number | null {
  const field =
    typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
  return typeof field === 'number' ? field : null;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
