/**
 * What an event definition is: a type, a version, a data schema and the aggregate the event belongs
 * to. Definitions are made here, in this package, and nowhere else; services only use them.
 */
import { z } from 'zod';

import { ENVELOPE_FIELDS, type EventEnvelope } from './envelope.js';

export interface EventDefinition<
  TType extends string = string,
  TVersion extends number = number,
  TData extends z.ZodType = z.ZodType,
> {
  /** Dotted event type, e.g. `inference.completed`. */
  readonly type: TType;
  /** Schema version of `data`. */
  readonly version: TVersion;
  /** What the event says happened, for the generated documentation. */
  readonly description: string;
  /** Rules across fields that JSON Schema cannot express; checked by `data`, listed in the docs. */
  readonly invariants: readonly string[];
  /** What the aggregate key is, in words (e.g. "adapterId"), for the docs. */
  readonly aggregate: string;
  /** Schema of `data`. */
  readonly data: TData;
  /** The whole envelope with `type` and `version` fixed and `data` checked: what parsers run. */
  readonly envelope: z.ZodType<EventEnvelope<TType, z.output<TData>>, unknown>;
  /**
   * Key of the aggregate the event belongs to (an adapter id, a request id, an epoch). Its
   * subject token ends the event's subject, so that order per aggregate can be enforced.
   */
  aggregateKey(data: z.output<TData>): string;
}

/** Any event definition, whatever its type, version and data. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the data schema of "any event" is any schema
export type AnyEventDefinition = EventDefinition<string, number, any>;

/** The event type (envelope with `type`, `version` and `data` narrowed) of a definition. */
export type EventOf<D extends AnyEventDefinition> = EventEnvelope<D['type'], z.output<D['data']>> & {
  readonly version: D['version'];
};

/** The data a producer passes to `createEvent` for a definition (before normalisation). */
export type EventDataInput<D extends AnyEventDefinition> = z.input<D['data']>;

export interface EventSpec<TType extends string, TVersion extends number, TData extends z.ZodType> {
  readonly type: TType;
  readonly version: TVersion;
  readonly description: string;
  readonly invariants?: readonly string[];
  readonly aggregate: string;
  readonly data: TData;
  aggregateKey(data: z.output<TData>): string;
}

export function defineEvent<
  const TType extends string,
  const TVersion extends number,
  TData extends z.ZodType,
>(spec: EventSpec<TType, TVersion, TData>): EventDefinition<TType, TVersion, TData> {
  const envelope = z.strictObject({
    id: ENVELOPE_FIELDS.id,
    type: z.literal(spec.type).describe('Event type.'),
    version: z.literal(spec.version).describe('Schema version of data.'),
    occurredAt: ENVELOPE_FIELDS.occurredAt,
    correlationId: ENVELOPE_FIELDS.correlationId,
    causationId: ENVELOPE_FIELDS.causationId,
    data: spec.data,
  }) as unknown as z.ZodType<EventEnvelope<TType, z.output<TData>>, unknown>;
  return Object.freeze({
    type: spec.type,
    version: spec.version,
    description: spec.description,
    invariants: Object.freeze([...(spec.invariants ?? [])]),
    aggregate: spec.aggregate,
    data: spec.data,
    envelope,
    aggregateKey: spec.aggregateKey,
  });
}

/** Reports a broken cross-field rule at `path` (relative to the object the rule is on). */
export type FailRule = (path: readonly (string | number)[], message: string) => void;

/**
 * Adds rules across the fields of an object schema. They run only once every field is valid on
 * its own (zod would otherwise run them on values that already failed, e.g. `BigInt('abc')`), so a
 * rule may trust the types and formats of the fields it reads.
 */
export function withRules<S extends z.ZodType>(
  schema: S,
  rules: (value: z.output<S>, fail: FailRule) => void,
): S {
  return schema.check((ctx) => {
    if (ctx.issues.length > 0) return;
    rules(ctx.value as z.output<S>, (path, message) => {
      ctx.issues.push({ code: 'custom', path: [...path], message, input: ctx.value });
    });
  });
}
