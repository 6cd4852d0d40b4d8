/**
 * Renders the generated artefacts of this package: one JSON Schema file per event version and
 * docs/events.md. Pure: returns file contents, writes nothing; `schemas.unit.spec.ts` compares them
 * with the committed files and, with `UPDATE_CONTRACTS=1`, rewrites them.
 */
import { z } from 'zod';

import type { AnyEventDefinition } from '../define.js';
import { EventEnvelopeSchema } from '../envelope.js';
import { exampleEvent } from '../examples.js';
import { TOTALS_ENCODING_HEADER } from '../events/totals.js';
import { eventJsonSchema, eventSchemaFileName, eventSchemaId } from '../json-schema.js';
import { eventDefinitions } from '../registry.js';
import { KV_BUCKETS, OBJECT_BUCKETS, STREAMS, streamFor } from '../streams.js';

/** A generated file, its path relative to the package root (`libs/contracts`). */
export interface GeneratedFile {
  readonly path: string;
  readonly content: string;
}

export const REGENERATE_COMMAND = 'UPDATE_CONTRACTS=1 npx vitest run libs/contracts/src/schemas.unit.spec.ts';

/** Every generated file, in a stable order. */
export function generatedFiles(): GeneratedFile[] {
  const schemas = eventDefinitions().map((definition) => ({
    path: `schemas/${eventSchemaFileName(definition)}`,
    content: `${JSON.stringify(eventJsonSchema(definition), null, 2)}\n`,
  }));
  return [...schemas, { path: '../../docs/events.md', content: renderEventsMarkdown() }];
}

type JsonSchema = {
  type?: string;
  const?: unknown;
  enum?: unknown[];
  format?: string;
  pattern?: string;
  description?: string;
  minimum?: number;
  exclusiveMinimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
};

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

