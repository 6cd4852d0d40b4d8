/**
 * JSON Schema (draft 2020-12) of each event: the envelope with `type` and `version` fixed and the
 * data schema inlined, for consumers in other languages. Generated from the zod schemas with
 * `z.toJSONSchema` on the input side (what may be on the wire). Rules across fields, which JSON
 * Schema cannot state, are listed in the description under "Invariants".
 */
import { z } from 'zod';

import type { AnyEventDefinition } from './define.js';

export const JSON_SCHEMA_DIALECT = 'https://json-schema.org/draft/2020-12/schema';

/** `$id` of an event's schema, e.g. `urn:longtail:event:inference.completed:v1`. */
export function eventSchemaId(definition: Pick<AnyEventDefinition, 'type' | 'version'>): string {
  return `urn:longtail:event:${definition.type}:v${definition.version}`;
}

/** File name of an event's schema under `libs/contracts/schemas/`. */
export function eventSchemaFileName(definition: Pick<AnyEventDefinition, 'type' | 'version'>): string {
  return `${definition.type}.v${definition.version}.json`;
}

/** The JSON Schema of one event (a fresh object each call). */
export function eventJsonSchema(definition: AnyEventDefinition): Record<string, unknown> {
  const generated = z.toJSONSchema(definition.envelope as z.ZodType, {
    io: 'input',
    target: 'draft-2020-12',
  }) as Record<string, unknown>;
  const { $schema: _dialect, ...body } = generated;
  const invariants =
    definition.invariants.length > 0
      ? `\n\nInvariants:\n${definition.invariants.map((rule) => `- ${rule}`).join('\n')}`
      : '';
  return {
    $schema: JSON_SCHEMA_DIALECT,
    $id: eventSchemaId(definition),
    title: `${definition.type} v${definition.version}`,
    description: `${definition.description}${invariants}`,
    ...body,
  };
}