export function renderEventsMarkdown(): string {
  const definitions = eventDefinitions();
  const out: string[] = [];
  const line = (text = ''): void => {
    out.push(text);
  };

  line('# Events');
  line();
  line(`<!-- Generated from libs/contracts by its tests; do not edit. Regenerate: ${REGENERATE_COMMAND} -->`);
  line();
  line(
    'Events are the source of truth of longtail. Every fact (an adapter registered, a request served, an epoch',
  );
  line(
    'closed, a payout posted) is one event in a JetStream stream; every other state is a projection of them.',
  );
  line(
    'This page is generated from `@longtail/contracts`, the one place the schemas are defined; the JSON Schema',
  );
  line('of each event is in [`libs/contracts/schemas/`](../libs/contracts/schemas/).');
  line();
  line('## Contents');
  line();
  line('- [Envelope and wire format](#envelope-and-wire-format)');
  line('- [Streams](#streams)');
  line('- [Subjects](#subjects)');
  line('- [KV and object-store buckets](#kv-and-object-store-buckets)');
  line('- [Versioning rules](#versioning-rules)');
  line('- [Consuming from another language](#consuming-from-another-language)');
  line('- [Canonical totals encoding](#canonical-totals-encoding)');
  line('- [Events](#events-1)');
  for (const definition of definitions) line(`  - [${title(definition)}](#${anchor(definition)})`);
  line();

  line('## Envelope and wire format');
  line();
  line('An event is the UTF-8 JSON of its envelope, published on its [subject](#subjects) with the header');
  line(
    '`Nats-Msg-Id` set to the envelope `id` (JetStream drops a re-publish inside the duplicate window). W3C trace',
  );
  line(
    'context travels in the message headers (`traceparent`, `tracestate`), never in the event. Producers write the',
  );
  line(
    'keys in the order below; consumers must not depend on key order or whitespace. Unknown keys are a violation,',
  );
  line('at every level: a field is added by a new version, never silently.');
  line();
  fieldTable(out, toJsonSchema(EventEnvelopeSchema), '');
  line();
  line(
    '`type` and `version` select the schema of `data`. A consumer rejects (and dead-letters) an event whose type or',
  );
  line('version it does not know, or whose data fails the schema; it never guesses.');
  line();

  line('## Streams');
  line();
  line(
    'One stream per aggregate family, file storage, limits retention. Durations are hints for the stream config;',
  );
  line(
    '`@longtail/messaging` turns them into server configuration. Replicas: 1 on one machine, 3 on a cluster.',
  );
  line(
    'Streams marked *money* carry what people are paid from: in production they are R3 and the servers run with',
  );
  line(
    '`jetstream { sync_interval: always }` (a server-wide setting), so an acknowledged publish is on disk.',
  );
  line();
  line('| Stream | Subjects | Max age | Duplicate window | Deny delete / purge | Money | What it holds |');
  line('| --- | --- | --- | --- | --- | --- | --- |');
  for (const stream of Object.values(STREAMS)) {
    line(
      `| \`${stream.name}\` | ${stream.subjects.map((s) => `\`${s}\``).join(', ')} | ${stream.maxAgeMs === 0 ? 'forever' : duration(stream.maxAgeMs)} | ` +
        `${duration(stream.duplicateWindowMs)} | ${stream.denyDelete ? 'yes' : 'no'} / ${stream.denyPurge ? 'yes' : 'no'} | ` +
        `${stream.money ? 'yes' : 'no'} | ${cell(stream.description)} |`,
    );
  }
  line();

  line('## Subjects');
  line();
  line(
    'An event is published on `<type>.<aggregate token>`, e.g. `adapters.registered.llama-3-8b_3Aacme_2Flegal-ur`.',
  );
  line();
  line(
    '- The first token of the type (the family) selects the stream: `inference.completed.…` goes to `INFERENCE`.',
  );
  line(
    '- Consume one type with the filter `<type>.>` (e.g. `inference.completed.>`), a whole family with `<family>.>`.',
  );
  line(
    '- The last token is the aggregate key (see each event) encoded as a subject token, so each aggregate has its',
  );
  line(
    '  own subjects. Order within one aggregate is enforced at publish time with `Nats-Expected-Last-Subject-Sequence`;',
  );
  line(
    '  adding `Nats-Expected-Last-Subject-Sequence-Subject: <family>.*[.*].<token>` (NATS ≥ 2.11) extends the check to',
  );
  line(
    '  every type of the family (all types of a family have the same number of tokens). Publishing with an expected',
  );
  line(
    '  last subject sequence of 0 on `inference.*.<request token>` makes "one outcome per request" a server rule.',
  );
  line(
    '- The version is not in the subject: a new version of an event keeps its subjects and its place in the order.',
  );
  line(
    '- Dead letters go to `dlq.<stream>.<durable>` in the `DLQ` stream, with the original bytes (the reason and',
  );
  line('  the original subject travel in headers).');
  line();
  line(
    '**Subject token encoding** (reversible, one token per key, `^[A-Za-z0-9_-]+$`, also a valid KV key):',
  );
  line();
  line('1. Take the UTF-8 bytes of the key.');
  line('2. Keep the bytes of `A`–`Z`, `a`–`z`, `0`–`9` and `-` as they are.');
  line('3. Write every other byte (`_` included) as `_` followed by two **uppercase** hex digits.');
  line('4. The empty key is the token `_`.');
  line();
  line(
    'Decoding reverses this and rejects anything a correct encoder would not produce (lowercase hex, an escaped',
  );
  line('byte that should have been kept, bytes that are not UTF-8). Examples: `llama-3-8b:acme/legal-ur` →');
  line('`llama-3-8b_3Aacme_2Flegal-ur`; `under_score` → `under_5Fscore`; `é` → `_C3_A9`; `7` → `7`.');
  line();

  line('## KV and object-store buckets');
  line();
  line(
    'State that changes fast and is not history lives in KV buckets; a decision that must not race (a lease, a',
  );
  line(
    'placement) is a compare-and-set on the key revision. KV reads are not read-your-writes on a cluster.',
  );
  line();
  line('| KV bucket | TTL | History | Holds |');
  line('| --- | --- | --- | --- |');
  for (const bucket of Object.values(KV_BUCKETS)) {
    line(
      `| \`${bucket.bucket}\` | ${bucket.ttlMs === 0 ? 'none' : duration(bucket.ttlMs)} | ${bucket.history} | ${cell(bucket.description)} |`,
    );
  }
  line();
  line('| Object store | Holds |');
  line('| --- | --- |');
  for (const bucket of Object.values(OBJECT_BUCKETS))
    line(`| \`${bucket.bucket}\` | ${cell(bucket.description)} |`);
  line();
  line('Blobs never go into events; events carry their SHA-256 and object key.');
  line();

  line('## Versioning rules');
  line();
  line(
    '1. A published `(type, version)` never changes: not a field, not a rule, not a description that changes meaning.',
  );
  line(
    '2. A change is a new version of the type (`version + 1`), added next to the old one. Producers switch to it;',
  );
  line(
    '   consumers accept every version they know and keep accepting old ones, since streams keep history forever.',
  );
  line(
    '3. A new kind of fact is a new type. Its family (first token) must be an existing stream, or a new stream is',
  );
  line('   added; all types of a family have the same number of tokens.');
  line('4. Removing a version from the contracts is allowed only when no stream holds an event of it.');
  line(
    '5. Schema files in `libs/contracts/schemas/` are generated and checked by the tests: a change to a published',
  );
  line('   schema shows up in review as a diff to a file that must not change.');
  line();

  line('## Consuming from another language');
  line();
  line(
    '1. Bind to the stream of the family (table above) with a **durable pull consumer**, explicit acks, and a filter',
  );
  line(
    '   subject such as `inference.completed.>`. Do not create streams from a consumer; the services own them.',
  );
  line(
    '2. Parse the message body as UTF-8 JSON. Validate it against the JSON Schema named by `type` and `version`',
  );
  line(
    '   (`libs/contracts/schemas/<type>.v<version>.json`, draft 2020-12) and check the invariants listed with each',
  );
  line(
    '   event (rules across fields that JSON Schema cannot state). Unknown type or version, or a failed check: do not',
  );
  line('   apply it; terminate the message and record it (dead letter).');
  line(
    '3. Compare addresses in lowercase; treat amounts as arbitrary-precision integers (never floating point); treat',
  );
  line('   times as UTC from the event, never from your clock.');
  line(
    '4. Deduplicate by envelope `id` (and by the domain key where an event says so, e.g. `requestId`): JetStream may',
  );
  line(
    '   redeliver, and its duplicate window is only minutes. Store the applied stream sequence in the same',
  );
  line(
    '   transaction as your writes, so that a redelivery is a no-op and a rebuild from the stream gives the same result.',
  );
  line(
    '5. Ack after your transaction commits; `nak` with a delay on a transient failure; `term` on a violation.',
  );
  line();

  line('## Canonical totals encoding');
  line();
  line(
    '`attribution.epoch.closed` carries `totalsHash`, the SHA-256 (64 lowercase hex digits) of these bytes (ASCII):',
  );
  line();
  line('```text');
  line(TOTALS_ENCODING_HEADER);
  line('<account>,<amount>');
  line('<account>,<amount>');
  line('```');
  line();
  line('- one line per account, sorted ascending by account (byte order), each account once;');
  line(
    '- `account` is `0x` + 40 **lowercase** hex digits; `amount` is base units in decimal, no sign, no leading zeros,',
  );
  line('  greater than 0 (an account with nothing is left out);');
  line(
    '- every line, the header and the last included, ends with one `\\n` (0x0A); no totals = the header line alone.',
  );
  line();
  line(
    '`canonicalTotalsEncoding`, `totalsHash` and `summariseTotals` in `@longtail/contracts` implement it.',
  );
  line();

  line('## Events');
  line();
  line(
    'Common rules: amounts are decimal strings of base units (18 decimals); token counts and durations are',
  );
  line('non-negative integers; times are ISO-8601 UTC with `Z`; ids are validated (formats in the tables).');
  line();
  for (const definition of definitions) renderEvent(out, definition);

  return `${out.join('\n').trimEnd()}\n`;
}

function renderEvent(out: string[], definition: AnyEventDefinition): void {
  const line = (text = ''): void => {
    out.push(text);
  };
  const event = exampleEvent(definition);
  line(`### ${title(definition)}`);
  line();
  line(definition.description);
  line();
  line(`- Stream: \`${streamFor(definition.type).name}\``);
  line(`- Subject: \`${definition.type}.<token of ${definition.aggregate}>\``);
  line(
    `- JSON Schema: [\`${eventSchemaFileName(definition)}\`](../libs/contracts/schemas/${eventSchemaFileName(definition)}) (\`$id\` \`${eventSchemaId(definition)}\`)`,
  );
  line();
  const schema = toJsonSchema(definition.data as z.ZodType);
  fieldTable(out, schema, 'data.');
  line();
  if (definition.invariants.length > 0) {
    line('Invariants:');
    line();
    for (const rule of definition.invariants) line(`- ${rule}`);
    line();
  }
  line('Example:');
  line();
  line('```json');
  line(JSON.stringify(event, null, 2));
  line('```');
  line();
}

function fieldTable(out: string[], schema: JsonSchema, prefix: string): void {
  out.push('| Field | Type | Required | Description |', '| --- | --- | --- | --- |');
  for (const row of fieldRows(schema, prefix)) {
    out.push(
      `| \`${row.path}\` | ${cell(row.type)} | ${row.required ? 'yes' : 'no'} | ${cell(row.description)} |`,
    );
  }
}

interface FieldRow {
  readonly path: string;
  readonly type: string;
  readonly required: boolean;
  readonly description: string;
}

function fieldRows(schema: JsonSchema, prefix: string): FieldRow[] {
  const rows: FieldRow[] = [];
  const required = new Set(schema.required ?? []);
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    const path = `${prefix}${name}`;
    rows.push({
      path,
      type: typeOf(property),
      required: required.has(name),
      description: property.description ?? '',
    });
    const object = objectPart(property);
    if (object?.properties) rows.push(...fieldRows(object, `${path}.`));
    const items = arrayPart(property)?.items;
    if (items?.properties) rows.push(...fieldRows(items, `${path}[].`));
  }
  return rows;
}

function objectPart(schema: JsonSchema): JsonSchema | undefined {
  if (schema.type === 'object') return schema;
  return schema.anyOf?.find((option) => option.type === 'object');
}

function arrayPart(schema: JsonSchema): JsonSchema | undefined {
  if (schema.type === 'array') return schema;
  return schema.anyOf?.find((option) => option.type === 'array');
}

/** A short type with its constraints, e.g. `string, pattern ^0x[0-9a-fA-F]{40}$` or `integer 0..10000`. */
function typeOf(schema: JsonSchema): string {
  if (schema.anyOf) return schema.anyOf.map(typeOf).join(' or ');
  if (schema.const !== undefined) return `\`${JSON.stringify(schema.const)}\``;
  if (schema.enum) return `one of ${schema.enum.map((value) => `\`${JSON.stringify(value)}\``).join(', ')}`;
  switch (schema.type) {
    case 'integer':
    case 'number': {
      const min =
        schema.minimum ?? (schema.exclusiveMinimum !== undefined ? `>${schema.exclusiveMinimum}` : undefined);
      const max = schema.maximum !== undefined && schema.maximum < MAX_SAFE ? schema.maximum : undefined;
      if (min === undefined && max === undefined) return schema.type;
      if (typeof min === 'string') return `${schema.type} ${min}${max === undefined ? '' : `, <=${max}`}`;
      return max === undefined ? `${schema.type} >=${min}` : `${schema.type} ${min ?? ''}..${max}`;
    }
    case 'string': {
      const parts = ['string'];
      if (schema.format) parts.push(`format \`${schema.format}\``);
      else if (schema.pattern) parts.push(`pattern \`${schema.pattern}\``);
      if (schema.maxLength !== undefined) parts.push(`length ${schema.minLength ?? 0}..${schema.maxLength}`);
      else if (schema.minLength !== undefined) parts.push(`length >=${schema.minLength}`);
      return parts.join(', ');
    }
    case 'array': {
      const bounds =
        schema.maxItems !== undefined
          ? ` (${schema.minItems ?? 0}..${schema.maxItems} items)`
          : schema.minItems !== undefined
            ? ` (at least ${schema.minItems})`
            : '';
      return `array of ${schema.items ? typeOf(schema.items) : 'anything'}${bounds}`;
    }
    case 'object':
      return 'object';
    case 'null':
      return '`null`';
    default:
      return schema.type ?? 'any';
  }
}

function toJsonSchema(schema: z.ZodType): JsonSchema {
  return z.toJSONSchema(schema, {
    io: 'input',
    target: 'draft-2020-12',
    unrepresentable: 'any',
  }) as JsonSchema;
}

/** Escapes text for a Markdown table cell. */
function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

function title(definition: AnyEventDefinition): string {
  return `${definition.type} v${definition.version}`;
}

/** GitHub's anchor for a heading such as `inference.completed v1`. */
function anchor(definition: AnyEventDefinition): string {
  return title(definition)
    .toLowerCase()
    .replaceAll(/[^a-z0-9 _-]/g, '')
    .replaceAll(' ', '-');
}

function duration(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000} d`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms % 1000 === 0) return `${ms / 1000} s`;
  return `${ms} ms`;
}
